"""Commune names that hold a joining word (« lô », « lez », « sous », « aux »…) at one end are read like any other
name: « Saint-Lô : rénovation du gymnase » is Saint-Lô as « Saint-Flour : … » is Saint-Flour. Generated from the
commune table (every such name) in the forms titles write them (as written, without hyphens, in capitals without
accents); the counter-cases are real titles and sentences where the same words are ordinary words or a river.
The whole measure, every name in every form: python -m evals.commune_names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assistant.territory import ARTICLES, JOINERS, Territories, _content, normalize
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


# --- a name alone in a part of a title ---------------------------------------------------------------------------
# Real titles set their commune apart: « Rénovation éclairage public full LED - Izernore », « Albias - Impasse de la
# mairie », « Construction d'un local technique (Eygurande) ». A one-word name (with or without its article) needs no
# other cue there; an ordinary-word name (noms-communs.txt) still does.

PART_TEMPLATES = ["{} : rénovation du gymnase", "Rénovation de l'éclairage public - {}", "Construction d'un local technique ({})",
                  "Travaux de voirie – {} – tranche 2"]


def one_word_names(territories: Territories, common: bool) -> dict[str, set[str]]:
    """{name: codes} for every tenth one-word name (after its article), ordinary words or not; not the names of a
    département (« Indre » alone is the département)."""
    departements = {normalize(d.name) for d in territories.departements.values()}
    found: dict[str, set[str]] = {}
    for commune in territories.communes.values():
        key = normalize(commune.name)
        words = key.split()
        while words and words[0] in ARTICLES:
            words = words[1:]
        if len(words) == 1 and territories._is_common(key) == common and "(" not in commune.name and key not in departements:
            found.setdefault(commune.name, set()).add(commune.code)
    return {name: found[name] for name in sorted(found)[::10]}


@pytest.mark.parametrize("template", PART_TEMPLATES)
def test_a_one_word_name_alone_in_a_part_of_a_title_is_read(territories, template):
    names = one_word_names(territories, common=False)
    assert len(names) > 1_500
    missed = [name for name, codes in names.items() if not codes <= codes_read(territories, template.format(name))]
    assert missed == []


@pytest.mark.parametrize("template", PART_TEMPLATES)
def test_an_ordinary_word_name_alone_in_a_part_still_needs_a_cue(territories, template):
    names = one_word_names(territories, common=True)
    assert len(names) > 100
    read = [name for name in names if codes_read(territories, template.format(name))]
    assert read == []


@pytest.mark.parametrize("text", [
    "Restructuration des installations de production d'énergie du centre socio-culturel L.Aragon",
    "Mise en accessibilité des bâtiments communaux (CAP jeunes, Clavel, Petite enfance et école J. Verne)",
    "Proto-aménagement de la friche « Bru » pour une résidence inclusive",
    "Aménagement cheminement Esplanade/Cordesse",
    "Rénovation des menuiseries des logements de l'école Saint- Aignan",
    "Piste cyclable RD6113- Nimes Bouillargues",
    "rénovation de l'éclairage public - izernore",
])
def test_people_sites_and_lists_in_real_titles_are_no_part_of_their_own(territories, text):
    """Real titles (2018 DETR/DSIL, 2023 Fonds vert) where a commune name follows an initial, stands in quotes, after
    a slash or a glued hyphen, or in a text all in lower case: no commune read."""
    assert codes_read(territories, text) == set()


# --- a name made of ordinary words ------------------------------------------------------------------------------
# « Pont-de-Vaux », « Château-Gaillard », « Fontaines sur Marne »: each word is an ordinary word, the name is not. Written
# as one capitalised name (hyphens) or alone in a part of a title it is read; after an article it is a site (« du
# Vieux-Port », « le Vieux-Bourg »), in lower case or in a text all in capitals it says nothing.


def ordinary_word_names(territories: Territories) -> dict[str, set[str]]:
    """{name: codes} for every name of two words or more that are each an ordinary word (about 260)."""
    found: dict[str, set[str]] = {}
    for commune in territories.communes.values():
        key = normalize(commune.name)
        if (territories._is_common(key) and key not in territories._common_names and len(_content(key.split())) >= 2
                and key.split()[0] not in ARTICLES):
            found.setdefault(commune.name, set()).add(commune.code)
    return found


@pytest.mark.parametrize(("template", "in_a_sentence"), [("{} : rénovation du gymnase", False),
                                                     ("Éclairage public - {}", False),
                                                     ("Rénovation de l'école de {}", True)])
def test_a_name_of_ordinary_words_written_as_a_name_is_read(territories, template, in_a_sentence):
    """Inside a sentence the hyphens make it a name: names the table writes with spaces (« Deux Rivières ») are read
    there only with a place cue."""
    names = ordinary_word_names(territories)
    assert {"Pont-de-Vaux", "Château-Gaillard", "Fontaines-sur-Marne"} <= set(names) and len(names) > 200
    if in_a_sentence:
        names = {name: codes for name, codes in names.items() if " " not in name}
    missed = [name for name, codes in names.items() if not codes <= codes_read(territories, template.format(name))]
    assert missed == []


def test_the_same_names_in_parts_without_hyphens_are_read(territories):
    names = ordinary_word_names(territories)
    missed = [name for name, codes in names.items()
              if not codes <= codes_read(territories, f"Éclairage public - {name.replace('-', ' ')}")]
    assert missed == []


@pytest.mark.parametrize("template", ["Aménagement du {}", "Réhabilitation de la halle du {} et de ses abords",
                                      "rénovation de l'école de {}", "RÉNOVATION DE L'ÉCOLE DE {}"])
def test_after_an_article_in_lower_case_or_in_capitals_they_name_nothing(territories, template):
    """« Aménagement du Vieux-Port » is Marseille's harbour, not Vieux-Port (Eure); lower case and capitals say nothing."""
    names = ordinary_word_names(territories)
    written = (lambda n: n.lower()) if template[0].islower() else (lambda n: n.upper()) if template.isupper() else str
    read = [name for name in names if codes_read(territories, template.format(written(name)))]
    assert read == []


# --- EPCI names that hold a comma, a parenthesis or a slash ----------------------------------------------------
# « CC de Vitry, Champagne et Der », « CC du Cordais et du Causse (4 C) »: after an EPCI prefix, the official name
# is read whole although a name never spans punctuation elsewhere (60 EPCI).


@pytest.mark.parametrize("template", ["{} : rénovation du gymnase", "Rénovation du gymnase - {}"])
def test_an_epci_name_with_punctuation_is_read_as_written_and_in_capitals(territories, template):
    epcis = [e for e in territories.epcis.values() if any(ch in e.name for ch in ",()/")]
    assert len(epcis) >= 50
    missed = []
    for epci in epcis:
        for written in (epci.name, epci.name.upper()):
            found = territories.resolve(template.format(written))
            if not (found.epci and found.epci.siren == epci.siren or epci.siren in {e.siren for e in found.epci_candidates}):
                missed.append(written)
    assert missed == []

