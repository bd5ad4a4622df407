"""A premise notice is attached to its card: cited (a link on the card's name) when that card is among
the referrals, otherwise given with its source page — never a link on the name of an offer the user
does not see. Generated over every premise of the corpus, then through the real pipeline on the
phrasings of tests/data/premises.yaml."""

from __future__ import annotations

import re

import pytest

from api.presenters import chat_response
from assistant.answer import AnswerContext, GroundedGenerator, Referral
from assistant.eligibility import Verdict
from assistant.pipeline.compose import TurnResult
from assistant.profile import Profile
from assistant.retrieval import OfferHit
from evals.notices import TUNING, load
from ingest.corpus import load_corpus
from tests.conftest import CORPUS

OFFERS = load_corpus(CORPUS).offers
PREMISES = [(o, p) for o in OFFERS.values() for p in o.outdated_premises]
LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")


def check_attached(body, result) -> list[str]:
    """What breaks the rule in one API body; [] when every correction is attached to its card."""
    problems = []
    shown = {r.offer.id for r in result.referrals}
    cited = {c.offer_id for c in body.citations}
    for offer, premise in result.corrections:
        links = LINK.findall(body.answer)
        if offer.id in shown:
            if (offer.title, offer.url) not in links:
                problems.append(f"{offer.id}: shown, but the correction does not cite its card")
        else:
            if offer.id in cited or any(label == offer.title for label, _ in links) or f"[{offer.id}]" in body.answer:
                problems.append(f"{offer.id}: not shown, yet cited as an offer")
            if ("page officielle", offer.url) not in links:
                problems.append(f"{offer.id}: not shown, and its source is not given")
        if premise.correction not in body.answer:
            problems.append(f"{offer.id}: correction missing")
    return problems


def referral(offer) -> Referral:
    return Referral(OfferHit(offer, 0.1), Verdict("unknown"), [])


@pytest.mark.parametrize("shown", [True, False], ids=["card-shown", "card-not-shown"])
@pytest.mark.parametrize(("offer", "premise"), PREMISES, ids=[f"{o.id}-{i}" for i, (o, _) in enumerate(PREMISES)])
def test_every_correction_is_attached_to_its_card(offer, premise, shown):
    other = next(o for o in OFFERS.values() if o.id != offer.id and o.status == "active")
    referrals = [referral(offer if shown else other)]
    context = AnswerContext(question="?", profile=Profile(), referrals=referrals, corrections=[(offer, premise)])
    answer = GroundedGenerator().generate(context)
    result = TurnResult("c", 1, "answer", answer, referrals, [], Profile(), None, [(offer, premise)], context=context)
    assert check_attached(chat_response(result), result) == []


PHRASINGS = [q for block in load(TUNING) for q in block.fires[:2]] + [
    "Commune de 250 habitants dans l'Aisne, notre petit pont fait 1,80 m d'ouverture, le Programme national Ponts "
    "travaux peut-il le financer ?",
]


def test_through_the_pipeline_no_correction_links_an_offer_not_shown(assistant):
    problems, not_shown, corrected = [], 0, 0
    for message in PHRASINGS:
        result = assistant.chat(message)
        problems += [f"{message} — {p}" for p in check_attached(chat_response(result), result)]
        corrected += bool(result.corrections)
        not_shown += any(o.id not in {r.offer.id for r in result.referrals} for o, _ in result.corrections)
    assert problems == []
    assert corrected >= len(PHRASINGS) - 1 and not_shown > 0  # both ways of attaching were exercised
