"""Calibration of the twin threshold (assistant.catalogue.TWIN_THRESHOLD) on labelled pairs.

evals/datasets/catalogue-twins.csv: for each of the 274 public aids (evals/datasets/aides-territoires) whose
financer is a curated partner, a card of that partner (its twin when there is one, else the one with
the most similar title) and a label by hand — 1 when the aid and the card describe the same offer.
Split by source, the financer whose catalogue wrote the aid: the Banque des Territoires' own aids (29,
5 twins) train, the other partners' (19, 9 twins) are held out. Prints, for each threshold and each
source, how many aids assistant.catalogue.twin_of hides and its precision / recall (a twin is right when
it is the labelled card), the threshold of best F1 on the training source and the shipped threshold's
figures on both. Run: `python -m evals.catalogue_twins`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from assistant.catalogue import TWIN_THRESHOLD, CardNames, partners_of, title_similarity, twin_of
from ingest.corpus import load_corpus
from evals.fake_aides_territoires import public_aids

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


THRESHOLDS = [round(0.30 + 0.05 * i, 2) for i in range(7)]  # 0.30 … 0.60; above 1: the names alone
TRAIN, HELD_OUT = "banque-des-territoires", "autres partenaires"


def source_of(financers: list[str]) -> str:
    """The split by source: the aids the Banque des Territoires alone finances (its catalogue's wording, 29
    aids) train; those of the other partners (Anah, ADEME, Cerema, ANCT, alone or with it) are held out."""
    return TRAIN if partners_of(financers) == {"banque-des-territoires"} else HELD_OUT


def score(entries, labels: dict[str, tuple[str, bool]], cards, threshold: float) -> dict:
    """{"aids", "twins", "hidden", "right", "precision", "recall", "f1"}: a hidden aid is right when hidden behind its labelled card."""
    taken = {e.id: t.card.id for e in entries if (t := twin_of(e, cards, threshold)) is not None}
    right = sum(1 for i, card in taken.items() if labels[i] == (card, True))
    positives = sum(1 for e in entries if labels[e.id][1])
    precision = right / len(taken) if taken else 1.0
    recall = right / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"aids": len(entries), "twins": positives, "hidden": len(taken), "right": right,
            "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


def labelled() -> tuple[dict[str, list], dict[str, tuple[str, bool]], CardNames]:
    """({source: the labelled aids as CatalogueEntry}, {aid id: (card id, same offer)}, the cards' names)."""
    from assistant.offer_names import OfferNames
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.aides_territoires import Aid
    from ingest.catalogue_index import entry_of

    offers = load_corpus(ROOT / "corpus").offers
    cards, resolver = CardNames(offers, OfferNames(offers.values())), PerimeterResolver(Territories.load(ROOT / "corpus"))
    with DATASET.open(encoding="utf-8") as handle:
        labels = {row["aid_id"]: (row["offer_id"], row["same_offer"] == "1") for row in csv.DictReader(handle)}
    entries = [entry_of(Aid.from_api(a), resolver) for a in public_aids() if str(a["id"]) in labels]
    return {s: [e for e in entries if source_of(e.financers) == s] for s in (TRAIN, HELD_OUT)}, labels, cards


def evaluate() -> dict:
    """The shipped threshold's figures by source, for `aiguillage eval`: {"train": score, "held_out": score}."""
    by_source, labels, cards = labelled()
    return {"train": score(by_source[TRAIN], labels, cards, TWIN_THRESHOLD),
            "held_out": score(by_source[HELD_OUT], labels, cards, TWIN_THRESHOLD)}


def main() -> None:
    by_source, labels, cards = labelled()
    for source, part in by_source.items():
        print(f"{source} : {len(part)} aides étiquetées, {sum(labels[e.id][1] for e in part)} jumelles d'une fiche")
    for threshold in THRESHOLDS + [1.01]:
        label = "noms seuls" if threshold > 1 else f"seuil {threshold:.2f}"
        line = [f"{s} : {r['hidden']} masquées, précision {r['precision']:.2f}, rappel {r['recall']:.2f}"
                for s, r in ((s, score(p, labels, cards, threshold)) for s, p in by_source.items())]
        print(f"{label} — " + " ; ".join(line))
    best = max(THRESHOLDS, key=lambda t: (score(by_source[TRAIN], labels, cards, t)["f1"], t))
    print(f"seuil de meilleur F1 sur {TRAIN} : {best:.2f} ; seuil retenu {TWIN_THRESHOLD}")
    for source in (TRAIN, HELD_OUT):
        r = score(by_source[source], labels, cards, TWIN_THRESHOLD)
        print(f"  {source} au seuil retenu : précision {r['precision']:.3f}, rappel {r['recall']:.3f} ({r['right']}/{r['twins']} jumelles, {r['hidden']} masquées)")


if __name__ == "__main__":
    main()
