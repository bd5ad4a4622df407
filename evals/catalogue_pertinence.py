"""Calibration of the catalogue's relevance decision (assistant.catalogue.Candidate.relevant) on labelled pairs.

evals/datasets/catalogue-pertinence.csv: (question, aid, relevant 1/0) pairs over the 274 public aids of
the fixture (evals/fake_aides_territoires.py), from two written sources: `questions-maires` (questions
written for Aiguillage) trains, `dotations-2018` (real DETR/DSIL 2018 project titles of the départements
that evals/realdata.py reports on) is held out. A pair absent from the file is not relevant (every
question's relevant aids were looked for among all 274).

The decision is read through the real search: the fixture synced from the fake Aides-territoires
server, indexed (ingest.catalogue_index) and searched with every perimeter key (the perimeter is its
own rule, assistant.perimeter), questions in the cards' spelling as the service reads them. On the
training source, two families of rules are compared by 5-fold cross-validation — RELEVANCE_FLOOR alone
(BM25_WEIGHT and BM25_FLOOR kept) and all three parameters — and each is calibrated (best pair-level
F1, ties: the highest floors); precision and recall are printed on both sources for the shipped rule
and the two calibrated ones. The shipped rule is the floor alone (README, « Catalogue national »).

Run: `python -m evals.catalogue_pertinence [--data-dir DIR]` (DIR keeps the synced index between runs).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from assistant import catalogue as decision

ROOT = Path(__file__).parents[1]
DATASET = Path(__file__).parent / "datasets" / "catalogue-pertinence.csv"
TRAIN, HELD_OUT = "questions-maires", "dotations-2018"
FLOORS = [round(0.30 + 0.01 * i, 2) for i in range(51)]
WEIGHTS = [0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.20]
BM25_FLOORS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


@dataclass(frozen=True)
class Rule:
    """The parameters of assistant.catalogue.Candidate.relevant."""

    floor: float
    weight: float
    bm25_floor: float

    def keeps(self, candidate) -> bool:
        return decision.is_relevant(candidate.cosine, candidate.bm25, self.floor, self.weight, self.bm25_floor)


CURRENT = Rule(decision.RELEVANCE_FLOOR, decision.BM25_WEIGHT, decision.BM25_FLOOR)


def read_pairs(path: Path = DATASET) -> dict[str, dict]:
    """{question id: {"source", "question", "relevant": set of aid ids, "labelled": set of aid ids}}."""
    questions: dict[str, dict] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            q = questions.setdefault(row["question_id"], {"source": row["source"], "question": row["question"],
                                                           "relevant": set(), "labelled": set()})
            q["labelled"].add(row["aid_id"])
            if row["relevant"] == "1":
                q["relevant"].add(row["aid_id"])
    return questions


def synced_catalogue(settings, embeddings):
    """Sync the fixture's public aids from the fake Aides-territoires server (127.0.0.1) into
    settings.data_dir and index them; returns the LoadedCatalogue. No network."""
    from assistant.catalogue import CatalogueHandle
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.aides_territoires import AidesTerritoiresClient, sync
    from ingest.catalogue_index import index_catalogue
    from evals.fake_aides_territoires import TOKEN, FakeAidesTerritoires

    with FakeAidesTerritoires() as fake:
        sync(AidesTerritoiresClient(fake.url, TOKEN, sleep=lambda _: None), settings.data_dir, progress=False)
    index_catalogue(settings, embeddings, PerimeterResolver(Territories.load(settings.corpus_dir)), progress=False)
    return CatalogueHandle(settings).current()


def candidates_by_question(catalogue, embeddings, questions: dict[str, dict]) -> dict[str, dict]:
    """{question id: {aid id: Candidate}}: what the search weighs for each question, every perimeter
    key open, the question in the cards' spelling (assistant.retrieval.corpus_lexicon) as the service reads it."""
    from assistant.retrieval import corpus_lexicon
    from ingest.corpus import load_corpus

    lexicon = corpus_lexicon(load_corpus(ROOT / "corpus").offers.values())
    keys = set(catalogue.rows_by_key)
    ids = list(questions)
    texts = [lexicon.canonical(questions[i]["question"]) for i in ids]
    return {i: {c.entry.id: c for c in catalogue.candidates(text, embeddings.embed_query(text), keys)} for i, text in zip(ids, texts)}


def score(rule: Rule, questions: dict[str, dict], candidates: dict[str, dict], qids: list[str]) -> dict:
    """Pair-level {"questions", "relevant", "shown", "right", "precision", "recall", "f1"} of a rule on these questions."""
    relevant = shown = right = 0
    for qid in qids:
        kept = {aid for aid, c in candidates[qid].items() if rule.keeps(c)}
        relevant += len(questions[qid]["relevant"])
        shown += len(kept)
        right += len(kept & questions[qid]["relevant"])
    precision = right / shown if shown else 1.0
    recall = right / relevant if relevant else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"questions": len(qids), "relevant": relevant, "shown": shown, "right": right,
            "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


def of_source(questions: dict[str, dict], source: str) -> list[str]:
    return [qid for qid, q in questions.items() if q["source"] == source]


# The two families of rules tried on the training source: the floor alone (the shape of the rule kept:
# BM25 weight 0.08, BM25 floor 1), or all three parameters.
FAMILIES = {
    "seuil seul": [Rule(floor, decision.BM25_WEIGHT, decision.BM25_FLOOR) for floor in FLOORS],
    "trois paramètres": [Rule(f, w, b) for w, b, f in itertools.product(WEIGHTS, BM25_FLOORS, FLOORS)],
}


def calibrate(rules: list[Rule], questions: dict[str, dict], candidates: dict[str, dict], qids: list[str]) -> Rule:
    """The rule of best F1 on these questions (ties: highest floor, then BM25 floor, then lowest weight)."""
    return max(rules, key=lambda r: (score(r, questions, candidates, qids)["f1"], r.floor, r.bm25_floor, -r.weight))


def cross_validated(rules: list[Rule], questions: dict[str, dict], candidates: dict[str, dict], qids: list[str],
                    folds: int = 5) -> dict:
    """Pair-level figures of a family calibrated on 4/5 of the questions and scored on the other fifth, pooled."""
    relevant = shown = right = 0
    for k in range(folds):
        test = qids[k::folds]
        rule = calibrate(rules, questions, candidates, [q for q in qids if q not in test])
        part = score(rule, questions, candidates, test)
        relevant, shown, right = relevant + part["relevant"], shown + part["shown"], right + part["right"]
    precision, recall = right / shown if shown else 1.0, right / relevant if relevant else 1.0
    return {"precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0}


def report(questions: dict[str, dict], candidates: dict[str, dict]) -> dict:
    """The shipped rule's figures on both sources ({"rule", TRAIN: score, HELD_OUT: score})."""
    return {"rule": vars(CURRENT), **{s: score(CURRENT, questions, candidates, of_source(questions, s)) for s in (TRAIN, HELD_OUT)}}


def evaluate(settings, embeddings) -> dict:
    """The `catalogue` block of `aiguillage eval`: the shipped relevance rule (pairs of catalogue-pertinence.csv)
    and twin threshold (catalogue-twins.csv), precision and recall on the training and held-out sources.
    settings.data_dir: an empty directory of the run's own, where the fixture is synced and indexed."""
    from evals import catalogue_twins

    questions = read_pairs()
    candidates = candidates_by_question(synced_catalogue(settings, embeddings), embeddings, questions)
    relevance = {part: score(CURRENT, questions, candidates, of_source(questions, source))
                 for part, source in (("train", TRAIN), ("held_out", HELD_OUT))}
    twins = catalogue_twins.evaluate()
    block = {f"{kind}_{part}_{metric}": figures[part][metric]
             for kind, figures in (("relevance", relevance), ("twins", twins))
             for part in ("train", "held_out") for metric in ("precision", "recall")}
    block["n"] = relevance["held_out"]["questions"]
    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data directory to keep the synced catalogue in (default: a temporary one)")
    parser.add_argument("--show", action="store_true", help="print each question's candidates with their label")
    args = parser.parse_args()

    from assistant.config import Settings
    from assistant.embeddings import UniversalSentenceEncoderEmbeddings

    embeddings = UniversalSentenceEncoderEmbeddings()
    questions = read_pairs()
    with tempfile.TemporaryDirectory(prefix="aiguillage-pertinence-") as tmp:
        settings = Settings(data_dir=args.data_dir or Path(tmp), corpus_dir=ROOT / "corpus", _env_file=None)
        catalogue = synced_catalogue(settings, embeddings)
        candidates = candidates_by_question(catalogue, embeddings, questions)
        names = {i: e.name for i, e in catalogue.entries.items()}
    if args.show:
        for qid, q in questions.items():
            print(f"\n{qid} [{q['source']}] {q['question']}")
            for aid, c in sorted(candidates[qid].items(), key=lambda p: -p[1].relevance):
                mark = "+" if aid in q["relevant"] else " "
                print(f" {mark} {aid:>4} cos {c.cosine:.2f} bm25 {c.bm25:5.2f} {'montrée' if CURRENT.keeps(c) else '       '} {names[aid][:90]}")
            missed = q["relevant"] - set(candidates[qid])
            if missed:
                print("   pertinentes, jamais candidates : " + ", ".join(sorted(missed, key=int)))
    counts = defaultdict(int)
    for q in questions.values():
        counts[q["source"]] += 1
    print(f"{sum(counts.values())} questions ({', '.join(f'{s} {n}' for s, n in sorted(counts.items()))}), "
          f"{sum(len(q['relevant']) for q in questions.values())} paires pertinentes")
    train = of_source(questions, TRAIN)
    for family, rules in FAMILIES.items():
        cv = cross_validated(rules, questions, candidates, train)
        print(f"{family}, validation croisée en 5 parts sur {TRAIN} : précision {cv['precision']:.3f}, "
              f"rappel {cv['recall']:.3f}, F1 {cv['f1']:.3f}")
    shown = [("livrée", CURRENT)] + [(f"calibrée ({family})", calibrate(rules, questions, candidates, train))
                                     for family, rules in FAMILIES.items()]
    for label, rule in shown:
        print(f"règle {label} : seuil {rule.floor}, poids BM25 {rule.weight}, plancher BM25 {rule.bm25_floor}")
        for source in (TRAIN, HELD_OUT):
            s = score(rule, questions, candidates, of_source(questions, source))
            print(f"  {source:<17} ({s['questions']} questions, {s['relevant']} paires pertinentes) : {s['shown']} montrées, "
                  f"précision {s['precision']:.3f}, rappel {s['recall']:.3f}, F1 {s['f1']:.3f}")


if __name__ == "__main__":
    main()
