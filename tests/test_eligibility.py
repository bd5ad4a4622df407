"""Eligibility in three states: « éligible » only when every rule was checked against a known fact."""

from __future__ import annotations

import itertools
import re

import pytest

from assistant.answer import eligibility_line
from assistant.eligibility import FACT_LABELS, _population_check, evaluate, unshown_condition
from assistant.facts import extract_project_facts
from assistant.profile import Profile
from assistant.schema import Eligibility, Offer, PopulationRule
from assistant.text import fold
from ingest.corpus import load_corpus
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS)


def card(corpus, offer_id: str, **eligibility) -> Offer:
    """A real card whose eligibility block is replaced, to test one rule at a time (active, and without
    the notes that may leave something « à confirmer »)."""
    offer = corpus.offers[offer_id]
    data = offer.model_dump()
    data.update(eligibility=eligibility, status="active", status_note=None, cost=None)
    return Offer.model_validate(data)


def said(text: str, **known) -> Profile:
    profile = Profile(**known)
    extract_project_facts(fold(text).replace("’", "'"), profile)
    return profile


COMMUNE = {"collectivity_type": "commune", "population": 250}


# --- each structured rule: passing, failing, unknown -------------------------------------------

def test_works_amount_floor(corpus):
    offer = card(corpus, "cerema-ponts-travaux", works_amount=[{"structure": "bridge", "min_eur": 40000}])
    assert evaluate(offer, said("notre pont : 55 000 € HT de travaux", **COMMUNE)).status == "eligible"
    failing = evaluate(offer, said("notre pont : 12 200 € de travaux", **COMMUNE))
    assert failing.status == "ineligible" and "40\u202f000 € HT" in failing.failed[0]
    assert evaluate(offer, said("notre pont est abîmé", **COMMUNE)).status == "unknown"
    # 45 000 € said without « HT » may be 37 500 € HT: the floor cannot be checked.
    between = evaluate(offer, said("réparer notre pont pour 45 000 €", **COMMUNE))
    assert between.status == "unknown" and "hors taxes" in between.missing[0]


def test_works_amount_ceiling(corpus):
    offer = card(corpus, "cerema-ponts-travaux", works_amount=[{"max_eur": 100000}])
    assert evaluate(offer, said("des travaux de 80 k€", **COMMUNE)).status == "eligible"
    assert evaluate(offer, said("des travaux de 1,2 M€", **COMMUNE)).status == "ineligible"
    assert evaluate(offer, said("des travaux importants", **COMMUNE)).status == "unknown"


def test_the_floor_depends_on_the_structure(corpus):
    offer = corpus.offers["cerema-ponts-travaux"]
    rules = {"works_amount": [r.model_dump() for r in offer.eligibility.works_amount]}
    only_amounts = card(corpus, "cerema-ponts-travaux", **rules)
    assert evaluate(only_amounts, said("notre mur de soutènement, 25 000 € HT de travaux", **COMMUNE)).status == "eligible"
    assert evaluate(only_amounts, said("notre pont, 25 000 € HT de travaux", **COMMUNE)).status == "ineligible"
    # Structure not said: 25 000 € HT passes for a wall, fails for a bridge → à vérifier; 15 000 € fails both.
    assert evaluate(only_amounts, said("25 000 € HT de travaux", **COMMUNE)).status == "unknown"
    assert evaluate(only_amounts, said("15 000 € HT de travaux", **COMMUNE)).status == "ineligible"


def test_minimum_opening(corpus):
    offer = card(corpus, "cerema-ponts-travaux", physical=[{"measure": "opening_m", "structure": "bridge", "min": 2.0}])
    assert evaluate(offer, said("notre pont a 3 m d'ouverture", **COMMUNE)).status == "eligible"
    failing = evaluate(offer, said("notre petit pont fait 1,80 m d'ouverture", **COMMUNE))
    assert failing.status == "ineligible" and "1,8 m" in failing.failed[0]
    assert evaluate(offer, said("notre petit pont", **COMMUNE)).status == "unknown"
    # A retaining wall has no opening: the bridge rule does not concern it.
    assert evaluate(offer, said("notre mur de soutènement", **COMMUNE)).status == "eligible"


def test_the_issue_example_gets_a_no_naming_the_opening(corpus):
    question = ("Commune de 250 habitants dans l'Aisne, notre petit pont fait 1,80 m d'ouverture, le Programme "
                "national Ponts travaux peut-il le financer ?")
    verdict = evaluate(corpus.offers["cerema-ponts-travaux"], said(question, **COMMUNE))
    assert verdict.status == "ineligible"
    assert any("ouverture" in reason and "2 m" in reason for reason in verdict.failed)


@pytest.mark.parametrize("programme", ["action-coeur-de-ville", "petites-villes-de-demain", "villages-d-avenir"])
def test_programme_membership(corpus, programme):
    offer = card(corpus, "bdt-appui-programmes-anct", programmes_any=[programme])
    assert evaluate(offer, Profile(**COMMUNE, programmes=[programme])).status == "eligible"
    unknown = evaluate(offer, Profile(**COMMUNE))
    assert unknown.status == "unknown" and unknown.missing[0].startswith("faire partie ")
    # Membership is never assumed from the asker's size or type: no known fact, no « non ».
    assert evaluate(offer, Profile(collectivity_type="commune", population=600)).status == "unknown"


@pytest.mark.parametrize("zoning", ["ort", "qpv", "frr"])
def test_zonings_count_as_membership_only_when_known(corpus, zoning):
    offer = card(corpus, "anct-fonds-restructuration-locaux-activite", programmes_any=[zoning])
    assert evaluate(offer, Profile(**COMMUNE, facts=[zoning])).status == "eligible"
    assert evaluate(offer, Profile(**COMMUNE)).status == "unknown"


def test_population_rule_still_decides(corpus):
    offer = card(corpus, "anct-petites-villes-de-demain", population=[{"audience": "commune", "max": 19999}])
    assert evaluate(offer, Profile(collectivity_type="commune", population=8000)).status == "eligible"
    assert evaluate(offer, Profile(collectivity_type="commune", population=45000)).status == "ineligible"
    assert evaluate(offer, Profile(collectivity_type="commune")).status == "unknown"


@pytest.mark.parametrize("offer_id", ["anah-maprimeadapt", "anah-mon-accompagnateur-renov", "anah-loc-avantages"])
def test_aids_for_residents_are_never_eligible_for_the_collectivity(corpus, offer_id):
    verdict = evaluate(corpus.offers[offer_id], Profile(collectivity_type="commune", population=1200, facts=["rural"]))
    assert verdict.for_residents and verdict.status != "eligible"
    line = eligibility_line(verdict)
    assert line.startswith("Pour vos habitants") and "Vous semblez éligible" not in line


def test_free_text_conditions_are_always_to_check(corpus):
    offer = corpus.offers["anct-cites-educatives"]
    verdict = evaluate(offer, Profile(collectivity_type="commune", population=40000, facts=["qpv"]))
    assert verdict.status == "unknown"
    assert any("Éducation nationale" in missing for missing in verdict.missing)


def test_audience_type(corpus):
    """The asker's type of collectivity against the card's audiences: met, failed, or not said."""
    data = corpus.offers["anct-petites-villes-de-demain"].model_dump()
    data.update(audiences=["commune"], eligibility={}, status_note=None)
    offer = Offer.model_validate(data)
    assert evaluate(offer, Profile(collectivity_type="commune")).status == "eligible"
    failing = evaluate(offer, Profile(collectivity_type="department"))
    assert failing.status == "ineligible" and "département" in failing.failed[0]
    unknown = evaluate(offer, Profile())
    assert unknown.status == "unknown" and "type de collectivité" in unknown.missing[0]


@pytest.mark.parametrize("zoning", ["qpv", "frr", "rural", "mountain"])
def test_territory_conditions_hold_only_when_known(corpus, zoning):
    """A territory condition is met by a known fact and otherwise « à vérifier », naming it. It never
    fails: the profile knows facts that hold (said, or from the tables), never that one does not."""
    offer = card(corpus, "anct-cites-educatives", territory_all=[zoning])
    assert evaluate(offer, Profile(**COMMUNE, facts=[zoning])).status == "eligible"
    unknown = evaluate(offer, Profile(**COMMUNE))
    assert unknown.status == "unknown" and unknown.missing == [f"être {FACT_LABELS[zoning]}"]


def test_an_event_is_shown_by_its_themes_and_never_makes_the_offer_eligible(corpus):
    """The DSEC's event (storm or flood damage) is shown by one of its themes in the question, and
    otherwise named as not shown; either way the verdict keeps the event « à vérifier » (its free-text
    condition): the question saying « orage » is not a checked fact."""
    offer = corpus.offers["etat-dsec"]
    assert unshown_condition(offer, Profile(**COMMUNE, themes=["ponts-ouvrages-art"])) == offer.eligibility.event.label
    shown = Profile(**COMMUNE, themes=["ponts-ouvrages-art", "risques-naturels"])
    assert unshown_condition(offer, shown) is None
    assert evaluate(offer, shown).status == "unknown"
    assert unshown_condition(corpus.offers["etat-detr"], Profile(**COMMUNE)) is None


# --- the exceptions of a population bound (schema.PopulationRule): checked when known, « à vérifier » else ---

def _population_verdict(corpus, rule: dict, population: int, overseas: bool = False):
    offer = card(corpus, "anct-petites-villes-de-demain", population=[{"audience": "commune", **rule}])
    return evaluate(offer, Profile(collectivity_type="commune", population=population, facts=["overseas"] if overseas else []))


def test_an_overseas_bound_applies_to_an_asker_overseas(corpus):
    rule = {"max": 20000, "overseas_max": 35000}
    assert _population_verdict(corpus, rule, 25000).status == "ineligible"
    verdict = _population_verdict(corpus, rule, 25000, overseas=True)
    assert verdict.status == "eligible" and "communes d'outre-mer de 35\u202f000 habitants au plus" in verdict.met[-1]
    assert _population_verdict(corpus, rule, 40000, overseas=True).status == "ineligible"


def test_a_bound_lifted_overseas(corpus):
    rule = {"max": 9999, "overseas_exempt": True}
    verdict = _population_verdict(corpus, rule, 50000, overseas=True)
    assert verdict.status == "eligible" and "sans condition de taille pour les communes d'outre-mer" in verdict.met
    assert _population_verdict(corpus, rule, 50000).status == "ineligible"


def test_an_exemption_no_table_tells_leaves_a_broken_bound_to_check(corpus):
    rule = {"max": 9999, "unless": "les communes nouvelles"}
    verdict = _population_verdict(corpus, rule, 15000)
    assert verdict.status == "unknown" and not verdict.failed
    assert any("sauf les communes nouvelles (vous : 15\u202f000 habitants)" in m for m in verdict.missing), verdict.missing
    assert _population_verdict(corpus, rule, 800).status == "eligible"


def test_a_bound_on_the_population_dgf_is_proved_broken_never_held(corpus):
    """The population DGF (CGCT art. L. 2334-2) is never below the INSEE population: above a maximum is
    « non », under it « à vérifier »; above a minimum is « oui », under it « à vérifier »."""
    ceiling = {"max": 20000, "basis": "dgf"}
    under = _population_verdict(corpus, ceiling, 800)
    assert under.status == "unknown" and any("en population DGF" in m and "à vérifier" in m for m in under.missing)
    assert _population_verdict(corpus, ceiling, 25000).status == "ineligible"
    floor = {"min": 2000, "basis": "dgf"}
    assert _population_verdict(corpus, floor, 2500).status == "eligible"
    assert _population_verdict(corpus, floor, 1500).status == "unknown"


POPULATION_RULE_TESTS = {
    "audience": test_audience_type,
    "min": test_a_bound_on_the_population_dgf_is_proved_broken_never_held,
    "max": test_population_rule_still_decides,
    "overseas_max": test_an_overseas_bound_applies_to_an_asker_overseas,
    "overseas_exempt": test_a_bound_lifted_overseas,
    "unless": test_an_exemption_no_table_tells_leaves_a_broken_bound_to_check,
    "basis": test_a_bound_on_the_population_dgf_is_proved_broken_never_held,
}


def test_every_field_of_a_population_rule_has_its_cases():
    assert set(PopulationRule.model_fields) == set(POPULATION_RULE_TESTS)


def _bounded_cards(corpus):
    """(card, rule) for each population bound of the corpus, of its eligibility and of its free cost."""
    for offer in corpus.offers.values():
        for rule in offer.eligibility.population + (offer.cost.free_for if offer.cost else []):
            yield offer, rule


def test_over_every_bound_of_the_corpus_an_exception_is_never_turned_into_no(corpus):
    """Over every population bound of the cards, populations around each bound, in and out of the
    overseas territories: a bound lifted overseas never says « non » overseas, an exemption no table
    tells never says « non », a bound on the population DGF never says « oui » under its maximum, and
    a plain bound says « oui » within and « non » outside."""
    kinds = set()
    for offer, rule in _bounded_cards(corpus):
        edges = [b for b in (rule.min, rule.max, rule.overseas_max) if b is not None]
        for population, overseas in itertools.product({max(0, e + d) for e in edges for d in (-1, 0, 1)}, (False, True)):
            holds, text = _population_check([rule], Profile(collectivity_type=rule.audience, population=population,
                                                            facts=["overseas"] if overseas else []))
            high = rule.overseas_max if overseas and rule.overseas_max is not None else rule.max
            within = (rule.min is None or population >= rule.min) and (high is None or population <= high)
            if overseas and rule.overseas_exempt:
                kinds.add("lifted overseas")
                assert holds is True, (offer.id, population)
            elif rule.basis == "dgf":
                kinds.add("dgf")
                assert holds is not True or rule.max is None, (offer.id, population, text)
                assert holds is not False or not within, (offer.id, population, text)
            elif rule.unless:
                kinds.add("unless")
                assert holds is (True if within else None), (offer.id, population, text)
            else:
                kinds.add("plain")
                assert holds is within, (offer.id, population, text)
    assert kinds == {"lifted overseas", "dgf", "unless", "plain"}  # the corpus has each kind of bound


def test_a_card_that_tells_of_an_overseas_or_commune_nouvelle_exception_states_it_in_its_rule(corpus):
    """The kind behind « non » said to a Guadeloupe commune of 15 000 inhabitants by a card whose text
    lifts the bound overseas: a bounded card whose own words speak of the overseas territories or of the
    communes nouvelles carries the exception in every bound (overseas_max or overseas_exempt; unless)."""
    for offer in {offer.id: offer for offer, _ in _bounded_cards(corpus)}.values():
        words = fold(" ".join([offer.summary, offer.description, *offer.eligibility.conditions,
                               offer.cost.note if offer.cost and offer.cost.note else ""]))
        rules = offer.eligibility.population + (offer.cost.free_for if offer.cost else [])
        if "outre-mer" in words:
            assert all(r.overseas_max is not None or r.overseas_exempt for r in rules if r.audience == "commune"), offer.id
        if "communes nouvelles" in words:
            assert all(r.unless for r in rules if r.audience == "commune"), offer.id


# Each structured rule of the schema and the tests above that give its cases (passing, failing, unknown;
# membership and territory rules have no failing case: see test_territory_conditions_hold_only_when_known).
RULE_TESTS = {
    "population": test_population_rule_still_decides,
    "territory_all": test_territory_conditions_hold_only_when_known,
    "programmes_any": test_programme_membership,
    "works_amount": test_works_amount_floor,
    "physical": test_minimum_opening,
    "beneficiaries": test_aids_for_residents_are_never_eligible_for_the_collectivity,
    "conditions": test_free_text_conditions_are_always_to_check,
    "event": test_an_event_is_shown_by_its_themes_and_never_makes_the_offer_eligible,
}


def test_every_rule_of_the_schema_has_its_cases():
    """A rule added to the cards' schema without its passing / failing / unknown cases fails here."""
    assert set(Eligibility.model_fields) == set(RULE_TESTS)


# --- the kind: over every card and a few profiles, « éligible » never rests on an unchecked rule ---

PROFILES = [
    Profile(collectivity_type="commune", population=600, facts=["rural"]),
    Profile(collectivity_type="commune", population=45000, facts=["qpv", "ort"], programmes=["action-coeur-de-ville"]),
    Profile(collectivity_type="epci", population=30000),
    Profile(collectivity_type="commune", population=250, works_amount_eur=50000, works_amount_ht=True,
            opening_m=3.0, structure_kind="bridge", programmes=["villages-d-avenir", "petites-villes-de-demain"]),
    Profile(),
]


def test_eligible_never_coexists_with_an_unchecked_condition(corpus):
    eligible = 0
    for offer, profile in itertools.product(corpus.offers.values(), PROFILES):
        verdict = evaluate(offer, profile)
        line = eligibility_line(verdict)
        if verdict.status == "eligible":
            eligible += 1
            rules = offer.eligibility
            assert not verdict.missing and not rules.conditions and rules.beneficiaries == "collectivity", offer.id
            assert set(rules.territory_all) <= set(profile.facts), offer.id
            assert "à vérifier" not in line, offer.id
        else:
            assert "Vous semblez éligible" not in line, (offer.id, line)
    assert eligible > 0  # the test would be empty if nothing could ever be eligible


# --- the kind: a card is « éligible » only when it states no condition beyond those checked ---------

def satisfying_profile(offer: Offer, audience: str) -> Profile:
    """A profile of type `audience` that meets every structured rule of the card (population within
    its bounds, its zonings and one of its programmes known, works and opening within bounds)."""
    rules = offer.eligibility
    bounds = [r for r in rules.population if r.audience == audience]
    population = bounds[0].min if bounds and bounds[0].min is not None else (bounds[0].max if bounds else 800)
    structure = next((r.structure for r in rules.works_amount + rules.physical if r.structure), None)
    amounts = [r for r in rules.works_amount if r.structure in (None, structure)]
    amount = max([r.min_eur for r in amounts if r.min_eur is not None] + [min([r.max_eur for r in amounts if r.max_eur] or [50000])])
    physical = [r for r in rules.physical if r.structure in (None, structure)]
    opening = max([r.min for r in physical if r.min is not None] + [min([r.max for r in physical if r.max] or [3.0])])
    return Profile(collectivity_type=audience, population=population, facts=list(rules.territory_all),
                   programmes=list(rules.programmes_any[:1]), works_amount_eur=amount, works_amount_ht=True,
                   opening_m=opening, structure_kind=structure or "bridge")


def stated_beyond_rules(offer: Offer) -> bool:
    """What the card states that no profile fact can check: free-text conditions, an event, aid paid to
    residents, a closed or historic status, a note that leaves something « à confirmer » / « à vérifier »."""
    notes = " ".join(n for n in (offer.status_note, offer.cost.note if offer.cost else None) if n)
    rules = offer.eligibility
    never_held = any(r.basis == "dgf" and r.max is not None for r in rules.population)  # a population DGF we do not know
    return bool(rules.conditions or rules.event or rules.beneficiaries == "residents" or offer.status != "active"
                or "à confirmer" in notes or "à vérifier" in notes or never_held)


def test_eligible_exactly_when_the_card_states_nothing_unchecked(corpus):
    """Over every card and every collectivity audience it opens to, with a profile that meets all its
    structured rules: « Vous semblez éligible » iff the card states nothing else; otherwise the line says
    « à vérifier » and names what remains (the status, the note's open point, each free-text condition)."""
    eligible, to_check = [], []
    for offer in corpus.offers.values():
        for audience in {"commune", "epci", "department", "region"} & set(offer.audiences):
            verdict = evaluate(offer, satisfying_profile(offer, audience))
            line = eligibility_line(verdict)
            assert not verdict.failed, (offer.id, audience, verdict.failed)
            if stated_beyond_rules(offer):
                to_check.append(offer.id)
                assert verdict.status == "unknown" and "à vérifier : " in line and "éligible (" not in line, (offer.id, line)
                for condition in offer.eligibility.conditions:
                    assert condition.rstrip(" .") in verdict.missing, (offer.id, condition)
                if offer.status != "active":
                    assert any("édition" in m for m in verdict.missing), (offer.id, verdict.missing)
            else:
                eligible.append(offer.id)
                assert verdict.status == "eligible" and line.startswith("Vous semblez éligible ("), (offer.id, line)
    # Both sides are populated by the corpus: cards open to all collectivities (tools, trainings) and the rest.
    assert eligible and to_check
    for offer_id in ("ademe-tenmod", "bdt-mon-comparateur-energetique", "anru-ecole-renouvellement-urbain"):
        assert offer_id in to_check and offer_id not in eligible


def test_a_designated_programme_is_to_check_for_any_non_member_and_named_in_french(corpus):
    """Over every card with a programme rule (Action cœur de ville's 234 towns, Petites villes de demain…),
    for the smallest commune of each bound and a large one: no table says who is *not* designated, so
    not known as a member is « à vérifier » naming each programme (« faire partie d'Action cœur de
    ville »), never « non » on that ground; once the membership is said, the rule is met."""
    from assistant.eligibility import PROGRAMME_LABELS, part_of

    cards = [o for o in corpus.offers.values() if o.eligibility.programmes_any and "commune" in o.audiences]
    assert any("action-coeur-de-ville" in o.eligibility.programmes_any for o in cards)
    for offer, population in itertools.product(cards, (300, 60000)):
        verdict = evaluate(offer, Profile(collectivity_type="commune", population=population))
        assert not any("faire partie" in reason for reason in verdict.failed), offer.id
        rule = next(m for m in verdict.missing if m.startswith("faire partie "))
        for programme in offer.eligibility.programmes_any:
            assert part_of(PROGRAMME_LABELS[programme]) in rule, (offer.id, rule)
        assert not re.search(r"\bde (une?|des|le|les|[aeiouyéèêàâîôûœ])", rule, re.IGNORECASE), rule
        member = evaluate(offer, Profile(collectivity_type="commune", population=population,
                                         programmes=offer.eligibility.programmes_any[:1]))
        assert not any(m.startswith("faire partie ") for m in member.missing), offer.id
