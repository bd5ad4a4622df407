"""The everyday door and the doors beyond the partners: three decisions calibrated on data.

1. Is the message an investment project of a collectivity (works, equipment, acquisition)?
   A logistic regression over French character n-grams (TF-IDF, accent-folded), trained on the
   titles of the projects funded by DETR/DSIL in 2018 and on real non-investment wording
   (Fonds vert « Ingénierie » studies, questions of private persons and of local governments,
   gold cases), split by département / source. `investment(text)` -> probability in [0, 1].
2. Does a candidate offer have evidence beyond a shared word? A logistic regression over the
   hit's retrieval evidence, absolute (dense similarity, log(1 + BM25), theme match, named) and
   relative to the turn (gap to the best hit's dense similarity and BM25, rank among the candidates,
   gap to the best signpost card's similarity: a question a door answers much better than any offer
   is the door's), trained on the gold dev cases, the dev questions of evals/datasets/portes.csv and
   evals/datasets/portes-entrainement.csv. `evidence(hits, door_similarity)` -> {offer id: [0, 1]}.
3. Which body outside the partners is competent (signpost cards, corpus/signposts/)? Cosine
   similarity of the message to each card's texts, plus a bonus for a door-only theme or an
   acronym of the body said in the message; a floor and a margin calibrated on portes.csv (dev) and
   portes-entrainement.csv. A door leads the answer when no offer is evidenced, when the question
   carries a theme only a door serves, or when the door's score exceeds the best offer's dense
   similarity by a calibrated gap and passes a calibrated lead floor (unless, with the calibrated
   theme guard, in an investment project an evidenced offer carries a theme of the question the
   door does not — then neither the door's theme nor the gap puts it first: Fonds vert 2023
   titles of the tune départements count in that calibration, a door leading a project an offer
   funded is an error); beside a leading door, an offer that is not one of its complements needs a
   calibrated evidence of its own. After the first offer, every other (« Autres pistes ») needs the
   calibrated `evidence_other_leads` unless a door vouches for it or the question names it. In an investment
   project, an offer with no theme of the question whose evidence is under `evidence_before_grants` or whose
   dense similarity is under `dense_before_grants` does not lead: the everyday grants do (door.after_grants).

Weights and thresholds are in assistant/models/everyday.json, written by
`python -m evals.door_training` (which also records the held-out figures); nothing is trained or
downloaded at run time.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import chain
from operator import mul
from pathlib import Path

from assistant.patterns import screened
from assistant.retrieval import OfferHit
from assistant.schema import Signpost, ThemeVocabulary
from assistant.text import WORD_MEMO, char_wb_grams, fold, word_char_grams

MODEL_PATH = Path(__file__).resolve().parent / "models" / "everyday.json"


def char_analyzer(ngram_range: tuple[int, int]):
    """The n-gram analyzer shared by training and run time: scikit-learn's `char_wb` on folded text
    (assistant.text.char_wb_grams, the same grams without importing scikit-learn). str -> list[str]."""
    low_high = tuple(ngram_range)
    return lambda text: char_wb_grams(fold(text), low_high)


@dataclass
class EverydayModel:
    """Weights of the three decisions (see the module docstring); load() reads MODEL_PATH."""

    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: list[float]
    coef: list[float]
    intercept: float
    investment_threshold: float
    evidence_coef: list[float]  # the EVIDENCE_FEATURES, in that order
    evidence_intercept: float
    evidence_floor: float
    signpost_floor: float  # a door may lead the answer (nothing fits, or a door-only theme)
    signpost_beside_floor: float  # a door is named beside offers that answer
    signpost_margin: float
    signpost_bonus: float
    signpost_lead_gap: float  # a door also leads when its score exceeds the best offer's dense similarity by this
    signpost_lead_floor: float  # ... and its score passes this floor
    evidence_beside_door: float  # beside a leading door, the evidence an offer (not a complement) needs
    signpost_lead_theme_guard: bool  # no lead by the gap nor the door's theme when an evidenced offer carries a question theme the door does not
    figures: dict
    # After the first offer (« Autres pistes »), the evidence an offer needs unless the everyday door or a
    # leading door vouches for it or the question names it (evals.door_training.calibrate_other_leads).
    evidence_other_leads: float = 0.0
    # In an investment project of a collectivity (the everyday door open), the evidence and the dense similarity
    # an offer needs to rank before the everyday grants when it carries no theme of the question and the question
    # does not name it: under either, it met the question by wording alone (evals.door_training.calibrate_before_grants).
    evidence_before_grants: float = 0.0
    dense_before_grants: float = 0.0

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> EverydayModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["ngram_range"] = tuple(data["ngram_range"])
        return cls(**data)

    @cached_property
    def _word_columns(self):
        """word (folded) -> the vocabulary columns of its char_wb n-grams, in order (grams out of the
        vocabulary left out), memoised per word."""
        vocabulary, ngram_range = self.vocabulary, tuple(self.ngram_range)

        @lru_cache(maxsize=WORD_MEMO)
        def columns(word: str) -> tuple[int, ...]:
            return tuple(vocabulary[g] for g in word_char_grams(word, ngram_range) if g in vocabulary)

        return columns

    @cached_property
    def _idf_coef(self):
        """(idf, coef) as float64 arrays indexed like `vocabulary`."""
        import numpy as np

        return np.asarray(self.idf, dtype=np.float64), np.asarray(self.coef, dtype=np.float64)

    def investment(self, text: str) -> float:
        """Probability that `text` asks about an investment project (sublinear TF-IDF, l2, logistic)."""
        import numpy as np

        # The vocabulary's columns of each word's grams (memoised per word), counted in C: the same
        # columns in the same order as the analyzer's grams filtered by the vocabulary.
        counts = Counter(chain.from_iterable(map(self._word_columns, fold(text).split())))
        if not counts:
            return 1.0 / (1.0 + math.exp(-self.intercept))
        idf, coef = self._idf_coef
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[columns]
        norm = math.sqrt(float(weights @ weights)) or 1.0
        z = self.intercept + float(coef[columns] @ weights) / norm
        return 1.0 / (1.0 + math.exp(-z))

    def is_investment(self, text: str) -> bool:
        return self.investment(text) >= self.investment_threshold

    def evidence(self, ranked: list[OfferHit], door_similarity: float) -> dict[str, float]:
        """{offer id: probability that the offer is relevant to the question} for the ranked hits of
        a turn, from their retrieval evidence and the best signpost similarity (SignpostFinder.best)."""
        return evidence_probabilities(self.evidence_coef, self.evidence_intercept, ranked, door_similarity)


EVIDENCE_FEATURES = ["dense", "log1p_bm25", "theme", "named", "dense_gap", "bm25_gap", "log1p_rank", "door_gap"]


def evidence_features(ranked: list[OfferHit], door_similarity: float) -> list[list[float]]:
    """One row of EVIDENCE_FEATURES per hit of `ranked` (best first): dense similarity, log(1 + BM25
    score), theme match (0/1), named (0/1), the best hit's dense similarity minus this one's, the
    best log(1 + BM25) minus this one's, log(1 + rank) (0 for the first), and the best signpost
    card's similarity minus this hit's dense similarity (0 when no card is scored)."""
    best_dense = max((h.dense_similarity for h in ranked), default=0.0)
    best_bm25 = max((math.log1p(h.bm25_score) for h in ranked), default=0.0)
    rows = []
    for rank, hit in enumerate(ranked):
        bm25 = math.log1p(hit.bm25_score)
        rows.append([
            hit.dense_similarity,
            bm25,
            1.0 if "theme" in hit.adjustments else 0.0,
            1.0 if "named" in hit.adjustments else 0.0,
            best_dense - hit.dense_similarity,
            best_bm25 - bm25,
            math.log1p(rank),
            door_similarity - hit.dense_similarity if door_similarity else 0.0,
        ])
    return rows


def evidence_probabilities(coef: list[float], intercept: float, ranked: list[OfferHit],
                           door_similarity: float) -> dict[str, float]:
    """The evidence model's logistic output for each ranked hit (shared by run time and calibration)."""
    out = {}
    for hit, features in zip(ranked, evidence_features(ranked, door_similarity)):
        z = intercept + sum(map(mul, coef, features))
        out[hit.offer.id] = 1.0 / (1.0 + math.exp(-z))
    return out


def door_only_themes(vocabulary: ThemeVocabulary, offer_themes: set[str], signposts: list[Signpost]) -> set[str]:
    """Themes carried by a signpost and by no offer (patrimoine, santé, sport…): needs only a door serves."""
    return {t for s in signposts for t in s.themes} - offer_themes


ACRONYM = re.compile(r"^[A-Z]{2,6}$")
SENTENCE = re.compile(r"(?<=[.:;])\s+")


class SignpostFinder:
    """Scores the signpost cards against a message (see the module docstring, decision 3)."""

    def __init__(self, signposts: list[Signpost], vocabulary: ThemeVocabulary, door_themes: set[str], embeddings):
        self.signposts = sorted(signposts, key=lambda s: s.id)
        self.door_themes = door_themes
        self.embeddings = embeddings
        by_id = vocabulary.by_id()
        # Each card is read as short texts (its name, each sentence of what it covers, for whom, its other
        # names, each need in an asker's words, its themes with their synonyms): a question matches one
        # aspect, not the whole card.
        self._docs = [
            (i, text)
            for i, s in enumerate(self.signposts)
            for text in [s.body, *SENTENCE.split(s.covers), s.for_whom, " ; ".join(s.aliases), *s.needs]
            + [f"{by_id[t].label} : {', '.join(by_id[t].synonyms)}" for t in s.themes if t in by_id]
            if len(text) > 15
        ]
        # One pattern per card (its acronyms and full names as whole words, folded, behind the screen of
        # assistant.patterns), None without any: a turn runs one search per card.
        self._names = [
            screened("|".join(rf"\b{re.escape(fold(a))}\b" for a in named)) if named else None
            for named in ([a for a in s.aliases if ACRONYM.match(a) or len(a.split()) >= 3] for s in self.signposts)
        ]
        # A card's texts are consecutive in _docs: its best similarity is the max over its run of texts
        # (numpy's reduceat from each run's first text), for the cards that have texts.
        doc_card = [i for i, _ in self._docs]
        self._runs = [k for k, card in enumerate(doc_card) if k == 0 or card != doc_card[k - 1]]
        self._run_cards = [doc_card[k] for k in self._runs]
        # The door-only themes each card carries (a bonus when the message has one of them).
        self._door_themes_of = [set(s.themes) & door_themes for s in self.signposts]
        self._vectors = None
        self._norms = None

    @property
    def texts(self) -> list[str]:
        """The short texts the cards are read as, in the order of their vectors."""
        return [text for _, text in self._docs]

    def use_vectors(self, vectors) -> None:
        """Embeddings of `texts` computed elsewhere (a cache): (len(texts), dim) float array."""
        if len(vectors) != len(self._docs):
            raise ValueError(f"{len(vectors)} vectors for {len(self._docs)} signpost texts")
        self._vectors, self._norms = vectors, None

    def similarities(self, message: str, vector=None) -> list[float]:
        """Per card (in self.signposts order): the max cosine of the message to the card's texts.
        `vector`: the message's embedding when the caller has it (the turn's query vector, encoded in
        the cards' spelling); otherwise `message` is encoded."""
        import numpy as np

        if self._vectors is None:
            self._vectors = np.asarray(self.embeddings.embed_documents([t for _, t in self._docs]), dtype=float)
        if self._norms is None:
            self._norms = np.linalg.norm(self._vectors, axis=1)
        query = np.asarray(vector if vector is not None else self.embeddings.embed_query(message), dtype=float)
        sims = self._vectors @ query / ((self._norms * (np.linalg.norm(query) or 1.0)) + 1e-12)
        best = np.full(len(self.signposts), -1.0)
        if self._runs:
            best[self._run_cards] = np.maximum(np.maximum.reduceat(sims, self._runs), -1.0)
        return best.tolist()

    def scores(self, message: str, themes: list[str], bonus: float,
               similarities: list[float] | None = None) -> list[tuple[float, Signpost]]:
        """(score, card), best first: max cosine over the card's texts (`similarities`, computed when
        not given) + bonus per door-only theme of the card detected in the message + bonus when the
        message names the body by an acronym or a full name."""
        best = similarities if similarities is not None else self.similarities(message)
        folded, said = fold(message), set(themes)
        scored = []
        for i, signpost in enumerate(self.signposts):
            score = best[i]
            if not self._door_themes_of[i].isdisjoint(said):
                score += bonus
            if self._names[i] is not None and self._names[i].search(folded):
                score += bonus
            scored.append((score, signpost))
        return sorted(scored, key=lambda s: (-s[0], s[1].id))
