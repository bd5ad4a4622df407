"""The imported catalogue (Aides-territoires) as the assistant reads it: entries, search, twins, eligibility.

Written by ingest.catalogue_index (files under DATA_DIR/catalogue/aides-territoires/). Absent files
mean no catalogue: every function here is then never reached and answers are those of the curated
cards alone.

- Search: BM25 over the texts of the aids whose perimeter key covers the asker (at most six keys,
  assistant.perimeter), then the query vector against the best ones' vectors (LoadedCatalogue.candidates);
  an aid is kept when is_relevant (RELEVANCE_FLOOR, calibrated on labelled pairs,
  evals/datasets/catalogue-pertinence.csv; `python -m evals.catalogue_pertinence`).
- Twins: an aid describing the same offer as a curated card is hidden behind it (the card wins):
  same link, or a financer that is the card's partner and either a name of the card in the aid's
  name or a title similarity ≥ TWIN_THRESHOLD (calibrated on labelled pairs,
  evals/datasets/catalogue-twins.csv; `python -m evals.catalogue_twins`).
- Eligibility: the three states of the curated cards (assistant.eligibility.Verdict) on what the
  catalogue states in a checkable form — perimeter, audiences, deadline; free-text conditions are
  always « à vérifier ».
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.config import Settings
from assistant.eligibility import Verdict
from assistant.offer_names import OfferNames
from assistant.schema import Offer
from assistant.text import analyze, fold, match_terms
from ingest.catalogue_index import CatalogueEntry, bm25_dir, bm25_ids_path, entries_path, index_path

# Relevance of an aid to a question (Candidate.relevant, is_relevant): cosine (USE v3) of the question with the
# aid's name or gist + BM25_WEIGHT × its BM25 score (capped), at RELEVANCE_FLOOR or above, with a BM25 score of
# BM25_FLOOR or more (the question's words in the aid's text: a vector alone brings « locaux d'archives » to
# « maison de santé »). RELEVANCE_FLOOR is calibrated on evals/datasets/catalogue-pertinence.csv, source
# questions-maires (58 questions written for Aiguillage, best pair-level F1: 0.50), and measured on the held-out
# source dotations-2018 (71 real DETR/DSIL 2018 titles): precision 0.357, recall 0.390 (0.492 / 0.476 on the
# training source). BM25_WEIGHT and BM25_FLOOR keep the shape set by hand before: calibrating them too did not do
# better in 5-fold cross-validation on the training source and did worse on the held-out one (README, « Catalogue
# national »). Recompute: `python -m evals.catalogue_pertinence`.
BM25_WEIGHT = 0.08
BM25_CAP = 5.0
RELEVANCE_FLOOR = 0.50
BM25_FLOOR = 1.0
DEPTH = 40  # candidates by BM25 inside the perimeter whose vectors are read
# Title similarity (Dice on content words) for a twin: the best F1 on the Banque des Territoires' aids of
# evals/datasets/catalogue-twins.csv (precision 0.50, recall 0.60, 5 twins), held-out figures on the other
# partners' aids: precision 0.778, recall 0.778 (9 twins). Recompute: `python -m evals.catalogue_twins`.
TWIN_THRESHOLD = 0.45
SHOWN = 4  # aids in « Autres aides recensées sur votre territoire »
COLLECTIVITY_AUDIENCES = {"commune", "epci", "department", "region", "special"}
AUDIENCE_LABELS = {
    "commune": "communes", "epci": "intercommunalités", "department": "départements", "region": "régions",
    "special": "collectivités à statut particulier", "association": "associations", "private_person": "particuliers",
    "farmer": "agriculteurs", "private_sector": "entreprises", "public_cies": "entreprises publiques locales",
    "public_org": "établissements publics", "researcher": "recherche",
}
AID_TYPE_LABELS = {
    "grant": "subvention", "loan": "prêt", "recoverable_advance": "avance récupérable", "cee": "certificats d'économie d'énergie",
    "other": "autre aide financière", "technical_engineering": "ingénierie technique",
    "financial_engineering": "ingénierie financière", "legal_engineering": "ingénierie juridique",
}
TYPE_OF_COLLECTIVITY = {"commune": "commune", "epci": "epci", "department": "department", "region": "region"}
# Financer names that designate a partner of the curated cards (folded words, as in the catalogue).
PARTNER_FINANCERS = {
    "ademe": ("ademe",), "anah": ("anah", "agence nationale de l'habitat"), "anct": ("anct", "cohesion des territoires"),
    "anru": ("anru", "renovation urbaine"), "banque-des-territoires": ("banque des territoires",), "cerema": ("cerema",),
}


@dataclass(frozen=True)
class Candidate:
    """An aid weighed for a query: its BM25 score for the query (> 0) and its cosine (USE) with it."""

    entry: CatalogueEntry
    bm25: float
    cosine: float

    @property
    def relevance(self) -> float:
        """The order of the aids shown: relevance(cosine, bm25)."""
        return relevance(self.cosine, self.bm25)

    @property
    def relevant(self) -> bool:
        return is_relevant(self.cosine, self.bm25)


def relevance(cosine: float, bm25: float, weight: float = BM25_WEIGHT) -> float:
    """cosine + weight × min(BM25 score, BM25_CAP)."""
    return cosine + weight * min(bm25, BM25_CAP)


def is_relevant(cosine: float, bm25: float, floor: float = RELEVANCE_FLOOR, weight: float = BM25_WEIGHT,
                bm25_floor: float = BM25_FLOOR) -> bool:
    """The relevance decision: relevance(cosine, bm25, weight) ≥ floor and BM25 score ≥ bm25_floor
    (defaults: the calibrated constants; evals.catalogue_pertinence tries others)."""
    return relevance(cosine, bm25, weight) >= floor and bm25 >= bm25_floor


@dataclass(frozen=True)
class Twin:
    card: Offer
    reason: str  # French, for the console: « même lien » or « titre semblable (0,62) et même porteur »


@dataclass
class CatalogueHit:
    entry: CatalogueEntry
    similarity: float
    verdict: Verdict

    def payload(self) -> dict:
        """The aid as the API and the console show it."""
        e = self.entry
        return {
            "aid_id": e.id, "title": e.name, "url": e.url, "financers": e.financers,
            "audiences": e.audiences, "aid_types": e.aid_types, "perimeter": e.perimeter_label,
            "submission_deadline": e.submission_deadline, "similarity": round(self.similarity, 4),
            "eligibility": self.verdict.as_dict(), "source": "Aides-territoires",
        }


class LoadedCatalogue:
    """One indexing of the catalogue: entries by id and the Chroma collection (read-only)."""

    def __init__(self, settings: Settings, record: dict):
        import bm25s

        from assistant.vectorstore import chroma_client

        self.record = record
        self.synced_at: str = record["synced_at"]
        self.hashes: dict[str, str] = record["hashes"]
        with entries_path(settings.data_dir).open(encoding="utf-8") as lines:
            self.entries = {e.id: e for e in (CatalogueEntry(**json.loads(line)) for line in lines)}
        self.collection = chroma_client(settings).get_collection(record["collection"])
        self.bm25 = bm25s.BM25.load(str(bm25_dir(settings.data_dir)))
        self.bm25_ids: list[str] = json.loads(bm25_ids_path(settings.data_dir).read_text(encoding="utf-8"))
        self.bm25_row = {aid_id: row for row, aid_id in enumerate(self.bm25_ids)}
        self.rows_by_key: dict[str, list[int]] = {}  # perimeter key -> BM25 rows of its aids
        for row, aid_id in enumerate(self.bm25_ids):
            entry = self.entries.get(aid_id)
            if entry is not None and entry.perimeter_key:
                self.rows_by_key.setdefault(entry.perimeter_key, []).append(row)

    @property
    def synced_on(self) -> str:
        """The snapshot's date in French: « 5 décembre 2026 »."""
        return french_date(self.synced_at[:10])

    def candidates(self, query: str, query_vector: list[float], keys: set[str], depth: int = DEPTH,
                   min_bm25: float = 0.0) -> list[Candidate]:
        """The aids the relevance decision weighs for a query, in BM25 order: the `depth` best by BM25
        (score > 0 and ≥ min_bm25) among those whose perimeter key is in `keys`, with their BM25 score and
        cosine. The search passes BM25_FLOOR as min_bm25, so that only the aids the decision can keep are read.

        The cosine is the higher one of the query with the aid's name and with its name + gist
        (ingest.catalogue_index), read from Chroma by id (no filtered vector search: 55 ms a turn at
        10,000 aids, against a few ms for this)."""
        rows = np.fromiter((r for key in keys for r in self.rows_by_key.get(key, ())), dtype=np.int64)
        tokens = [t for t in analyze(query) if t in self.bm25.vocab_dict]
        if not rows.size or not tokens:
            return []
        scores = self.bm25.get_scores(tokens)
        best = rows[np.argsort(-scores[rows], kind="stable")[:depth]]
        lexical = {self.bm25_ids[r]: float(scores[r]) for r in best if scores[r] > 0 and scores[r] >= min_bm25}
        cosines = self._cosines(list(lexical), query_vector)
        return [Candidate(self.entries[i], bm25, cosines[i]) for i, bm25 in lexical.items() if i in cosines]

    def search(self, query: str, query_vector: list[float], keys: set[str], depth: int = DEPTH) -> list[tuple[CatalogueEntry, float]]:
        """Aids whose perimeter key is in `keys` and that are relevant to the query (Candidate.relevant),
        best first: (entry, relevance)."""
        kept = [(c.entry, c.relevance) for c in self.candidates(query, query_vector, keys, depth, BM25_FLOOR) if c.relevant]
        return sorted(kept, key=lambda pair: (-pair[1], pair[0].id))

    def _cosines(self, aid_ids: list[str], query_vector: list[float]) -> dict[str, float]:
        """aid id -> the higher cosine of the query with its two stored vectors (read from Chroma)."""
        wanted = [f"{i}@{self.hashes[i]}/{kind}" for i in aid_ids if i in self.hashes for kind in ("t", "d")]
        if not wanted:
            return {}
        got = self.collection.get(ids=wanted, include=["embeddings"])
        query = np.asarray(query_vector, dtype=np.float32)
        query /= np.linalg.norm(query) or 1.0
        best: dict[str, float] = {}
        for stored_id, vector in zip(got["ids"], got["embeddings"]):
            vector = np.asarray(vector, dtype=np.float32)
            cosine = float(vector @ query / (np.linalg.norm(vector) or 1.0))
            aid_id = stored_id.rpartition("/")[0].rpartition("@")[0]
            best[aid_id] = max(best.get(aid_id, -1.0), cosine)
        return best


class CatalogueHandle:
    """The current catalogue, reloaded when index.json is replaced; None when none was ever indexed."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._path: Path = index_path(settings.data_dir)
        self._lock = threading.Lock()
        self._loaded: LoadedCatalogue | None = None
        self._stamp: int | None = None

    def current(self) -> LoadedCatalogue | None:
        try:
            stamp = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._loaded = LoadedCatalogue(self._settings, json.loads(self._path.read_text(encoding="utf-8")))
                    self._stamp = stamp
        return self._loaded


MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]


def french_date(iso: str) -> str:
    day = dt.date.fromisoformat(iso[:10])
    return f"{day.day}{'er' if day.day == 1 else ''} {MONTHS[day.month - 1]} {day.year}"


# ---- twins: the curated card wins -----------------------------------------------------------------
def normal_url(url: str | None) -> str:
    """https://www.x.fr/a/b/?q -> x.fr/a/b (scheme, www., query, fragment and trailing slash dropped)."""
    if not url:
        return ""
    url = re.sub(r"^https?://(www\.)?", "", url.strip().lower())
    return re.split(r"[?#]", url, maxsplit=1)[0].rstrip("/")


def title_similarity(a: str, b: str) -> float:
    """Dice coefficient of the two titles' content words (folded stems): 1.0 same words, 0.0 none shared."""
    return dice(set(match_terms(a)), set(match_terms(b)))


def partners_of(financers: list[str]) -> set[str]:
    """Curated partners named among an aid's financers."""
    folded = [fold(f) for f in financers]
    return {p for p, names in PARTNER_FINANCERS.items() if any(n in f for n in names for f in folded)}


class CardNames:
    """The content words of every card's names, by partner, computed once per index generation (twin_of)."""

    def __init__(self, offers: dict[str, Offer], names: OfferNames):
        self.offers, self.names = offers, names
        self.by_partner: dict[str, list[tuple[Offer, list[set[str]]]]] = {}
        for offer in offers.values():
            terms = [set(match_terms(n)) for n in [offer.title, *offer.aliases]]
            self.by_partner.setdefault(offer.partner, []).append((offer, [t for t in terms if t]))


def dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def twin_of(entry: CatalogueEntry, cards: CardNames, threshold: float = TWIN_THRESHOLD) -> Twin | None:
    """The curated card describing the same offer as an aid, if any: the same link; else, among the
    cards of a partner that finances the aid, one the aid's name names (a title or alias, whole
    words: assistant.offer_names) or the most similar title at `threshold` or above."""
    offers = cards.offers
    links = {normal_url(u) for u in (entry.origin_url, entry.application_url)} - {""}
    if links:
        for offer in offers.values():
            card_links = {normal_url(str(u)) for u in offer.source_urls} | {normal_url(str(offer.access.url or ""))}
            if links & card_links:
                return Twin(offer, "même lien")
    partners = partners_of(entry.financers)
    if not partners:
        return None
    named = sorted(i for i in cards.names.find(fold(entry.name)).by_any_name if i in offers and offers[i].partner in partners)
    if named:
        return Twin(offers[named[0]], f"son nom cite « {offers[named[0]].title} » et même porteur")
    terms = set(match_terms(entry.name))
    best: tuple[float, Offer] | None = None
    for partner in sorted(partners):
        for offer, names in cards.by_partner.get(partner, []):
            score = max((dice(terms, n) for n in names), default=0.0)
            if score >= threshold and (best is None or score > best[0]):
                best = (score, offer)
    if best is None:
        return None
    return Twin(best[1], f"titre semblable ({best[0]:.2f}".replace(".", ",") + ") et même porteur")


# ---- eligibility ----------------------------------------------------------------------------------
def verdict(entry: CatalogueEntry, collectivity_type: str | None, today: dt.date) -> Verdict:
    """Eligible only when perimeter, audience and deadline were all checked and the aid has no free-text
    conditions; ineligible when a known fact contradicts it (audience, deadline passed); else « à vérifier »."""
    met, failed, missing = [], [], []
    met.append(f"périmètre : {entry.perimeter_label}")
    open_to = [AUDIENCE_LABELS.get(a, a) for a in entry.audiences if a in COLLECTIVITY_AUDIENCES]
    audience = TYPE_OF_COLLECTIVITY.get(collectivity_type or "")
    if audience is None:
        missing.append("votre type de collectivité (ouverte aux " + ", ".join(open_to) + ")")
    elif audience in entry.audiences:
        met.append(f"ouverte aux {AUDIENCE_LABELS[audience]}")
    else:
        failed.append("réservée aux " + ", ".join(open_to))
    if entry.submission_deadline:
        deadline = dt.date.fromisoformat(entry.submission_deadline[:10])
        if deadline < today:
            failed.append(f"dépôt clos depuis le {french_date(entry.submission_deadline)}")
        else:
            met.append(f"dépôt avant le {french_date(entry.submission_deadline)}")
    if entry.has_conditions:
        missing.append("les conditions détaillées de la fiche Aides-territoires")
    status = "ineligible" if failed else "unknown" if missing else "eligible"
    return Verdict(status, met=met, failed=failed, missing=missing)


def offered_to_collectivities(entry: CatalogueEntry) -> bool:
    return bool(set(entry.audiences) & COLLECTIVITY_AUDIENCES)
