"""A building's own lighting is not street lighting (corpus/themes.yaml `building_fittings`): « les luminaires du
gymnase », « des LED dans les écoles » leave the building the object of the works, and the same words on a
street, a square or beside a building (« les luminaires de la place », « les lampadaires devant l'école »,
« l'éclairage public ») keep the street-lighting theme.

Generated from the table (every fitting × every building noun) and from the data files: the Fonds vert 2023
titles of the buildings measure where a building completes a fitting lose street lighting, and none of the
street-lighting measure's titles does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.profile import Profile, detect_themes, fitted, _occurrences
from evals.place_themes import fonds_vert_rows
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
LIGHTING, BUILDINGS = "eclairage-public", "renovation-batiments-publics"
STREET_LIGHTING_OFFER = "etat-fonds-vert-eclairage-public"
# A building noun that is also a themeless phrase (« mairie ») makes its fittings its own and names no theme.
THEMELESS_BUILDINGS = set(VOCABULARY.building_nouns) & set(VOCABULARY.themeless_phrases)




FONDS_VERT = [(r["text"], r["measure"]) for r in fonds_vert_rows(VOCABULARY)]
MEASURES = VOCABULARY.fonds_vert_measures


def _fitted(title: str) -> bool:
    return fitted(*_occurrences(title, VOCABULARY))


@pytest.mark.parametrize("fitting", VOCABULARY.building_fittings)
@pytest.mark.parametrize("building", VOCABULARY.building_nouns)
# The last two: the fitting after the building, as the means of the works (profile.MEANS: « par », « en »).
@pytest.mark.parametrize("template", ["Remplacement des {f} du {b}", "Installation de {f} dans le {b}",
                                      "Remplacement de l'éclairage du {b} par des {f}", "Passage de l'éclairage du {b} en {f}"])
def test_a_buildings_lighting_is_the_building(fitting, building, template):
    themes = detect_themes(template.format(f=fitting, b=building), VOCABULARY, limit=EVERY)
    assert LIGHTING not in themes and (BUILDINGS in themes or building in THEMELESS_BUILDINGS and not themes), themes


@pytest.mark.parametrize("fitting", VOCABULARY.building_fittings)
@pytest.mark.parametrize("template", ["Remplacement des {} de la place de l'école", "Remplacement des {} rue de l'école",
                                      "Pose de {} devant le gymnase", "Rénovation de l'éclairage public et des {} du village",
                                      "{} dans le gymnase et éclairage public du stade"])
def test_the_same_words_outside_a_building_stay_street_lighting(fitting, template):
    assert LIGHTING in detect_themes(template.format(fitting), VOCABULARY, limit=EVERY)


def test_the_fonds_vert_titles_the_rule_reads_are_the_buildings_measure():
    """Of the Fonds vert 2023 titles where a building completes a fitting, none is of the street-lighting measure
    and those of the buildings measure get its theme and not street lighting (5 titles on 6 December 2026)."""
    read = [(t, m) for t, m in FONDS_VERT if m in MEASURES and _fitted(t)]
    assert len(read) >= 5
    assert all(LIGHTING not in MEASURES[m] for _, m in read)
    for title, measure in read:
        themes = detect_themes(title, VOCABULARY, limit=EVERY)
        assert LIGHTING not in themes and set(MEASURES[measure]) & set(themes), title


@pytest.mark.parametrize("sentence", ["Éclairage public de la place de la mairie en LED",
                                      "Passage en LED de l'éclairage public devant la mairie",
                                      "Rénovation de la mairie et des LED de la rue",
                                      "Remplacement des luminaires de la rue de la mairie par des LED"])
def test_street_lighting_near_a_building_stays_street_lighting(sentence):
    assert LIGHTING in detect_themes(sentence, VOCABULARY, limit=EVERY), sentence


@pytest.mark.parametrize("profile", [Profile(collectivity_type="commune", departement_code="15"), None], ids=["commune", "nobody-known"])
def test_the_reported_mairie_lighting_is_not_led_by_street_lighting(assistant, profile):
    """Reported: « Remplacement de l'éclairage de la mairie par des LED » led by the Fonds vert street-lighting
    measure (« mairie » was no building noun, and the LED came after it)."""
    referrals = assistant.chat("Remplacement de l'éclairage de la mairie par des LED", None, profile).referrals
    ids = [r.offer.id for r in referrals]
    assert referrals and ids[0] != STREET_LIGHTING_OFFER and STREET_LIGHTING_OFFER not in ids, ids
    assert BUILDINGS in referrals[0].offer.themes or ids[0] in {"etat-detr", "etat-dsil"}, ids


@pytest.mark.parametrize("sentence, theme", [
    ("La mairie voudrait créer une crèche de 12 berceaux", "petite-enfance"),  # the asker, not the building
    ("La mairie voudrait refaire le site internet de la commune", "numerique-collectivites"),
    ("Mise en accessibilité de la mairie", "accessibilite-normes-batiments"),
    ("Rénover la mairie", BUILDINGS),
])
def test_the_mairie_names_no_theme_of_its_own(sentence, theme):
    themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
    assert themes[:1] == ([theme] if theme else []), themes

