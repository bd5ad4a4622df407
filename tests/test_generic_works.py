"""A noun of works that names no object is not a theme (corpus/themes.yaml `generic_works`, README
« Un nom de travaux n'est pas un thème »).

Generated from the table: every generic works noun, in front of objects of ordinary works (« aménagement de
la place du village », « requalification d'un terrain multisport »), adds no theme to what the object alone
says; planning sentences that share the words (« aménagement foncier », « réviser le PLU pour un
aménagement… », « une opération d'aménagement ») keep the planning theme; the table refuses a synonym that
is one of these nouns alone. Then an ordinary works title through the real service.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.profile import Profile, detect_themes
from assistant.schema import ThemeVocabulary
from ingest.corpus import load_themes

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
VOCABULARY = load_themes(CORPUS)
EVERY = len(VOCABULARY.themes)
# Objects of ordinary works, as the DETR/DSIL 2018 titles name them after their head noun.
OBJECTS = ["de la place du village", "d'un terrain multisport", "des abords du cimetière", "du cimetière communal",
           "de la rue principale", "d'un city-stade", "de la salle des fêtes", "des locaux de la mairie"]
PLANNING = "urbanisme-foncier"


def test_the_table_names_the_generic_works_nouns():
    assert {"aménagement", "requalification", "reconstruction", "travaux", "création", "réhabilitation"} <= set(VOCABULARY.generic_works)


@pytest.mark.parametrize("noun", VOCABULARY.generic_works)
def test_a_generic_works_noun_adds_no_theme_to_its_object(noun):
    checked = 0
    for obj in OBJECTS:
        for sentence in (f"{noun} {obj}", f"{noun.capitalize()} {obj}", f"Nous voulons faire des travaux : {noun} {obj}"):
            alone = detect_themes(sentence.replace(noun, "").replace(noun.capitalize(), ""), VOCABULARY, limit=EVERY)
            themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
            if noun in VOCABULARY.new_building_nouns:  # a new building: its noun is the place, no energy renovation
                assert set(themes) <= set(alone), (sentence, themes, alone)
            else:
                assert themes == alone, (sentence, themes, alone)
            assert PLANNING not in themes and "friches" not in themes and "renouvellement-urbain" not in themes, sentence
            checked += 1
    assert checked == 3 * len(OBJECTS)


@pytest.mark.parametrize("sentence", [
    "Aménagement de la place du village",  # reported: planning and land offers for ordinary works
    "Aménager un terrain multisport",
    "Aménagements de sécurité de la traversée du bourg",
    "Réaménagement des abords de la mairie",
    "Requalification de la rue principale",
    "Reconstruction du mur du cimetière",
])
def test_ordinary_works_titles_are_not_planning(sentence):
    themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
    assert PLANNING not in themes and "friches" not in themes and "renouvellement-urbain" not in themes, themes


@pytest.mark.parametrize("sentence, theme", [
    ("Aménagement foncier agricole et forestier de la commune", PLANNING),
    ("Réviser le PLU pour un aménagement du centre-bourg", PLANNING),
    ("Nous préparons une opération d'aménagement sur l'ancienne gendarmerie", PLANNING),
    ("Créer une ZAC pour aménager le quartier de la gare", PLANNING),
    ("Aménagement de la zone d'aménagement concerté des Prés", PLANNING),
    ("Aménager sans consommer de terres : comment respecter le ZAN ?", PLANNING),
    ("Acquisition foncière pour l'aménagement d'un lotissement", PLANNING),
    ("Requalification d'une friche industrielle", "friches"),
    ("Démolition de l'ancienne usine", "friches"),
    ("Reconversion de l'ancienne caserne en logements", "friches"),
    ("Rénovation urbaine du quartier prioritaire", "renouvellement-urbain"),
])
def test_planning_sentences_that_share_the_words_keep_their_theme(sentence, theme):
    assert theme in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence


@pytest.mark.parametrize("synonym", ["aménagement", "Aménagements", "requalification", "aménager"])
def test_the_table_refuses_a_generic_works_noun_as_a_synonym(synonym):
    data = VOCABULARY.model_dump()
    data["themes"] = [t | {"synonyms": [*t["synonyms"], synonym]} if t["id"] == PLANNING else t for t in data["themes"]]
    with pytest.raises(ValidationError, match="nom de travaux"):
        ThemeVocabulary.model_validate(data)
    data["themes"] = [t | {"synonyms": [*t["synonyms"], f"{synonym} foncier"]} if t["id"] == PLANNING else t
                      for t in VOCABULARY.model_dump()["themes"]]
    assert ThemeVocabulary.model_validate(data)  # a phrase that names its object is a synonym


GRANTS = {"etat-detr", "etat-dsil"}


def test_a_city_stade_goes_to_the_everyday_grants_without_land_offers(assistant):
    """Reported kind: « aménagement d'un city-stade » got the planning theme and was led by the Fonds vert's
    land-recycling measure, then UrbanVitaliz; its object is a sports ground, ordinary works (DETR/DSIL)."""
    result = assistant.chat("Aménagement d'un city-stade", None, Profile(collectivity_type="commune", departement_code="15"))
    ids = [r.offer.id for r in result.referrals]
    assert result.profile.themes == ["sport"]
    assert ids and ids[0] in GRANTS, ids
    assert not [r.offer.id for r in result.referrals if PLANNING in r.offer.themes], ids
