"""Outdated-premise notices: the assertion rule's settings chosen on one part of the sentences, reported on the other.

    python -m evals.notices            # grid on the tuning part, held-out figures, per-premise table

Data, one block per premise of a card (in the card's order), `fires` (sentences asserting the premise:
its notice must appear) and `near` (sentences sharing its words without asserting it: no notice):
  tests/data/premises.yaml         tuning part: the cards' `subject`/`claims` phrases and the settings
                                   below are chosen on it (at least 10 + 10 per premise);
  tests/data/premises-heldout.yaml held-out part: 5 + 5 per premise, written before the assertion rule
                                   was tuned, never used to choose anything.

The settings (assistant.pipeline.judge.notices): CLAIM_COVERAGE, the share of a claim phrase that must
be said as a run of words, and CUE_REACH, how many words a distancing cue (negation, exclusion, end of
a scheme, mere mention, place near the claim) may stand from the premise's words within their clause
(0: cues ignored). The pair of GRID with the fewest errors on the tuning part (phrasings missed +
near-misses corrected) is kept; on a tie the strictest coverage, then the shortest reach.

Measured on 5 December 2026 (figures in the README, « Comment ça marche »).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.pipeline.judge.notices import PremiseIndex
from assistant.pipeline.normalise import normalise
from assistant.schema import Offer

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
TUNING, HELD_OUT = DATA / "premises.yaml", DATA / "premises-heldout.yaml"
COVERAGE_GRID = (0.5, 0.67, 1.0)
REACH_GRID = (0, 2, 4, 8, 30)
# One belief recorded on two cards (the water transfer): either card's correction is the right one.
SAME_BELIEF = [{"bdt-aqua-pret", "etat-transfert-eau-assainissement"}]


@dataclass(frozen=True)
class Block:
    """The sentences written for one premise: the card's `index`-th outdated premise."""

    card: str
    index: int
    fires: tuple[str, ...]
    near: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.card}#{self.index + 1}"


@dataclass
class Score:
    fired: int  # phrasings whose own premise is corrected
    phrasings: int
    near_fired: int  # near-misses that drew any correction
    near: int
    missed: list[tuple[str, str]]  # (premise, sentence)
    wrongly: list[tuple[str, str, str]]  # (premise, sentence, card corrected)

    @property
    def errors(self) -> int:
        return self.phrasings - self.fired + self.near_fired

    def line(self) -> str:
        return (f"phrasings corrected {self.fired}/{self.phrasings} ({self.fired / self.phrasings:.3f}), "
                f"near-misses corrected {self.near_fired}/{self.near} ({self.near_fired / self.near:.3f})")


def load(path: Path) -> list[Block]:
    """The blocks of a data file: {card id: [{"fires": [...], "near": [...]}, ...]} -> [Block]."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Block(card, i, tuple(b["fires"]), tuple(b["near"])) for card, blocks in data.items() for i, b in enumerate(blocks)]


def accepted(offer_id: str) -> set[str]:
    return next((family for family in SAME_BELIEF if offer_id in family), {offer_id})


def corrects(index: PremiseIndex, block: Block, sentence: str) -> bool:
    """Whether the sentence, read as a turn reads it, draws the correction of the block's premise (or of
    the same belief recorded on another card)."""
    for offer, premise in index.outdated_premises(normalise(sentence)):
        if offer.id in accepted(block.card) and (offer.id != block.card or premise is offer.outdated_premises[block.index]):
            return True
    return False


def corrected(index: PremiseIndex, sentence: str) -> set[str]:
    """The cards whose correction the sentence draws."""
    return {offer.id for offer, _ in index.outdated_premises(normalise(sentence))}


def score(index: PremiseIndex, blocks: list[Block]) -> Score:
    missed = [(b.name, q) for b in blocks for q in b.fires if not corrects(index, b, q)]
    wrongly = [(b.name, q, ", ".join(sorted(c))) for b in blocks for q in b.near if (c := corrected(index, q))]
    phrasings = sum(len(b.fires) for b in blocks)
    near = sum(len(b.near) for b in blocks)
    return Score(phrasings - len(missed), phrasings, len(wrongly), near, missed, wrongly)


def calibrate(offers: dict[str, Offer]) -> tuple[tuple[float, int], dict[tuple[float, int], Score]]:
    """The (claim coverage, cue reach) of the grid with the fewest errors on the tuning part."""
    tuning = load(TUNING)
    grid = list(itertools.product(COVERAGE_GRID, REACH_GRID))
    scores = {(c, r): score(PremiseIndex(offers, claim_coverage=c, cue_reach=r), tuning) for c, r in grid}
    chosen = min(grid, key=lambda g: (scores[g].errors, -g[0], g[1]))
    return chosen, scores


def table(index: PremiseIndex, blocks: list[Block]) -> list[tuple[str, int, int, int, int]]:
    """Per premise: (premise, phrasings corrected, phrasings, near-misses corrected, near-misses)."""
    rows = []
    for b in blocks:
        s = score(index, [b])
        rows.append((b.name, s.fired, s.phrasings, s.near_fired, s.near))
    return rows


def main() -> None:
    from assistant.config import Settings
    from ingest.corpus import load_corpus

    offers = load_corpus(Settings().corpus_dir).offers
    chosen, scores = calibrate(offers)
    print("Partie de réglage (tests/data/premises.yaml) : couverture de l'affirmation, portée des indices")
    for (c, r), s in scores.items():
        print(f"  couverture {c:.2f}, portée {r:2d} : {s.line()}" + ("   <- retenu" if (c, r) == chosen else ""))
    index = PremiseIndex(offers, claim_coverage=chosen[0], cue_reach=chosen[1])
    for card, sentence in scores[chosen].missed:
        print(f"  manquée  [{card}] {sentence}")
    for card, sentence, got in scores[chosen].wrongly:
        print(f"  à tort   [{card}] {sentence} -> {got}")
    held = score(index, load(HELD_OUT))
    print(f"Partie tenue à l'écart (tests/data/premises-heldout.yaml) : {held.line()}")
    for card, sentence in held.missed:
        print(f"  manquée  [{card}] {sentence}")
    for card, sentence, got in held.wrongly:
        print(f"  à tort   [{card}] {sentence} -> {got}")
    print("\nPar prémisse (réglage | tenue à l'écart) : formulations corrigées, quasi-homonymes corrigés")
    tuning_rows, held_rows = table(index, load(TUNING)), {r[0]: r for r in table(index, load(HELD_OUT))}
    print(f"  {'prémisse':45} {'formul.':>8} {'quasi':>7} | {'formul.':>8} {'quasi':>7}")
    for name, f, n, nf, nn in tuning_rows:
        _, hf, hn, hnf, hnn = held_rows.get(name, (name, 0, 0, 0, 0))
        print(f"  {name:45} {f:>3}/{n:<4} {nf:>2}/{nn:<4} | {hf:>3}/{hn:<4} {hnf:>2}/{hnn:<4}")


if __name__ == "__main__":
    main()
