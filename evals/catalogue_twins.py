"""Calibration of the twin threshold (assistant.catalogue.TWIN_THRESHOLD) on labelled pairs.

evals/datasets/catalogue-twins.csv: for each of the 274 public aids (tests/data/aides-territoires) whose
financer is a curated partner, the card of that partner with the most similar title and a label by
hand — 1 when the aid and the card describe the same offer. Prints, for each threshold, the pairs
taken as twins and precision / recall. Run: `python -m evals.catalogue_twins`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from assistant.catalogue import TWIN_THRESHOLD, partners_of, title_similarity
from ingest.corpus import load_corpus
from tests.fake_aides_territoires import public_aids

DATASET = Path(__file__).parent / "datasets" / "catalogue-twins.csv"
ROOT = Path(__file__).parents[1]


def best_pairs() -> list[tuple[str, str, str, float]]:
    """(aid id, aid name, best card id, title similarity) for the aids financed by a curated partner."""
    offers = load_corpus(ROOT / "corpus").offers
    pairs = []
    for aid in public_aids():
        partners = partners_of(aid["financers"])
        scored = [(max(title_similarity(aid["name"], n) for n in [o.title, *o.aliases]), o.id)
                  for o in offers.values() if o.partner in partners]
        if scored:
            score, offer_id = max(scored)
            pairs.append((str(aid["id"]), aid["name"], offer_id, score))
    return pairs


def main() -> None:
    labels = {row["aid_id"]: (row["offer_id"], row["same_offer"] == "1") for row in csv.DictReader(DATASET.open(encoding="utf-8"))}
    pairs = [p for p in best_pairs() if p[0] in labels]
    positives = sum(1 for aid_id, (_, same) in labels.items() if same)
    print(f"{len(pairs)} paires étiquetées, {positives} jumelles ; seuil retenu {TWIN_THRESHOLD}")
    for threshold in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
        taken = [p for p in pairs if p[3] >= threshold]
        right = sum(1 for aid_id, _, offer_id, _ in taken if labels[aid_id] == (offer_id, True))
        precision = right / len(taken) if taken else 1.0
        print(f"seuil {threshold:.2f} : {len(taken)} prises, précision {precision:.2f}, rappel {right / positives:.2f}")


if __name__ == "__main__":
    main()
