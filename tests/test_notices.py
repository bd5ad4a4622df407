"""Outdated-premise notices appear only when the message asserts the premise.

tests/data/premises.yaml gives, for each card's premise, phrasings that assert it (the notice must
appear) and near-misses that share its words without asserting it (it must not). The decision's
threshold is chosen on that file and measured on tests/data/premises-heldout.yaml (evals/notices.py).
"""

from __future__ import annotations

import pytest

from assistant.pipeline.judge.notices import CLAIM_COVERAGE, PremiseIndex, coverage, phrase_terms
from assistant.pipeline.normalise import normalise
from evals.notices import HELD_OUT, TUNING, accepted, calibrate, load, score
from ingest.corpus import load_corpus
from tests.conftest import CORPUS

OFFERS = load_corpus(CORPUS).offers
DATA = load(TUNING)
INDEX = PremiseIndex(OFFERS)
# MaPrimeRénov' asked for the commune's own buildings (the card's second premise, added to the data on
# 5 December 2026): 10 / 10 phrasings, but 4 / 10 near-misses that name the subject and a building
# without asking for it (« Comment informer les familles de l'école sur MaPrimeRénov' ? »). Strict:
# when they pass, the mark must go.
NOT_YET_SILENT = {"anah-maprimerenov"}


def corrected(message: str) -> set[str]:
    return {offer.id for offer, _ in INDEX.outdated_premises(normalise(message))}


def test_the_data_files_cover_every_premise_of_the_corpus():
    with_premises = {entry.offer.id for entry in INDEX.premises}
    assert set(DATA) == with_premises == set(load(HELD_OUT))
    assert all(len(d["fires"]) >= 10 * len(OFFERS[o].outdated_premises) >= 10 and len(d["near"]) >= 10 for o, d in DATA.items())


@pytest.mark.parametrize("offer_id", sorted(DATA))
def test_each_premise_fires_on_its_phrasings(offer_id):
    missed = [q for q in DATA[offer_id]["fires"] if not corrected(q) & accepted(offer_id)]
    assert missed == []


def marked(offer_id: str, not_yet: set[str]):
    reason = "pas encore au niveau demandé (voir NOT_YET_SILENT)"
    return pytest.param(offer_id, marks=pytest.mark.xfail(strict=True, reason=reason)) if offer_id in not_yet else offer_id


@pytest.mark.parametrize("offer_id", [marked(o, NOT_YET_SILENT) for o in sorted(DATA)])
def test_no_premise_fires_on_near_misses(offer_id):
    fired = [(q, corrected(q)) for q in DATA[offer_id]["near"] if corrected(q)]
    assert fired == []


def test_the_threshold_in_use_is_the_one_calibrated_on_the_tuning_part():
    chosen, _ = calibrate(OFFERS)
    assert CLAIM_COVERAGE == chosen


def test_held_out_figures_do_not_fall_below_what_was_measured():
    """82 / 90 phrasings and 1 / 90 near-misses on 5 December 2026 (the keyword rule before: 73 and 10)."""
    held = score(INDEX, load(HELD_OUT))
    assert held.fired >= 82 and held.near_fired <= 1, (held.missed, held.wrongly)


@pytest.mark.parametrize("message", [
    "Quelle est la date limite pour déposer un dossier DETR en 2026 ?",
    "Quelle échéance pour la DSIL 2026 ?",
    "La date limite pour la DSIL est-elle fixée en 2026 ?",
])
def test_generic_words_of_a_premise_raise_no_notice(message):
    assert corrected(message) == set()


def test_a_subject_inside_a_longer_name_of_another_offer_is_not_said():
    """Generated over the cards: for every name of another offer that holds a premise's subject, the
    subject said alone with a claim is corrected, said inside that longer name it is not (« Programme
    national Ponts Travaux », « MaPrimeRénov' Copropriété », « OPAH-RU » for the OPAH)."""
    cases = 0
    for offer in OFFERS.values():
        for premise in offer.outdated_premises:
            subjects = {phrase_terms(s): s for s in premise.subject}
            claims = [c for c in premise.claims if not any(coverage(phrase_terms(c), s) == 1 for s in subjects)] or [""]
            for other in OFFERS.values():
                for name in [other.title, *other.aliases] if other.id != offer.id else []:
                    longer = phrase_terms(name)
                    inside = [s for terms, s in subjects.items() if len(longer) > len(terms) and coverage(longer, terms) == 1]
                    if not inside or longer in subjects:
                        continue
                    assert offer.id in accepted_of(corrected(f"{inside[0]} : {claims[0]} ?")), (inside[0], claims[0])
                    assert offer.id not in corrected(f"{name} : {claims[0]} ?"), (name, claims[0])
                    cases += 1
    assert cases >= 10, cases


def accepted_of(found: set[str]) -> set[str]:
    return set().union(*(accepted(o) for o in found)) if found else set()


def test_phrases_skip_function_words_only():
    assert phrase_terms("le transfert de l'eau") == phrase_terms("transfert eau")
    assert phrase_terms("plus d'OPAH") != phrase_terms("OPAH")
