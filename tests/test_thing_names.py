"""A name given to a building, a way or a site is not the asker's place: « Rénovation de l'église
Saint-Martin » names a church, not one of the communes called Saint-Martin. Generated from the commune
table (every name beginning with « Saint- ») and from the real 2018 DETR/DSIL and 2023 Fonds vert titles;
the counter-cases put the same names where they do designate the place."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from assistant.territory import NAMED_BUILDINGS, NAMED_WAYS, Territories, normalize

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "evals" / "datasets"


@pytest.fixture(scope="module")
def territories() -> Territories:
    return Territories.load(ROOT / "corpus")


def saint_names(territories: Territories) -> list[str]:
    """Every distinct commune name beginning with « Saint- », written as one word (about 3,150)."""
    return sorted({c.name for c in territories.communes.values() if c.name.startswith("Saint-") and " " not in c.name})


def codes_read(territories: Territories, text: str) -> set[str]:
    found = territories.resolve(text)
    return {c.code for c in ([found.commune] if found.commune else []) + list(found.candidates)}


@pytest.mark.parametrize("template", [
    "Rénovation de l'église {name}",
    "Restauration de la chapelle {name}",
    "Travaux dans l'école {name}",
    "Réfection de la rue {name}",
    "Aménagement de la route de {name}",
    "Éclairage public du lotissement {name}",
])
def test_a_saint_name_after_a_building_or_a_way_is_no_commune(territories, template):
    read = [name for name in saint_names(territories) if codes_read(territories, template.format(name=name))]
    assert read == []


@pytest.mark.parametrize("template", [
    "La commune de {name} veut rénover l'église",
    "Nous sommes à {name}, rénovation de l'église",
    "Mairie de {name} : rénovation de l'église",
    "Je suis maire de {name}, on veut refaire l'église",
    "Rénovation de l'église de {name}",
])
def test_the_same_saint_names_where_they_are_the_place_are_read(territories, template):
    """Same names, a place cue: each is read as the commune(s) of that name (homonyms included), Saint-Lô too."""
    missed = []
    for name in saint_names(territories):
        expected = {c.code for c in territories.communes_named(name)}
        if not expected & codes_read(territories, template.format(name=name)):
            missed.append(name)
    assert missed == []


def test_a_departement_beside_a_saint_name_still_names_the_place(territories):
    """« l'église de Saint-Martin (Gers) », « Saint-Martin (32) »: the département pins the commune."""
    assert codes_read(territories, "Rénovation de l'église de Saint-Martin (Gers)") == {"32389"}
    assert codes_read(territories, "Saint-Martin (32) : rénovation de l'église") == {"32389"}


_NOUN_THEN_NAME = re.compile(r"\b(\w+)\s+((?:Saint|Sainte|St|Ste)\b[\s-]*[A-ZÉÈ][\w'-]*)")


def real_titles_naming_a_thing() -> list[tuple[str, str]]:
    """(title up to the name, the name) of real titles of both sources where a building or way noun is followed
    directly by a saint's name (« église Saint-Loup », « école St Exupéry », « rue Saint Pierre »)."""
    found = []
    for name, column in (("dotations-2018-projets.csv", "titre"), ("fonds-vert-2023-projets.csv", "nom_du_projet")):
        with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                title = row[column]
                for m in _NOUN_THEN_NAME.finditer(title):
                    if normalize(m.group(1)) in NAMED_BUILDINGS | NAMED_WAYS:
                        found.append((title[: m.end()], m.group(2)))
    return found


def test_real_titles_naming_a_saint_after_a_building_are_not_read_as_that_place(territories):
    pairs = real_titles_naming_a_thing()
    assert len(pairs) > 300, "the real titles no longer carry the kind"
    wrong = [(t, n) for t, n in pairs if (territories.resolve(t).matched_text or "").startswith(n)]
    assert wrong == []


_NOUN_THEN_PERSON = re.compile(r"\b(\w+)\s+([A-ZÉ][a-zéèëï]+[\s-][A-ZÉ][\w'-]+)")


def test_a_person_s_name_after_a_building_is_no_place_either(territories):
    """Real titles of both sources where a building or way noun is followed by a first name and a family name
    (« groupe scolaire Bernard Clavel », « rue Victor Hugo »), the pair being a commune's name or holding one:
    never read from there."""
    pairs = []
    for name, column in (("dotations-2018-projets.csv", "titre"), ("fonds-vert-2023-projets.csv", "nom_du_projet")):
        with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                for m in _NOUN_THEN_PERSON.finditer(row[column]):
                    if normalize(m.group(1)) in NAMED_BUILDINGS | NAMED_WAYS and not m.group(2).startswith(("Saint", "St")):
                        pairs.append((row[column][: m.end()], m.group(2)))
    named = [(t, n) for t, n in pairs if territories.communes_named(n) or territories.communes_named(n.split()[0])]
    assert len(named) >= 5, "the real titles no longer carry the kind"
    wrong = [(t, n) for t, n in named if (territories.resolve(t).matched_text or "").startswith(n.split()[0])]
    assert wrong == []


def test_a_way_of_another_commune_leaves_the_place_to_the_commune_named_after(territories):
    """« la route de X à Y »: the works are at Y (real Fonds vert titles, their real commune)."""
    assert codes_read(territories, "Aménagement cyclable route de Maromme à Mont Saint Aignan") == {"76451"}
    assert codes_read(territories, "Aménagement d'une piste cyclable bidirectionnelle rue de Verdun à Bihorel") == {"76095"}


def test_an_unknown_asker_with_a_church_title_gets_an_answer(assistant):
    """The title typed in the public chat, nobody known: offers, not « which Saint-Martin? »."""
    result = assistant.chat("Rénovation de l'église Saint-Martin", None)
    assert result.kind == "answer" and result.referrals
    assert result.clarification is None or result.clarification.key != "place"
    assert result.profile.insee is None


def test_the_same_words_with_the_commune_draw_the_homonym_question(assistant):
    result = assistant.chat("La commune de Saint-Martin veut rénover son église", None)
    assert result.clarification is not None and result.clarification.key == "place"


def test_a_commune_whose_name_begins_with_a_building_noun_is_read_where_it_is_the_place(territories):
    """« La Chapelle-Saint-Martin » written as a place (hyphens, capitals, or all in lower case after « à »),
    against « la chapelle Saint-Martin » of a mixed-case title, which is a chapel."""
    code = {c.code for c in territories.communes_named("La Chapelle-Saint-Martin")}
    assert code
    for text in ("Nous sommes à La Chapelle-Saint-Martin", "nous sommes à la chapelle saint martin",
                 "Mairie de La Chapelle Saint Martin"):
        assert codes_read(territories, text) == code, text
    assert not codes_read(territories, "Restauration de la chapelle Saint-Martin")
