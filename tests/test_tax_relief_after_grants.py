"""A tax relief alone funds no works of the collectivity: beside the everyday grants it ranks after them
(door.after_grants `tax_relief`), whatever its theme; France Ruralités Revitalisation exempts the businesses
that settle in a classified commune, it does not pay for a zone d'activité.

Generated from the data files: the 2018 DETR/DSIL commune and EPCI titles of zones d'activité of the
départements never tuned on (evals/realdata.py KINDS), asked through the real service with the widget's
profile; and from the corpus: every offer whose only support is a tax relief.
"""

from __future__ import annotations

import pytest

from assistant.pipeline.door import NO_WORKS_FUNDING
from assistant.profile import Profile
from evals.realdata import ECHELONS, KINDS, kind_rows

GRANTS = {"etat-detr", "etat-dsil"}
FRR = "etat-france-ruralites-revitalisation"
COMMUNE = Profile(collectivity_type="commune", departement_code="15")


def test_the_rule_reads_the_cards_support_types(assistant):
    relief = sorted(o.id for o in assistant.offers.values() if set(o.support_types) <= NO_WORKS_FUNDING)
    assert FRR in relief, relief


def test_held_out_zone_d_activite_titles_are_never_led_by_a_tax_relief(assistant):
    """Before the rule, 20 of these 71 titles were led by France Ruralités Revitalisation and 28 by DETR or DSIL
    (47 with it: kinds.zone_activite_right_first of aiguillage eval)."""
    pattern, _ = KINDS["zone_activite"]
    rows = kind_rows(pattern)
    assert len(rows) >= 30
    firsts = []
    for row in rows:
        profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
        referrals = assistant.chat(row["titre"], None, profile).referrals
        firsts.append((row["titre"], referrals[0].offer if referrals else None))
    # One title is not read as an investment project (« Poursuite de l'aménagement de la Zone d'Activités
    # Economiques … »): no everyday door is open beside it, the rule does not apply.
    relief = [(t, o.id) for t, o in firsts if o is not None and set(o.support_types) <= NO_WORKS_FUNDING]
    assert len(relief) <= 1, relief
    led = [t for t, o in firsts if o is not None and o.id in GRANTS]
    assert len(led) >= 0.6 * len(firsts), [(t, o and o.id) for t, o in firsts if not o or o.id not in GRANTS]


@pytest.mark.parametrize("profile", [COMMUNE, Profile(collectivity_type="epci", departement_code="15"), None],
                         ids=["commune", "epci", "nobody-known"])
def test_the_reported_question_is_led_by_the_everyday_door(assistant, profile):
    """Reported: « Aménagement d'une zone d'activité communautaire » led by France Ruralités Revitalisation."""
    result = assistant.chat("Aménagement d'une zone d'activité communautaire", None, profile)
    ids = [r.offer.id for r in result.referrals]
    assert ids and ids[0] in GRANTS, ids
    frr = [h for h in result.candidates if h.offer.id == FRR]
    assert not frr or "tax_relief" in frr[0].adjustments


@pytest.mark.parametrize("question", [
    "Notre commune est en ZRR, quels avantages pour les entreprises qui s'installent en 2026 ?",  # gold g216
    "Quelles exonérations pour une entreprise qui s'installe dans une commune classée FRR ?",
    "Mon village est-il en ZRR ? On m'a dit que ça n'existait plus, c'est quoi le nouveau zonage ?",  # gold g050
])
def test_questions_about_the_exemptions_still_get_them_first(assistant, question):
    ids = [r.offer.id for r in assistant.chat(question, None, COMMUNE).referrals]
    assert ids and ids[0] == FRR, ids


def test_the_region_is_named_as_the_economic_development_door_of_zones_d_activite(assistant):
    """corpus/signposts/porte-region.yaml names the zone d'activité among its needs: of the 71 held-out titles,
    the Région is named on 8 (1 before)."""
    pattern, _ = KINDS["zone_activite"]
    named = 0
    for row in kind_rows(pattern):
        profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
        named += "porte-region" in [s.id for s, _ in assistant.chat(row["titre"], None, profile).doors]
    assert named >= 6
