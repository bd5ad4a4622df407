"""The water points of the défense extérieure contre l'incendie are ordinary communal equipment, not the
prevention of a natural risk (corpus/themes.yaml theme defense-incendie).

Generated from the data files: the 2018 DETR/DSIL titles of fire hydrants and reserves (evals/realdata.py
KINDS, a pattern on the title, not the theme table) get the theme and not the forest-fire one; the held-out
ones, asked through the real service with the widget's profile, are led by DETR or DSIL and never by the
Fonds Barnier. Sentences that share the word « incendie » keep their own theme: forest fires (the Fonds
vert measure leads), a building's fire safety (mise aux normes), a fire station (no theme).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from assistant.profile import Profile, detect_themes
from assistant.text import fold
from evals.realdata import ECHELONS, KINDS, _read, kind_rows
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = load_themes(ROOT / "corpus")
EVERY = len(VOCABULARY.themes)
DECI, FOREST, NORMS = "defense-incendie", "risques-incendie", "accessibilite-normes-batiments"
GRANTS = {"etat-detr", "etat-dsil"}
BARNIER = "etat-fonds-barnier"
PATTERN, _ = KINDS["defense_incendie"]


def all_titles() -> list[dict]:
    """Every 2018 title (any département, any echelon) the kind's pattern selects."""
    return [r for r in _read("dotations-2018-projets.csv") if PATTERN.search(fold(r["titre"]))]


def test_real_titles_of_fire_hydrants_and_reserves_get_their_theme_not_forest_fires():
    titles = [r["titre"] for r in all_titles()]
    assert len(titles) >= 200
    themed = [t for t in titles if DECI in detect_themes(t, VOCABULARY, limit=EVERY)]
    forest = [t for t in titles if FOREST in detect_themes(t, VOCABULARY, limit=EVERY)]
    assert len(themed) >= 0.97 * len(titles), [t for t in titles if t not in themed][:10]
    assert len(forest) <= 0.02 * len(titles), forest[:10]


@pytest.mark.parametrize("sentence, theme, not_theme", [
    ("Prévention des incendies de forêt dans la commune", FOREST, DECI),
    ("Débroussaillement contre les feux de forêt", FOREST, DECI),
    ("Création d'une piste DFCI", FOREST, DECI),
    ("Mise aux normes sécurité incendie de la salle polyvalente", NORMS, DECI),
    ("Installation d'une alarme incendie à l'école", NORMS, DECI),
    ("Rénovation du centre d'incendie et de secours", None, DECI),
    ("Réfection de la toiture de l'église suite à un incendie", None, DECI),
    ("Défense extérieure contre l'incendie des hameaux", DECI, FOREST),
    ("Installation de trois bouches à incendie", DECI, FOREST),
    ("Mise en place d'une citerne incendie de 120 m3", DECI, FOREST),
])
def test_sentences_that_share_the_word_incendie(sentence, theme, not_theme):
    themes = detect_themes(sentence, VOCABULARY, limit=EVERY)
    assert theme is None or theme in themes, (sentence, themes)
    assert not_theme not in themes, (sentence, themes)


def test_held_out_fire_hydrant_titles_are_led_by_detr_or_dsil_never_by_the_fonds_barnier(assistant):
    """A sample of the held-out titles `aiguillage eval` asks in full (kinds.defense_incendie_right_first):
    of its 99 titles, 2 were led by DETR or DSIL and 13 by the Fonds Barnier before the theme, 86 and 0 with it."""
    rows = random.Random(2018).sample(kind_rows(PATTERN), 40)
    firsts = []
    for row in rows:
        profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
        ids = [r.offer.id for r in assistant.chat(row["titre"], None, profile).referrals]
        firsts.append((row["titre"], ids[0] if ids else None))
    assert not [f for f in firsts if f[1] == BARNIER]
    led = [t for t, first in firsts if first in GRANTS]
    assert len(led) >= 0.7 * len(firsts), [f for f in firsts if f[1] not in GRANTS]


@pytest.mark.parametrize("profile", [Profile(collectivity_type="commune", departement_code="15"), None], ids=["commune", "nobody-known"])
def test_the_reported_question_is_led_by_the_everyday_door(assistant, profile):
    """Reported: « Quelle aide pour la défense incendie de la commune ? » led by the Fonds Barnier."""
    ids = [r.offer.id for r in assistant.chat("Quelle aide pour la défense incendie de la commune ?", None, profile).referrals]
    assert ids and ids[0] in GRANTS and BARNIER not in ids[:1], ids


@pytest.mark.parametrize("question", ["Prévention des incendies de forêt dans la commune",
                                      "Travaux de débroussaillement contre les feux de forêt"])
def test_forest_fire_prevention_keeps_its_own_door(assistant, question):
    referrals = assistant.chat(question, None, Profile(collectivity_type="commune", departement_code="83")).referrals
    assert referrals and referrals[0].offer.id not in GRANTS and FOREST in referrals[0].offer.themes, [r.offer.id for r in referrals]
