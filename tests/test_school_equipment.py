"""The digital equipment of a school is no energy renovation (corpus/themes.yaml `themeless_phrases`): a phrase
that names no theme still names the nature of the works, so the school it is completed by is the place of the
works (« équipements numériques de l'école », « des TNI dans les écoles »), and the school's own renovation keeps
its theme.

Generated from the data file: every 2018 DETR/DSIL title where digital equipment comes before a school completing
it gets no energy-renovation theme; and from templates sharing the words.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.profile import detect_place_themes, detect_themes
from assistant.text import fold
from evals.place_themes import dotation_rows
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
BUILDINGS = "renovation-batiments-publics"
DIGITAL_SCHOOL = re.compile(r"\b(equipements?|materiels?) (numeriques?|informatiques?) (de l'|des|du|dans (les|l')) ?(ecoles?|groupe scolaire)\b")




@pytest.mark.parametrize("title", [t for t in [r["text"] for r in dotation_rows()] if DIGITAL_SCHOOL.search(fold(t).replace("’", "'"))
                                   and len(re.findall(r"\becoles?\b|\bscolaire", fold(t))) == 1] or [None])
def test_digital_equipment_of_a_2018_school_is_no_energy_renovation(title):
    assert title is not None, "no digital school equipment among the 2018 titles: the test reads nothing"
    assert BUILDINGS not in detect_themes(title, VOCABULARY, limit=EVERY)
    assert BUILDINGS in detect_place_themes(title, VOCABULARY)


@pytest.mark.parametrize("text", [
    "Rénovation énergétique de l'école et équipement numérique",
    "Isolation de l'école avant l'achat du matériel informatique",
])
def test_the_schools_own_renovation_keeps_its_theme(text):
    assert BUILDINGS in detect_themes(text, VOCABULARY, limit=EVERY)
