"""A phrase that names no theme reads its own words (corpus/themes.yaml `themeless_phrases`): a fire station
(« centre d'incendie et de secours ») or a fire that happened (« suite à un incendie ») is not the prevention of
forest and vegetation fires, and a building's fire alarm is its mise aux normes, not a forest fire.

Generated from the table (every themeless phrase in a title) and from the data files: the 2018 DETR/DSIL titles
that carry the phrases lose the forest-fire theme, while the Fonds vert 2023 titles of the forest-fire measure
(their measure names their object) keep one of the measure's themes: the forest fires, or the water points of the
défense extérieure contre l'incendie (theme defense-incendie, tests/test_fire_defence.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.profile import detect_themes
from assistant.text import fold
from evals.place_themes import dotation_rows, fonds_vert_rows
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
FIRE, NORMS, DECI = "risques-incendie", "accessibilite-normes-batiments", "defense-incendie"
FIRE_MEASURE = "Prévention des risques d’incendies de forêt et de végétation"




DOTATIONS = [r["text"] for r in dotation_rows()]
FONDS_VERT = [(r["text"], r["measure"]) for r in fonds_vert_rows(VOCABULARY)]
STATION = re.compile(r"centres? d.incendie et de secours")
ALARM = re.compile(r"\b(alarmes?|detection)( a| d.)? incendies?\b")


@pytest.mark.parametrize("phrase", VOCABULARY.themeless_phrases)
@pytest.mark.parametrize("template", ["Construction du {}", "Travaux de la mairie {}", "{} de Villeneuve"])
def test_a_themeless_phrase_gives_no_forest_fire(phrase, template):
    assert FIRE not in detect_themes(template.format(phrase), VOCABULARY, limit=EVERY)


@pytest.mark.parametrize("title", [t for t in DOTATIONS if STATION.search(fold(t))] or [None])
def test_a_fire_station_of_2018_is_no_forest_fire(title):
    assert title is not None, "no fire station among the 2018 titles: the test reads nothing"
    assert FIRE not in detect_themes(title, VOCABULARY, limit=EVERY)


@pytest.mark.parametrize("title", [t for t in DOTATIONS if ALARM.search(fold(t))] or [None])
def test_a_fire_alarm_of_2018_is_a_building_norm(title):
    assert title is not None, "no fire alarm among the 2018 titles: the test reads nothing"
    themes = detect_themes(title, VOCABULARY, limit=EVERY)
    assert NORMS in themes and FIRE not in themes


def test_the_forest_fire_measure_titles_keep_their_theme():
    """Every Fonds vert 2023 title of the forest-fire measure that said « incendie » keeps one of the measure's
    themes (corpus/themes.yaml `fonds_vert_measures`: forest fires, or the water points of the DECI): the
    themeless phrases and the alarms cost none of them. « Sécurité
    incendie » was read as the buildings' norms before them (2 titles: « Sécurité incendie : réhabilitation du
    forage communal »)."""
    titles = [t for t, m in FONDS_VERT if m == FIRE_MEASURE and "incendie" in fold(t) and "securite incendie" not in fold(t)]
    assert len(titles) > 300
    wanted = set(VOCABULARY.fonds_vert_measures[FIRE_MEASURE])
    assert wanted == {FIRE, DECI}
    assert [t for t in titles if not wanted & set(detect_themes(t, VOCABULARY, limit=EVERY))] == []


@pytest.mark.parametrize("text, theme", [
    ("Création de réserves incendie suite à un incendie de forêt", DECI),  # shares « suite à un incendie »
    ("Défense extérieure contre l'incendie : installation de poteaux incendie", DECI),
    ("Installation d'une citerne incendie près du centre de secours", DECI),
    ("Débroussaillement autour du centre d'incendie et de secours contre les feux de forêt", FIRE),
])
def test_forest_fire_and_water_points_keep_their_theme(text, theme):
    assert theme in detect_themes(text, VOCABULARY, limit=EVERY)
