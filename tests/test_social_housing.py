"""Building social dwellings is not the housing theme (corpus/themes.yaml `new_dwellings`): « construction de 6
logements sociaux » is new housing, whereas the housing theme's offers bring vacant or private dwellings back
(offers-facts.md ANAH); social dwellings said otherwise (lacking, vacant, renovated) stay the housing theme.

Generated from the data file: every 2018 DETR/DSIL title where a word of a new building (`new_building_nouns`)
governs « logement(s) social/sociaux » gets no housing theme; and from templates sharing the words.
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
HOUSING = "logement"
NEW = re.compile(r"\b(construction|construire|creation|creer)\b(\W+\w+){0,3}?\W+logements? (sociaux|social)\b")




@pytest.mark.parametrize("title", [t for t in [r["text"] for r in dotation_rows()] if NEW.search(fold(t))] or [None])
def test_new_social_housing_of_2018_is_no_housing_theme(title):
    assert title is not None, "no new social housing among the 2018 titles: the test reads nothing"
    assert HOUSING not in detect_themes(title, VOCABULARY, limit=EVERY)
    assert HOUSING in detect_place_themes(title, VOCABULARY)


@pytest.mark.parametrize("word", VOCABULARY.new_building_nouns)
def test_every_new_building_word_governs_social_dwellings(word):
    assert HOUSING not in detect_themes(f"{word} de 6 logements sociaux", VOCABULARY, limit=EVERY)


@pytest.mark.parametrize("text", [
    "Nous manquons de logements sociaux dans la commune",
    "Le bailleur de nos logements sociaux veut partir",
    "Des logements sociaux vacants à remettre sur le marché",
    "Rénovation des logements sociaux de la commune",
    "La construction du gymnase est finie, nos logements sociaux sont vides",
])
def test_social_housing_said_otherwise_stays_housing(text):
    assert HOUSING in detect_themes(text, VOCABULARY, limit=EVERY)
