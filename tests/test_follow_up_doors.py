"""« Et qui je contacte ? » after a turn that named a door keeps that door, generated from the data: every
signpost card (corpus/signposts/, asked by its own first need) and every scope refusal door met in
evals/datasets/hors-champ-collectivites.csv. A newcomer's « Notre secrétaire de mairie part à la
retraite » was refused towards the centre de gestion, and the follow-up answered with the préfecture.
"""

from __future__ import annotations

import csv
from pathlib import Path

from assistant.guardrails import to
from assistant.profile import Profile
from assistant.scope.doors import DOORS, door_of_row

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
FOLLOW_UP = "Et qui je contacte ?"
CANTAL = Profile(collectivity_type="commune", departement_code="15")
PER_DOOR = 3  # refused questions followed up per refusal door (each door of the data file is met)


def _rows(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_the_follow_up_keeps_each_signpost_door(assistant):
    """Each signpost card's first need, asked by a commune of the Cantal: when the answer (or refusal)
    names that card, the follow-up names the same doors, that card first, with its local office."""
    from ingest.corpus import load_corpus

    cards = load_corpus(assistant.settings.corpus_dir).signposts
    followed = 0
    for card in cards.values():
        first = assistant.chat(card.needs[0] if card.needs else card.covers, None, CANTAL)
        named = [s.id for s, _ in first.doors]
        if not named or named[0] != card.id:
            continue
        followed += 1
        second = assistant.chat(FOLLOW_UP, first.conversation_id)
        assert second.kind != "clarification" or second.doors, (card.id, second.kind)
        assert [s.id for s, _ in second.doors][:1] == [card.id], (card.id, second.kind, second.answer.text[:300])
        office = second.doors[0][1]
        assert (office.name if office else card.body) in second.answer.text.replace("\\", ""), card.id
    assert followed >= len(cards) - 2, followed  # almost every card is reached by its own first need


def test_the_follow_up_of_a_refusal_keeps_its_door(assistant):
    """Questions of hors-champ-collectivites.csv refused with a door (centre de gestion, préfecture, CNIL,
    service-public.fr): « Et qui je contacte ? » names the same door again, with the same signpost cards
    (the Cantal's CDG), and never another one (the préfecture named for a staff question)."""
    seen: dict[str, int] = {}
    for row in _rows("hors-champ-collectivites.csv"):
        expected = door_of_row(row["genre"], row["rubrique"])
        if seen.get(expected, 0) >= PER_DOOR:
            continue
        first = assistant.chat(row["question"], None, CANTAL)
        door = next((d for d in DOORS if f"adressez-vous plutôt {to(DOORS[d])}." in first.answer.text), None)
        if first.kind != "refusal" or door is None:
            continue
        seen[door] = seen.get(door, 0) + 1
        second = assistant.chat(FOLLOW_UP, first.conversation_id)
        text = second.answer.text
        assert second.kind == "refusal" and f"adressez-vous plutôt {to(DOORS[door])}." in text, (row["id"], text[:300])
        assert [s.id for s, _ in second.doors] == [s.id for s, _ in first.doors], row["id"]
        others = [d for d in DOORS if d != door and to(DOORS[d]) in text]
        assert not others, (row["id"], others)
    assert {"cdg", "prefecture"} <= set(seen), seen
