"""The place of the works is not their object (README « Les thèmes d'une question : l'objet, pas le lieu »).

Generated from corpus/themes.yaml: every label and synonym of every theme, put in a complement of place
after an object of its own (« refaire la voirie devant l'X », « le parking de l'X », « des panneaux
photovoltaïques sur le toit de l'X »…), is not a theme of the question but a place theme, and the
object's theme leads; the same phrase as the object (« rénover l'X », « la toiture de l'X ») stays the
question's theme. Then the reported questions through the real service: what a mayor sees first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.profile import Profile, detect_place_themes, detect_themes
from assistant.text import match_terms
from ingest.corpus import load_themes

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
VOCABULARY = load_themes(CORPUS)
EVERY = len(VOCABULARY.themes)
PHRASES = [(theme.id, phrase) for theme in VOCABULARY.themes for phrase in [theme.label, *theme.synonyms] if match_terms(phrase)]
# (template, the object's theme or None): the place phrase goes in {x}, with its article.
PLACE_TEMPLATES = [
    ("Refaire la voirie devant {x}", None),
    ("Nous voulons refaire les trottoirs derrière {x}", None),
    ("Créer des places de stationnement près de {x}", None),
    ("Sécuriser la traversée des piétons aux abords de {x}", None),
    ("Refaire le parking de {x}", None),
    ("Réfection du parvis de {x}", None),
    ("Installer des panneaux photovoltaïques sur le toit de {x}", "electricite-renouvelable"),
    ("Planter des arbres autour de {x}", "renaturation"),
    ("Installer des luminaires LED le long de {x}", "eclairage-public"),
]
OBJECT_TEMPLATES = ["Rénover {x}", "Isoler {x} cette année", "La rénovation énergétique de {x}", "Refaire la toiture de {x}",
                    "Travaux sur {x}"]


def with_article(phrase: str) -> str:
    return ("l'" if phrase[0].lower() in "aeéèêiîoôuh" else "la ") + phrase


def test_every_theme_phrase_in_a_complement_of_place_gives_way_to_the_object():
    checked = 0
    for template, object_theme in PLACE_TEMPLATES:
        for theme, phrase in PHRASES:
            sentence = template.format(x=with_article(phrase))
            themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
            if theme == object_theme:  # the object says the same theme: it stays, as the object's
                assert themes[0] == theme, sentence
                continue
            assert theme not in themes, (sentence, themes)
            assert theme in detect_place_themes(sentence, VOCABULARY), sentence
            if object_theme:
                assert themes[0] == object_theme, (sentence, themes)
            checked += 1
    assert checked > 8 * 400


TERRITORIES = {tuple(match_terms(n)) for n in VOCABULARY.territory_nouns}


def test_the_same_phrase_as_the_object_stays_the_question_s_theme():
    for template in OBJECT_TEMPLATES:
        for theme, phrase in PHRASES:
            sentence = template.format(x=with_article(phrase))
            if tuple(match_terms(phrase)) in TERRITORIES and " de {x}" in template:
                continue  # a territory completing a word is where the works are (tests/test_nature_of_works.py)
            assert theme in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence
            assert theme not in detect_place_themes(sentence, VOCABULARY), sentence


@pytest.mark.parametrize("sentence, theme", [
    # a bare « de » names a kind of the head, not its place (Fonds vert 2023 titles)
    ("Création d'un parking de covoiturage", "mobilite"),
    ("Réfection du parvis d'école", "renovation-batiments-publics"),
    # (« cour d'école » is a phrase of its own, renaturation's: the longest phrase reads its words)
    ("Désimperméabilisation de la cour d'école", "renaturation"),
    ("Développement de la gestion de proximité des biodéchets", "dechets-economie-circulaire"),
    # « devant l'école » with no object of its own before it
    ("Devant l'école, que peut-on faire ?", "renovation-batiments-publics"),
])
def test_words_of_place_that_do_not_make_a_complement_of_place(sentence, theme):
    assert theme in detect_themes(sentence, VOCABULARY, limit=EVERY)


def test_a_later_message_with_themes_replaces_the_place_themes():
    first = Profile(themes=["mobilite"], place_themes=["renovation-batiments-publics"])
    assert first.merged_with(Profile(themes=["eclairage-public"])).place_themes == []
    assert first.merged_with(Profile(name="Murat")).place_themes == ["renovation-batiments-publics"]


GRANTS = {"etat-detr", "etat-dsil"}


def test_a_road_in_front_of_the_school_is_led_by_the_everyday_door(assistant):
    """Reported: « refaire la voirie devant l'école » was led by the school-energy contest (CUBE.S)."""
    result = assistant.chat("Refaire la voirie devant l'école", None, Profile(collectivity_type="commune", departement_code="15"))
    ids = [r.offer.id for r in result.referrals]
    assert ids[0] in GRANTS, ids
    assert "renovation-batiments-publics" not in result.profile.themes
    assert result.profile.place_themes == ["renovation-batiments-publics"]
    school = [h for h in result.candidates if h.offer.id == "cerema-ecoles-cube"]
    assert school and "place_only" in school[0].adjustments  # found by its words, ranked after the grants


def test_renovating_the_school_is_still_led_by_a_building_offer(assistant):
    result = assistant.chat("Rénover l'école", None, Profile(collectivity_type="commune", departement_code="15"))
    first = result.referrals[0].offer
    assert "renovation-batiments-publics" in first.themes and first.id not in GRANTS, first.id


def test_solar_panels_on_the_hall_roof_are_not_sent_to_a_heat_or_building_offer(assistant):
    """Reported: led by the Fonds vert building renovation and the Fonds Chaleur (heat only: offers-facts.md
    ADE-01). Solar electricity is its own theme; the hall is where the panels go."""
    result = assistant.chat("Installer des panneaux photovoltaïques sur le toit de la salle des fêtes", None,
                            Profile(collectivity_type="commune", departement_code="15"))
    ids = [r.offer.id for r in result.referrals]
    assert result.profile.themes[0] == "electricite-renouvelable"
    assert "ademe-fonds-chaleur" not in ids and "etat-fonds-vert-renovation-batiments-publics" not in ids[:1], ids
    assert GRANTS & set(ids), ids  # the everyday door: DETR/DSIL funded such panels in 2018


def test_a_ressourcerie_is_waste_and_reuse(assistant):
    """Reported: « créer une ressourcerie » recognised no theme; réemploi is the Fonds économie circulaire's
    (offers-facts.md ADE-08)."""
    result = assistant.chat("Créer une ressourcerie", None, Profile(collectivity_type="commune", departement_code="15"))
    assert result.profile.themes == ["dechets-economie-circulaire"]
    assert result.referrals[0].offer.id == "ademe-fonds-economie-circulaire", [r.offer.id for r in result.referrals]


def test_an_offer_the_question_names_is_not_pushed_back_by_the_place(assistant):
    """place_only is for an offer found through the place's words; one the mayor names is answered about."""
    result = assistant.chat("Refaire la voirie devant l'école : le concours CUBE.S peut-il nous aider ?", None,
                            Profile(collectivity_type="commune", departement_code="15"))
    school = [h for h in result.candidates if h.offer.id == "cerema-ecoles-cube"]
    assert school and "named" in school[0].adjustments and "place_only" not in school[0].adjustments
