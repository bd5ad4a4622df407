"""One normalisation at the door: the same question however it is typed gives the same answer."""

from __future__ import annotations

import json
import unicodedata

import pytest

from assistant.pipeline.normalise import normalise
from assistant.pipeline.understand import understand
from assistant.profile import Profile
from tests.conftest import ROOT

GOLD = [json.loads(line) for line in (ROOT / "evals/datasets/gold.jsonl").read_text(encoding="utf-8").splitlines()]


def without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


VARIANTS = {
    "NFD": lambda t: unicodedata.normalize("NFD", t),
    "capitales": str.upper,
    "sans accents": without_accents,
}


@pytest.mark.parametrize("typed, read", [
    ("L\u2019e\u0301cole", "L'école"),                       # curly apostrophe, decomposed accent
    ("\u201cFonds vert\u201d", '"Fonds vert"'),
    ("3\u00a0500\u202fhabitants", "3 500 habitants"),       # no-break and narrow no-break spaces
    ("  deux   espaces\u200b ", "deux espaces"),            # zero-width space, runs of spaces
    ("« Fonds vert »\nDETR", "« Fonds vert »\nDETR"),       # French quotes and line breaks kept
    ("120\u00a0m²", "120 m2"),
])
def test_normalise_spells_one_way(typed, read):
    assert normalise(typed) == read
    assert normalise(read) == read  # idempotent


def first_answer(assistant, question: str) -> tuple[list[str], str | None, str]:
    """What a user sees of a first message: the top three referrals (after every stage, the doors
    included), the département understood and the kind of turn."""
    result = assistant.chat(question)
    return [r.offer.id for r in result.referrals[:3]], result.profile.departement_code, result.kind


def test_every_gold_question_reads_the_same_in_nfd_capitals_and_without_accents(assistant):
    """Issue 11: ≥ 98 % of (question, variant) pairs give the same top three referrals, in the same
    order, the same département and the same kind of turn as the question typed normally (NFC).
    5 December 2026: 725 / 735 (0.986). The ten that differ (nine in capitals or without accents) draw
    another dotation or door: the door stage embeds the query as typed, not in the cards' spelling
    as retrieval does (its top three alone: 735 / 735); one refusal in capitals loses its département."""
    same = total = 0
    differing = []
    for case in GOLD:
        question = unicodedata.normalize("NFC", case["turns"][0])
        expected = first_answer(assistant, question)
        for name, variant in VARIANTS.items():
            got = first_answer(assistant, variant(question))
            total += 1
            same += got == expected
            if got != expected:
                differing.append((case["id"], name, expected, got))
    assert total == 3 * len(GOLD) >= 700
    assert same / total >= 0.98, differing


@pytest.mark.parametrize("question", [
    "Commune de 400 habitants en haute-marne, on veut rénover l'école",
    "COMMUNE DE 400 HABITANTS EN HAUTE-MARNE, ON VEUT RÉNOVER L'ÉCOLE",
    "Commune de 400 habitants en Haute-Marne, on veut renover l'ecole",
])
def test_a_lowercase_or_capital_departement_is_recognised(assistant, question):
    text = normalise(question)
    understood = understand(text, Profile(), {}, assistant.themes, assistant.territories)
    assert understood.profile.departement_name == "Haute-Marne"
