"""Calibration of the twin threshold (assistant.catalogue.TWIN_THRESHOLD) on labelled pairs.

evals/datasets/catalogue-twins.csv: for each of the 274 public aids (tests/data/aides-territoires) whose
financer is a curated partner, a card of that partner (its twin when there is one, else the one with
the most similar title) and a label by hand — 1 when the aid and the card describe the same offer.
Prints, for each threshold, how many aids assistant.catalogue.twin_of hides and its precision / recall
(a twin is right when it is the labelled card). Run: `python -m evals.catalogue_twins`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from assistant.catalogue import TWIN_THRESHOLD, CardNames, partners_of, title_similarity, twin_of
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
    from assistant.offer_names import OfferNames
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.aides_territoires import Aid
    from ingest.catalogue_index import entry_of

    offers = load_corpus(ROOT / "corpus").offers
    cards, resolver = CardNames(offers, OfferNames(offers.values())), PerimeterResolver(Territories.load(ROOT / "corpus"))
    labels = {row["aid_id"]: (row["offer_id"], row["same_offer"] == "1") for row in csv.DictReader(DATASET.open(encoding="utf-8"))}
    entries = [entry_of(Aid.from_api(a), resolver) for a in public_aids() if str(a["id"]) in labels]
    positives = sum(1 for _, same in labels.values() if same)
    print(f"{len(entries)} aides étiquetées, {positives} jumelles d'une fiche ; seuil retenu {TWIN_THRESHOLD}")
    for threshold in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 1.01):
        twins = {e.id: twin_of(e, cards, threshold) for e in entries}
        taken = {i: t.card.id for i, t in twins.items() if t is not None}
        right = sum(1 for i, card in taken.items() if labels[i] == (card, True))
        precision = right / len(taken) if taken else 1.0
        label = "noms seuls" if threshold > 1 else f"seuil {threshold:.2f}"
        print(f"{label} : {len(taken)} masquées, précision {precision:.2f}, rappel {right / positives:.2f}")


if __name__ == "__main__":
    main()
