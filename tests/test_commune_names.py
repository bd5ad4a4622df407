"""Commune names that hold a joining word (« lô », « lez », « sous », « aux »…) at one end are read like any other
name: « Saint-Lô : rénovation du gymnase » is Saint-Lô as « Saint-Flour : … » is Saint-Flour. Generated from the
commune table (every such name) in the forms titles write them (as written, without hyphens, in capitals without
accents); the counter-cases are real titles and sentences where the same words are ordinary words or a river.
The whole measure, every name in every form: python -m evals.commune_names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assistant.territory import ARTICLES, JOINERS, Territories, normalize
from evals.commune_names import FORMS

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "evals" / "datasets"


@pytest.fixture(scope="module")
def territories() -> Territories:
    return Territories.load(ROOT / "corpus")


def joiner_at_an_end(territories: Territories) -> dict[str, set[str]]:
    """{name: INSEE codes of the communes of that name} for every name whose first word (after an article) or
    last word is a joining word: Saint-Lô, Castelnau-le-Lez, Sous-Parsat, Cherré-Au… (about 16 names)."""
    found: dict[str, set[str]] = {}
    for commune in territories.communes.values():
        words = normalize(commune.name).split()
        while words and words[0] in ARTICLES:
            words = words[1:]
        if len(words) >= 2 and (words[0] in JOINERS or words[-1] in JOINERS):
            found.setdefault(commune.name, set()).add(commune.code)
    return found


def codes_read(territories: Territories, text: str) -> set[str]:
    found = territories.resolve(text)
    return {c.code for c in ([found.commune] if found.commune else []) + list(found.candidates)}


@pytest.mark.parametrize("form", ["as_written", "no_hyphens", "title_form"])
def test_a_name_with_a_joining_word_at_an_end_is_read_at_the_head_of_a_title(territories, form):
    """Names that are no ordinary words (noms-communs.txt) need no cue, like Saint-Flour; the others are read
    with one (next test)."""
    names = {n: codes for n, codes in joiner_at_an_end(territories).items()
             if not territories._is_common(normalize(n))}
    assert {"Saint-Lô", "Castelnau-le-Lez", "Sous-Parsat"} <= set(names) and len(names) >= 7
    missed = [name for name, codes in names.items()
              if not codes <= codes_read(territories, f"{FORMS[form](name)} : rénovation du gymnase")]
    assert missed == []


@pytest.mark.parametrize("template", ["Commune de {} : rénovation du gymnase", "Je suis maire de {}"])
def test_every_name_with_a_joining_word_at_an_end_is_read_after_a_place_cue(territories, template):
    names = joiner_at_an_end(territories)
    missed = [name for name, codes in names.items() if not codes <= codes_read(territories, template.format(name))]
    assert missed == []


def test_saint_lo_is_read_with_its_population_as_saint_flour_is(territories):
    for title in ("Saint-Lô : rénovation du gymnase", "SAINT LO : étude de végétalisation du cimetière",
                  "Saint Lo - réaménagement de la cour de l'école"):
        found = territories.resolve(title)
        assert found.commune is not None and found.commune.code == "50502", title
        assert found.commune.population > 15_000


@pytest.mark.parametrize("text", [
    "Restauration des berges du Lez",
    "SM du bassin versant du Lez : travaux sur les systèmes d'endiguement",
    "Accès aux marais : aménagement d'un sentier",
    "Travaux sous la mairie et aux abords de l'école",
    "Fête de la Saint-Lô : animation du bourg",
    "Le lo-fi au conservatoire",
])
def test_the_same_words_as_ordinary_words_or_a_river_name_no_commune(territories, text):
    assert codes_read(territories, text) == set()


def test_real_titles_read_such_a_name_only_where_they_write_it(territories):
    """Every real title (2018 DETR/DSIL, 2023 Fonds vert) read as one of these communes writes its whole name."""
    codes = {code: name for name, found in joiner_at_an_end(territories).items() for code in found}
    titles = []
    for name, column in (("dotations-2018-projets.csv", "titre"), ("fonds-vert-2023-projets.csv", "nom_du_projet")):
        with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
            titles += [row[column] for row in csv.DictReader(handle, delimiter=";")]
    read = {title: codes_read(territories, title) & set(codes) for title in titles}
    wrong = [t for t, found in read.items() for c in found if normalize(codes[c]) not in normalize(t)]
    assert wrong == []
    assert sum(bool(found) for found in read.values()) >= 2  # Saint-Lô, Cherré-Au: the test reads something
