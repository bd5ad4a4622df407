"""The RGPD compliance of a collectivity is neither a building's mise aux normes nor a partners' digital tool
(corpus/themes.yaml `themeless_phrases`): no offer serves it (offers-facts.md names neither the CNIL nor a
data-protection officer), so no offer leads it by its theme.

Generated from the data files: the 2018 DETR/DSIL title that names it (a network's compliance, funded by the
everyday grants) and the collectivités' data-protection questions of questions-projets.csv (door cnil), still
refused with the CNIL as their door; then the reported question through the real service.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assistant.profile import Profile, detect_themes
from assistant.text import fold
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "evals" / "datasets"
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
GRANTS = {"etat-detr", "etat-dsil"}
NORMS, DIGITAL = "accessibilite-normes-batiments", "numerique-collectivites"


def _rows(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


RGPD_TITLES = [r["titre"] for r in _rows("dotations-2018-projets.csv") if "rgpd" in fold(r["titre"])]
CNIL_QUESTIONS = [r["question"] for r in _rows("questions-projets.csv") if r["door"] == "cnil"]


@pytest.mark.parametrize("sentence", ["Mise en conformité RGPD de la mairie", *RGPD_TITLES,
                                      "Mise en conformité avec le RGPD de la commune", "Désigner un DPO pour la commune"])
def test_rgpd_compliance_is_neither_a_building_norm_nor_a_digital_tool(sentence):
    themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
    assert NORMS not in themes and DIGITAL not in themes, (sentence, themes)


@pytest.mark.parametrize("sentence, theme", [
    ("Mise en conformité de la salle des fêtes", NORMS),  # shares « mise en conformité »
    ("Mise en conformité électrique de l'école", NORMS),
    ("Ouvrir les données de la commune en open data", DIGITAL),  # shares « données »
    ("Refonte du site internet de la commune", DIGITAL),
])
def test_sentences_that_share_the_words_keep_their_theme(sentence, theme):
    assert theme in detect_themes(sentence, VOCABULARY, limit=EVERY)


def test_the_data_files_hold_the_kind():
    assert RGPD_TITLES and len(CNIL_QUESTIONS) >= 3


@pytest.mark.parametrize("profile", [Profile(collectivity_type="commune", departement_code="15"), None], ids=["commune", "nobody-known"])
@pytest.mark.parametrize("question", ["Mise en conformité RGPD de la mairie", *RGPD_TITLES])
def test_no_offer_leads_rgpd_compliance_by_a_theme(assistant, question, profile):
    """Reported: « Mise en conformité RGPD de la mairie » led by Prioréno (a building-energy tool)."""
    referrals = assistant.chat(question, None, profile).referrals
    assert not referrals or referrals[0].offer.id in GRANTS, [r.offer.id for r in referrals]
    assert "bdt-prioreno" not in [r.offer.id for r in referrals]


@pytest.mark.parametrize("question", CNIL_QUESTIONS)
def test_data_protection_questions_are_still_sent_to_the_cnil(assistant, question):
    result = assistant.chat(question, None, Profile(collectivity_type="commune", departement_code="15"))
    assert result.kind == "refusal" and "CNIL" in result.answer.text, (result.kind, result.answer.text[:200])
