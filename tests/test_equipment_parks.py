"""A park of equipment is no park to renature (corpus/themes.yaml `themeless_phrases` and synonyms): « parc
informatique », « parc automobile », « parc de stationnement » give no theme, « parc d'éclairage » and « parc de
luminaires » are street lighting, « parc d'activités » a business zone, « parc relais » a park-and-ride; a park
of trees keeps renaturation.

Generated from the data files: every Fonds vert 2023 title of the street-lighting measure that names a « parc
d'éclairage » or « de luminaires » gets street lighting and no renaturation; and from templates sharing the word.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.profile import detect_themes
from assistant.text import fold
from evals.place_themes import fonds_vert_rows
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
PARK, LIGHTING = "renaturation", "eclairage-public"
LIGHTING_MEASURE = "Rénovation des parcs de luminaires d’éclairage public"
LIGHT_PARK = re.compile(r"\bparcs? (d'|de |des )?(l')?(eclairage|luminaires?)\b")




def test_the_lighting_measure_parks_are_street_lighting_not_renaturation():
    """(A title naming a second park, « des parcs publics Champeau », « 42 % du parc », is left out: 4 titles.)"""
    titles = [t for t, m in [(r["text"], r["measure"]) for r in fonds_vert_rows(VOCABULARY)] if m == LIGHTING_MEASURE and LIGHT_PARK.search(fold(t).replace("’", "'"))
              and len(re.findall(r"\bparcs?\b", fold(t))) == 1]
    assert len(titles) > 400
    wrong = [t for t in titles if PARK in (themes := detect_themes(t, VOCABULARY, limit=EVERY)) or LIGHTING not in themes]
    assert wrong == []


@pytest.mark.parametrize("text, theme", [
    ("Renouvellement du parc informatique de l'école", None),
    ("Renouvellement du parc automobile de la commune", None),
    ("Aménagement d'un parc de stationnement", None),
    ("Extension du parc d'activités économiques", "industrie"),
    ("Extension du parc relais de la gare", "mobilite"),
    ("Rénovation du parc de luminaires de la commune", LIGHTING),
])
def test_a_park_of_equipment_is_no_park_to_renature(text, theme):
    themes = detect_themes(text, VOCABULARY, limit=EVERY)
    assert PARK not in themes and (theme is None or theme in themes)


@pytest.mark.parametrize("text", ["Création d'un parc arboré", "Aménagement du parc municipal", "Renaturation du parc de la mairie",
                                  "Plantation d'arbres dans le parc informatique... et le parc du château"])
def test_a_park_of_trees_stays_renaturation(text):
    assert PARK in detect_themes(text, VOCABULARY, limit=EVERY)
