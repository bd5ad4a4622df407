"""The everyday grants lead a collectivity's ordinary works that no partner offer serves (door.after_grants).

Cases are generated from the data files: 2018 DETR/DSIL commune and EPCI titles of the départements the
floors were not tuned on (evals/door_training.py `tune_half`), in which no theme is detected (ordinary works:
voirie, cimetière, toiture, aire de jeux…), and the offers whose card says their beneficiaries are residents.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

import pytest

from assistant.profile import Profile, detect_themes
from evals.door_training import tune_half

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
GRANTS = {"etat-detr", "etat-dsil"}
PER_CATEGORY = 5


def _no_theme_titles(vocabulary) -> list[dict]:
    """PER_CATEGORY held-out commune/EPCI titles per category with no theme detected (fixed seed)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    with (DATASETS / "dotations-2018-projets.csv").open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            if row["echelon"] in {"Commune", "EPCI"} and not tune_half(row["departement"]):
                groups[row["categorie"]].append(row)
    rng = random.Random(2026)
    sample = []
    for category in sorted(groups):
        rows = [r for r in rng.sample(groups[category], 60) if not detect_themes(r["titre"], vocabulary)]
        sample += rows[:PER_CATEGORY]
    return sample


def _profile(row: dict) -> Profile:
    return Profile(collectivity_type="commune" if row["echelon"] == "Commune" else "epci", departement_code=row["departement"])


@pytest.mark.parametrize("known", [True, False], ids=["widget-profile", "nobody-known"])
def test_held_out_ordinary_works_titles_are_led_by_detr_or_dsil_never_by_a_households_aid(assistant, known):
    titles = _no_theme_titles(assistant.themes)
    assert len(titles) >= 30
    firsts = []
    for row in titles:
        result = assistant.chat(row["titre"], None, _profile(row) if known else None)
        if not known and not result.referrals:
            continue  # a question alone (« Saint-Martin »: which commune?) is dotations.answered_unknown_asker's
        assert result.referrals, row["titre"]
        first = result.referrals[0]
        assert not first.verdict.for_residents, (row["titre"], first.offer.id)
        firsts.append((row["titre"], first.offer.id))
    assert len(firsts) >= len(titles) - 2
    led = [t for t, first in firsts if first in GRANTS]
    # 0.953 on the titles with no theme `aiguillage eval` asks (0.632 before the rule); a margin for the sample
    assert len(led) >= 0.85 * len(firsts), [f for f in firsts if f[1] not in GRANTS]


@pytest.mark.parametrize("message", [
    "Notre commune de 900 habitants dans le Cantal veut refaire la voirie devant l'école",
    "Notre commune veut refaire la voirie",
])
@pytest.mark.parametrize("profile", [None, Profile(collectivity_type="commune", departement_code="15")])
def test_the_reported_road_questions_get_the_grants_first_and_no_households_aid(assistant, message, profile):
    result = assistant.chat(message, None, profile)
    assert result.kind == "answer"
    assert result.referrals[0].offer.id in GRANTS
    assert not any(r.verdict.for_residents for r in result.referrals)
    # The household's aid that led before is still a candidate, after the grants, with the reason in its breakdown.
    after = [h for h in result.candidates if h.offer.eligibility.beneficiaries == "residents"]
    assert after and all("for_residents" in h.adjustments for h in after if "weak_evidence" not in h.adjustments)


def _residents_offers(assistant) -> list[str]:
    return sorted(o.id for o in assistant.offers.values() if o.eligibility.beneficiaries == "residents"
                  and o.status == "active")


def test_every_households_aid_named_by_a_collectivity_keeps_the_first_place(assistant):
    """The same aids, named in a works question: the question is about them, the rule does not move them."""
    for offer_id in _residents_offers(assistant):
        title = assistant.offers[offer_id].title
        result = assistant.chat(f"Notre commune veut rénover des logements du centre : {title} peut-il servir ?", None,
                                Profile(collectivity_type="commune", departement_code="15"))
        assert result.referrals and result.referrals[0].offer.id == offer_id, (title, [r.offer.id for r in result.referrals])


@pytest.mark.parametrize("message, expected", [
    # The words of housing and renovation, said of residents' own homes, not of the collectivity's works.
    ("Beaucoup de nos personnes âgées veulent adapter leur salle de bain (douche à l'italienne, barres). "
     "Quelle aide leur conseiller ?", "anah-maprimeadapt"),
    ("Des habitants viennent en mairie demander comment avoir MaPrimeRénov' pour isoler leur maison", "anah-maprimerenov"),
])
def test_questions_about_residents_homes_still_get_the_households_aid_first(assistant, message, expected):
    result = assistant.chat(message, None, Profile(collectivity_type="commune", departement_code="15"))
    assert result.referrals[0].offer.id == expected


def test_an_offer_serving_the_object_of_the_works_still_leads(assistant):
    """A themed offer is not moved: the grants lead only works no partner offer serves."""
    result = assistant.chat("Rénovation énergétique de l'école", None, Profile(collectivity_type="commune", departement_code="15"))
    first = result.referrals[0]
    assert first.offer.id not in GRANTS and "theme" in first.hit.adjustments
    assert not any("wording_only" in h.adjustments for h in result.candidates)
