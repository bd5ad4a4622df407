"""The scope model (assistant/scope/): decisions on data from each source, on in-scope sentences sharing
the words of out-of-scope ones (and the reverse), on variants of the same question, and its doors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assistant.scope import load_scope_model
from assistant.scope import data as D
from assistant.scope.doors import DOORS, door_of_row

ENGLISH = Path(__file__).parent / "data" / "scope-english.csv"


@pytest.fixture(scope="module")
def decide(embeddings, settings):
    """The decision as the pipeline takes it: query vector and « names an offer of the corpus »."""
    from assistant.offer_names import OfferNames
    from assistant.retrieval import corpus_lexicon
    from assistant.text import fold
    from ingest.corpus import load_corpus

    model = load_scope_model()
    assert model.uses(embeddings.signature)
    offers = load_corpus(settings.corpus_dir).offers.values()
    names, lexicon = OfferNames(offers), corpus_lexicon(offers)
    # The service embeds the question in the cards' spelling (LoadedIndex.lexicon), as retrieval does.
    return lambda text: model.decide(text, embeddings.embed_query(lexicon.canonical(text)), bool(names.find(fold(text)).by_any_name))


def _rate(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# In-scope questions with the words the old keyword rules refused on.
IN_SCOPE_SAME_WORDS = [
    "Nous voulons lancer une étude de cantine partagée avec la commune voisine, qui peut nous accompagner ?",
    "Après les élections municipales, le CRTE signé par l'ancienne équipe continue-t-il ?",
    "Piste cyclable de 4 km jusqu'au village voisin, il manque 500 k€, un prêt long est possible ?",
    "Avec nos voisins de la communauté de communes, on veut construire une piscine intercommunale : quelles aides ?",
    "Depuis les élections, la nouvelle équipe veut rénover la salle des fêtes, quelles subventions ?",
    "Le contrat Petites villes de demain finance-t-il un chef de projet ?",
    "Notre village a un bâtiment pour un centre de santé mais pas de médecin, qui peut nous aider ?",
    "Rénovation énergétique de l'école primaire, quelles aides pour une commune de 900 habitants ?",
]
# Out-of-scope questions with the words of in-scope ones: commune, mairie, subvention.
OUT_OF_SCOPE_SAME_WORDS = [
    ("Je viens d'emménager dans la commune, comment m'inscrire sur les listes électorales ?", None),
    ("Comment obtenir une copie de mon acte de naissance à la mairie de mon village natal ?", None),
    ("J'ai reçu une subvention pour les travaux de ma maison, dois-je la déclarer aux impôts ?", "particulier"),
    ("Combien gagne un agent d'accueil de mairie en début de carrière ?", "collectivite-autre"),
    ("Quelles sont les règles de convocation du conseil municipal de la commune ?", "collectivite-autre"),
]


@pytest.mark.parametrize("text", IN_SCOPE_SAME_WORDS)
def test_in_scope_questions_with_voisin_elections_contrat_sante_ecole_are_answered(decide, text):
    verdict = decide(text)
    assert not verdict.refuses, f"P(hors champ) = {verdict.out_probability:.3f}"


@pytest.mark.parametrize("text,kind", OUT_OF_SCOPE_SAME_WORDS)
def test_out_of_scope_questions_with_commune_mairie_subvention_are_refused_with_a_door(decide, text, kind):
    verdict = decide(text)
    assert verdict.refuses and verdict.door_text
    if kind:
        assert verdict.kind == kind


def test_a_private_health_question_is_refused_towards_service_public(decide):
    verdict = decide("J'ai une rage de dents et le cabinet dentaire du bourg est fermé, je peux prendre quoi ?")
    assert verdict.kind == "particulier" and "service-public.fr" in verdict.door_text


# Held-out rows of each source (never seen in training): the rate each must reach.
SOURCES = [
    ("particuliers", lambda: D.particuliers(), True, 0.90),
    ("collectivites", lambda: D.collectivites(), True, 0.85),
    ("dotations", lambda: D.dotations(), False, 0.98),
    ("fonds-vert", lambda: D.fonds_vert(), False, 0.98),
    ("gold", lambda: [e for e in D.gold() if e.label == "projet"], False, 0.95),
    # Written questions of the Sénat, never trained on (the Assemblée's are): measured 0.719 (46 of 64) and 9 of 9
    # refused / answered by the classifier on 2026-12-06 (0.453 of 64 refused before the Assemblée's were learnt).
    ("parlement-collectivites", lambda: [e for e in D.parliamentary_questions() if e.label == "collectivite-autre"], True, 0.65),
    ("parlement-projets", lambda: [e for e in D.parliamentary_questions() if e.label == "projet"], False, 0.95),
]


@pytest.mark.parametrize("name,load,refused,minimum", SOURCES, ids=[s[0] for s in SOURCES])
def test_held_out_rows_of_each_source(decide, name, load, refused, minimum):
    rows = [e for e in load() if e.split == "test"]
    rows = rows[:: max(1, len(rows) // 60)][:60]  # at most 60 held-out rows, spread over the file
    assert len(rows) >= 5
    rate = _rate(decide(e.text).refuses == refused for e in rows)
    assert rate >= minimum, f"{name}: {rate:.3f} < {minimum}"


def _variants_pairs() -> list[tuple[str, str]]:
    with ENGLISH.open(encoding="utf-8") as handle:
        return [(r["francais"], r["english"]) for r in csv.DictReader(handle, delimiter=";")]


def _strip_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def test_english_capitals_and_unaccented_variants_get_the_french_decision(decide):
    """Over the pairs of tests/data/scope-english.csv and held-out rows of each dataset: the English
    translation, the text in CAPITALS and without accents get the French original's decision."""
    pairs = _variants_pairs()
    originals = [fr for fr, _ in pairs] + [e.text for e in D.collectivites() + D.particuliers() if e.split == "test"][::9]
    base = {t: decide(t).refuses for t in originals}
    english = _rate(decide(en).refuses == base[fr] for fr, en in pairs)
    capitals = _rate(decide(t.upper()).refuses == base[t] for t in originals)
    unaccented = _rate(decide(_strip_accents(t)).refuses == base[t] for t in originals)
    # USE reads case: embedded raw, CAPITALS flipped 8 of 45 decisions (0.82). Read in the cards'
    # spelling as the service does, all three measured 1.0 (2026-12-05); bars leave one flip of 45.
    assert english >= 0.9 and capitals >= 0.95 and unaccented >= 0.95, (english, capitals, unaccented)


def test_every_local_government_row_maps_to_a_known_door():
    rows = D.collectivites()
    doors = {e.door for e in rows}
    assert doors <= set(DOORS)
    assert door_of_row("cnil_faq_title (local authority data-protection question)", "Services publics") == "cnil"
    assert door_of_row("service-public_question_fiche (public-sector staff HR rule)", "Travail > Carrière dans la fonction publique") == "cdg"
    assert door_of_row("service-public_question_fiche (citizen question)", "Papiers - Citoyenneté > Élections") == "prefecture"
    assert door_of_row("service-public_question_fiche (citizen question)", "Famille > Déclaration de décès, obsèques") == "service-public"


def test_the_model_artefact_is_small_and_needs_no_pickle():
    from assistant.scope.model import MODEL_JSON, MODEL_NPZ

    assert MODEL_NPZ.stat().st_size < 600_000
    import numpy as np

    with np.load(MODEL_NPZ, allow_pickle=False) as data:
        assert {"scope_bias", "scope_grams_bias", "door_scope_bias", "door_scope_grams_bias"} <= set(data.files)
    assert MODEL_JSON.is_file()


def test_without_the_trained_embeddings_the_ngram_head_decides():
    model = load_scope_model()
    verdict = model.decide("Comment renouveler mon passeport ?", None)
    assert verdict.head == "scope_grams" and verdict.refuses
    assert not model.decide("Quelles subventions pour rénover l'école communale ?", None).refuses


def test_refused_rows_of_unseen_rubriques_name_their_door(decide):
    """The door of a refused message, on the held-out rubriques (assistant/scope/data.py `test`): the
    row's door (CDG for staff rules, service-public.fr collectivités pages for cemeteries and civil
    status…) for local government, service-public.fr for private persons; the refusal's kind follows."""
    local = [e for e in D.collectivites() if e.split == "test"]
    private = [e for e in D.particuliers() if e.split == "test"][::5]
    local_right = [v.door == e.door for e in local if (v := decide(e.text)).refuses]
    private_right = [v.door == "particulier" and v.kind == "particulier" for e in private if (v := decide(e.text)).refuses]
    assert len(local_right) >= 20 and len(private_right) >= 20
    # Measured 2026-12-05: 0.710 (22 of 31 refused; 0.645 when the kind was decided before the door)
    # and 0.95 for private persons.
    assert _rate(local_right) >= 0.65 and _rate(private_right) >= 0.90, (_rate(local_right), _rate(private_right))

