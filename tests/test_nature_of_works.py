"""The nature of the works, not a building noun nor a territory, decides their theme (corpus/themes.yaml
`territory_nouns`, `building_nouns`, themes accessibilite-normes-batiments and vehicules-electriques; README
« Les thèmes d'une question : l'objet, pas le lieu »).

Generated from the theme table: every territory noun completing another word is the place of the works,
and the theme of what is done there leads; the same noun at the head of the message stays a theme; every
building noun completing another word gives way to the nature of the works another theme names, and stays
the object of its own works; a phrase inside a longer phrase of another theme is read as the longer one.
Generated from the data files: the 2018 DETR/DSIL titles of accessibility, of mise aux normes and of
charging points get their theme, and the road titles that share the word « recharge » do not. Then the
reported questions through the real service: what a mayor sees first.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from assistant.profile import Profile, detect_place_themes, detect_themes
from assistant.text import fold, match_terms
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
NORMS, CHARGING = "accessibilite-normes-batiments", "vehicules-electriques"
GRANTS = {"etat-detr", "etat-dsil"}


def theme_of(noun: str) -> str:
    terms = tuple(match_terms(noun))
    return next(t.id for t in VOCABULARY.themes if terms in {tuple(match_terms(p)) for p in [t.label, *t.synonyms]})


def with_article(phrase: str) -> str:
    return ("l'" if phrase[0].lower() in "aeéèêiîoôuh" else "le ") + phrase


# (template, the theme of what is done there or None): the territory goes in {x}, with its article.
TERRITORY_PLACES = [
    ("Aménagement de la place du {x}", None),
    ("Réfection de la voirie du {x}", None),
    ("Aménagement des espaces publics du {x}", None),
    ("Travaux dans {ax}", None),
    ("Sécurisation de la traversée du {x}", None),
    ("Aménagement du cœur de {x}", None),
    ("Rénovation de l'éclairage public du {x}", "eclairage-public"),
    ("Mise en accessibilité de la mairie du {x}", NORMS),
    ("Revitalisation du {x}", "revitalisation-centre"),
]
TERRITORY_OBJECTS = ["{X}", "Notre {x} se vide de ses habitants", "Comment redynamiser {ax} ?", "Quel avenir pour {ax} ?"]


@pytest.mark.parametrize("noun", VOCABULARY.territory_nouns)
def test_a_territory_completing_a_word_is_where_the_works_are(noun):
    own = theme_of(noun)
    for template, object_theme in TERRITORY_PLACES:
        sentence = template.format(x=noun, ax=with_article(noun))
        themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
        if object_theme == own:
            assert themes and themes[0] == own, (sentence, themes)
            continue
        assert own not in themes, (sentence, themes)
        assert own in detect_place_themes(sentence, VOCABULARY), sentence
        assert themes[:1] == ([object_theme] if object_theme else []), (sentence, themes)


@pytest.mark.parametrize("noun", VOCABULARY.territory_nouns)
def test_a_territory_that_is_what_the_message_is_about_stays_a_theme(noun):
    for template in TERRITORY_OBJECTS:
        sentence = template.format(x=noun, X=noun.capitalize(), ax=with_article(noun))
        assert theme_of(noun) in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence


# The nature of the works said by another theme, a building noun in {x}.
NATURES = [
    ("Comment financer la mise aux normes de {ax} ?", NORMS),
    ("Mise en accessibilité PMR de {ax}", NORMS),
    ("Travaux de sécurité incendie dans {ax}", NORMS),
    ("Installer des bornes de recharge pour véhicules électriques au parking de {ax}", CHARGING),
    ("Végétalisation de {ax}", "renaturation"),
]
# A new building (corpus/themes.yaml `new_building_nouns`) is no energy renovation of an existing one.
NEW_BUILDINGS = ["Construction de {ax}", "Construire {ax} neuf", "Comment financer la construction d'un nouveau {x} ?",
                 "Création de {ax}", "Nous voulons créer {ax}"]
# The building's own works, also when another theme comes after it (two objects, not a nature of the works),
# and « bâtiment » (the same stem as « bâtir ») says no new building.
OWN_WORKS = ["Rénovation de {ax}", "Rénover {ax}", "Isolation de {ax}", "Refaire la toiture de {ax}", "Extension de {ax}",
             "Rénovation de {ax} et de l'éclairage public", "Réhabilitation de {ax} et création d'une chaufferie bois",
             "Mise aux normes énergétiques de {ax}", "Réhabilitation et extension de {ax}", "Rénovation du bâtiment de {ax}",
             "Construction d'un préau pour {ax}"]


@pytest.mark.parametrize("noun", [n for n in VOCABULARY.building_nouns if n not in VOCABULARY.themeless_phrases])
def test_a_building_gives_way_to_the_nature_of_its_works(noun):
    own = theme_of(noun)
    for template, nature in NATURES:
        sentence = template.format(ax=with_article(noun))
        themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
        assert themes[0] == nature and own not in themes, (sentence, themes)
        assert own in detect_place_themes(sentence, VOCABULARY), sentence
    for template in NEW_BUILDINGS:
        sentence = template.format(x=noun, ax=with_article(noun))
        assert own not in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence
        assert own in detect_place_themes(sentence, VOCABULARY), sentence
    for template in OWN_WORKS:
        sentence = template.format(ax=with_article(noun))
        assert own in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence


def test_a_phrase_inside_a_longer_phrase_of_another_theme_is_read_as_the_longer_one():
    """Generated from the table: every pair where a phrase of one theme holds a shorter phrase of another."""
    phrases = [(t.id, p, tuple(match_terms(p))) for t in VOCABULARY.themes for p in [t.label, *t.synonyms]]
    checked = 0
    for long_id, long, long_terms in phrases:
        for short_id, short, short_terms in phrases:
            if short_id == long_id or len(short_terms) >= len(long_terms):
                continue
            if any(long_terms[i : i + len(short_terms)] == short_terms for i in range(len(long_terms) - len(short_terms) + 1)):
                themes = detect_themes(f"Notre projet : {long}", VOCABULARY, limit=EVERY)
                assert long_id in themes and short_id not in themes, (long, short, themes)
                assert short_id in detect_themes(f"Notre projet : {short}", VOCABULARY, limit=EVERY), short
                checked += 1
    assert checked >= 20


@pytest.mark.parametrize("sentence, theme, not_theme", [
    # real objects a place word is part of (QPV, revitalisation)
    ("Aménagement des espaces publics du quartier prioritaire", "politique-de-la-ville", None),
    ("Travaux dans le QPV des Tilleuls", "politique-de-la-ville", None),
    ("Revitalisation du centre-bourg", "revitalisation-centre", "ruralite"),
    ("Rénovation urbaine du quartier de la gare", "renouvellement-urbain", None),
    # sentences that share the new themes' words and mean something else
    ("Travaux de rechargement et reprofilage du chemin rural", None, CHARGING),
    ("Rechargement en sable de la plage après la tempête", "risques-naturels", CHARGING),
    ("Aménager une aire de covoiturage pour les personnes à mobilité réduite", "mobilite", None),
    ("Rénovation énergétique des logements des propriétaires modestes", "renovation-habitat-prive", "renovation-batiments-publics"),
    ("Mise aux normes de la station d'épuration", "eau-assainissement", None),
    ("Sécurisation de la traversée du bourg", None, NORMS),
    ("Mise en sécurité de la falaise", "trait-de-cote", NORMS),
    ("Débroussaillement contre les feux de forêt", "risques-incendie", NORMS),
    ("Accessibilité numérique du site internet de la commune", "numerique-collectivites", NORMS),
    ("Améliorer l'accessibilité des services publics en milieu rural", "services-publics", NORMS),
    ("Accessibilité aux soins dans notre commune rurale", "sante", NORMS),
    ("Mise en conformité RGPD de la mairie", None, NORMS),  # no theme at all: tests/test_data_protection.py
    ("Choisir un logiciel ERP pour la comptabilité", None, NORMS),
])
def test_sentences_that_share_the_words(sentence, theme, not_theme):
    themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
    assert theme is None or theme in themes, (sentence, themes)
    assert not_theme is None or not_theme not in themes, (sentence, themes)


def dotation_titles(pattern: str) -> list[str]:
    with (ROOT / "evals" / "datasets" / "dotations-2018-projets.csv").open(encoding="utf-8-sig", newline="") as handle:
        return [r["titre"] for r in csv.DictReader(handle, delimiter=";") if re.search(pattern, fold(r["titre"]))]


@pytest.mark.parametrize("pattern, theme, share", [
    (r"\baccessibilite\b|mise en accessibilite", NORMS, 0.97),  # 2018 DETR/DSIL titles of accessibility
    (r"\bmise aux normes\b|mise en conformite", NORMS, 0.97),
    (r"borne.{0,20}recharge|infrastructures? de recharge|points? de (re)?charge|\birve\b", CHARGING, 0.9),
])
def test_real_titles_of_the_nature_get_its_theme(pattern, theme, share):
    titles = dotation_titles(pattern)
    assert len(titles) >= 10
    found = [t for t in titles if theme in detect_themes(t, VOCABULARY, limit=EVERY)]
    assert len(found) >= share * len(titles), [t for t in titles if t not in found][:10]


def test_real_titles_of_a_new_school_are_not_energy_renovation():
    """2018 DETR/DSIL titles that start with the construction of a school: 79 of 87 read (the rest name the
    school again further on, or also renovate another building: « … et réhabilitation des locaux de l'école »)."""
    titles = dotation_titles(r"^construction d.(une?|le|la) (ecole|groupe scolaire)")
    assert len(titles) >= 20
    energy = [t for t in titles if "renovation-batiments-publics" in detect_themes(t, VOCABULARY, limit=EVERY)]
    assert len(energy) <= 0.15 * len(titles), energy


def test_real_road_titles_that_share_the_word_recharge_are_not_charging_points():
    titles = [t for t in dotation_titles(r"rechargement") if "electrique" not in fold(t)]  # roads, shores
    assert len(titles) >= 5
    assert not [t for t in titles if CHARGING in detect_themes(t, VOCABULARY, limit=EVERY)]


COMMUNE = Profile(collectivity_type="commune", departement_code="15")


@pytest.mark.parametrize("question", [
    "Notre commune veut rendre la mairie accessible aux personnes handicapées",  # reported: led by MaPrimeAdapt'
    "Comment financer la mise aux normes de la salle des fêtes ?",  # reported: led by the Fonds vert energy renovation
    "Comment financer la mise en accessibilité de la mairie ?",  # reported: a clarification only (no profile)
    "bornes de recharge pour véhicules électriques",  # reported: no theme, street lighting first
    "Construction d'une salle des fêtes",  # was led by the Fonds vert energy renovation of existing buildings
])
def test_the_nature_of_works_no_partner_funds_is_led_by_the_everyday_door(assistant, question):
    for profile in (COMMUNE, None):
        result = assistant.chat(question, None, profile)
        ids = [r.offer.id for r in result.referrals]
        assert ids and ids[0] in GRANTS, (profile, ids)
        assert "anah-maprimeadapt" not in ids[:1] and "etat-fonds-vert-renovation-batiments-publics" not in ids, ids


def test_the_village_square_is_ordinary_works_not_rurality(assistant):
    """Reported: « Aménagement de la place du village » led by Villages d'avenir (the village read as a theme)."""
    result = assistant.chat("Aménagement de la place du village", None, COMMUNE)
    ids = [r.offer.id for r in result.referrals]
    assert "ruralite" not in result.profile.themes and result.profile.place_themes == ["ruralite"]
    assert "anct-villages-d-avenir" not in ids and GRANTS & set(ids), ids


def test_a_priority_neighbourhood_is_still_its_theme(assistant):
    result = assistant.chat("Aménagement des espaces publics du quartier prioritaire", None, COMMUNE)
    assert result.profile.themes == ["politique-de-la-ville"]
    assert [r for r in result.referrals if "politique-de-la-ville" in r.offer.themes], [r.offer.id for r in result.referrals]
