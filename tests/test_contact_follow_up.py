"""« et qui je contacte ? » after an answer: only the territory changes whom to contact, so the only
question ever asked is where (never who is asking or their size), and only when an offer shown has a
local door the known territory does not give. Generated over the gold set's single questions
(evals/datasets/gold.jsonl), through the real pipeline; the reply naming the persona's département
is answered as the contact follow-up, with a concrete door for every offer."""

from __future__ import annotations

import json
import re

from assistant.pipeline.compose import contact_for
from tests.conftest import ROOT

GOLD = [json.loads(line) for line in (ROOT / "evals" / "datasets" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
SINGLE = [g for g in GOLD if g["kind"] == "single"]
FOLLOW_UP = "et qui je contacte ?"


def test_a_contact_follow_up_asks_only_where_and_only_when_it_changes_the_door(assistant):
    problems, asked, answered, replied = [], 0, 0, 0
    for case in SINGLE:
        first = assistant.chat(case["turns"][0])
        if first.kind != "answer":
            continue
        shown = [r.offer for r in first.referrals]
        follow = assistant.chat(FOLLOW_UP, first.conversation_id)
        door_unknown = [o.id for o in shown if contact_for(assistant.contacts, follow.profile, o) is None]
        if follow.kind == "clarification":
            asked += 1
            if follow.clarification.key not in {"territory", "place"} or not door_unknown:
                problems.append(f"{case['id']}: asked « {follow.clarification.question} » (doors unknown: {door_unknown})")
                continue
            département = re.search(r"\(([^)]+)\)", case["persona"])
            if département and assistant.territories.resolve(département.group(1)).departement is not None:
                reply = assistant.chat(département.group(1), first.conversation_id)
                replied += 1
                missing = [r.offer.id for r in reply.referrals if contact_for(assistant.contacts, reply.profile, r.offer) is None]
                if reply.kind != "answer" or not reply.context.concise or missing or "Qui contacter" not in reply.answer.text:
                    problems.append(f"{case['id']}: the reply « {département.group(1)} » got {reply.kind}, doors missing {missing}")
        else:
            answered += 1
            if door_unknown:
                problems.append(f"{case['id']}: answered without asking where, doors unknown for {door_unknown}")
            if follow.kind != "answer" or not follow.context.concise:
                problems.append(f"{case['id']}: the follow-up got {follow.kind}, not the short contact answer")
    assert problems == []
    assert asked > 0 and answered > 0 and replied > 0, (asked, answered, replied)
