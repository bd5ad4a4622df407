"""Outdated-premise notices: the claim threshold chosen on one part of the sentences, reported on the other.

    python -m evals.notices

Data: tests/data/premises.yaml (10 phrasings and 10 near-misses per card with premises: the part the
cards' `subject`/`claims` phrases and the threshold were chosen on) and tests/data/premises-heldout.yaml
(5 and 5 more per card, written before the decision was tuned, never used to choose anything).

The threshold (assistant.pipeline.judge.notices.CLAIM_COVERAGE: the share of a claim phrase that must
be said as a run of words) is the one of GRID with the fewest errors on the tuning part (phrasings
missed + near-misses corrected), the strictest on a tie. Measured on 5 December 2026:
  tuning part  : 200 / 200 phrasings corrected, 4 / 195 near-misses (threshold 1.0; the 4 are
                 MaPrimeRénov' with a school or a hall named, not asked for);
  held-out part: 82 / 90 phrasings corrected, 1 / 90 near-misses.
Before (keyword rule of commit 10c892a), on the 180 + 180 sentences the file had then: 164 / 180 and
14 / 180; held-out 73 / 90 and 10 / 90.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.pipeline.judge.notices import PremiseIndex
from assistant.pipeline.normalise import normalise
from assistant.schema import Offer

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
TUNING, HELD_OUT = DATA / "premises.yaml", DATA / "premises-heldout.yaml"
GRID = (0.25, 0.34, 0.5, 0.67, 0.75, 1.0)
# One belief recorded on two cards (the water transfer): either card's correction is the right one.
SAME_BELIEF = [{"bdt-aqua-pret", "etat-transfert-eau-assainissement"}]


@dataclass
class Score:
    fired: int  # phrasings whose own correction appears
    phrasings: int
    near_fired: int  # near-misses that drew any correction
    near: int
    missed: list[tuple[str, str]]  # (card, sentence)
    wrongly: list[tuple[str, str, str]]  # (card, sentence, card corrected)

    @property
    def errors(self) -> int:
        return self.phrasings - self.fired + self.near_fired

    def line(self) -> str:
        return (f"phrasings corrected {self.fired}/{self.phrasings} ({self.fired / self.phrasings:.3f}), "
                f"near-misses corrected {self.near_fired}/{self.near} ({self.near_fired / self.near:.3f})")


def load(path: Path) -> dict[str, dict[str, list[str]]]:
    """card id -> {"fires": [sentence…], "near": [sentence…]}"""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def accepted(offer_id: str) -> set[str]:
    return next((family for family in SAME_BELIEF if offer_id in family), {offer_id})


def score(index: PremiseIndex, data: dict[str, dict[str, list[str]]]) -> Score:
    """Each sentence through the normaliser and the index, as a turn reads it."""
    def corrected(sentence: str) -> set[str]:
        return {offer.id for offer, _ in index.outdated_premises(normalise(sentence))}

    missed = [(o, q) for o, d in data.items() for q in d["fires"] if not corrected(q) & accepted(o)]
    wrongly = [(o, q, ", ".join(sorted(c))) for o, d in data.items() for q in d["near"] if (c := corrected(q))]
    phrasings = sum(len(d["fires"]) for d in data.values())
    near = sum(len(d["near"]) for d in data.values())
    return Score(phrasings - len(missed), phrasings, len(wrongly), near, missed, wrongly)


def calibrate(offers: dict[str, Offer]) -> tuple[float, dict[float, Score]]:
    """The threshold of GRID with the fewest errors on the tuning part (the strictest on a tie)."""
    tuning = load(TUNING)
    scores = {t: score(PremiseIndex(offers, claim_coverage=t), tuning) for t in GRID}
    chosen = min(GRID, key=lambda t: (scores[t].errors, -t))
    return chosen, scores


def main() -> None:
    from assistant.config import Settings
    from ingest.corpus import load_corpus

    offers = load_corpus(Settings().corpus_dir).offers
    chosen, scores = calibrate(offers)
    print("Partie de réglage (tests/data/premises.yaml)")
    for t, s in scores.items():
        print(f"  seuil {t:.2f} : {s.line()}" + ("   <- retenu" if t == chosen else ""))
    held = score(PremiseIndex(offers, claim_coverage=chosen), load(HELD_OUT))
    print(f"Partie tenue à l'écart (tests/data/premises-heldout.yaml), seuil {chosen:.2f} : {held.line()}")
    for card, sentence in held.missed:
        print(f"  manquée  [{card}] {sentence}")
    for card, sentence, got in held.wrongly:
        print(f"  à tort   [{card}] {sentence} -> {got}")


if __name__ == "__main__":
    main()
