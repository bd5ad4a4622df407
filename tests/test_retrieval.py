"""Hybrid retrieval on the real corpus: French questions find their offer, filters hold, fusion is RRF."""

import pytest

from assistant.retrieval import HybridRetriever, IndexHandle, SearchFilters, _rank_offers

QUESTIONS = [
    ("Notre pont communal présente des fissures, qui peut nous conseiller gratuitement ?", "cerema-sos-ponts"),
    ("Nous voulons créer un réseau de chaleur alimenté par une chaufferie bois", "ademe-fonds-chaleur"),
    ("Une copropriété dégradée dans le centre, comment intervenir ?", "anah-opah-copropriete"),
    ("Remplacer les lampadaires de l'éclairage public par des LED", "etat-fonds-vert-eclairage-public"),
    ("Prêt pour le réseau d'eau potable et l'assainissement", "bdt-aqua-pret"),
    ("Ouvrir un espace France services dans notre bourg", "anct-france-services"),
]


@pytest.fixture(scope="module")
def retriever(settings, embeddings, indexed):
    return HybridRetriever(IndexHandle(settings), embeddings, settings)


@pytest.mark.parametrize("question,expected", QUESTIONS)
def test_french_question_finds_its_offer_in_top_three(retriever, question, expected):
    assert expected in [h.offer.id for h in retriever.search(question, limit=3)]


def test_hits_are_grouped_per_offer_with_a_score_breakdown(retriever):
    hits = retriever.search("rénovation énergétique de l'école communale", limit=10)
    assert len({h.offer.id for h in hits}) == len(hits)
    top = hits[0].breakdown()
    assert {"bm25_rank", "dense_rank", "bm25_score", "dense_similarity", "fused_score", "final_score"} <= set(top)
    assert top["fused_score"] == pytest.approx(
        sum(1 / (60 + r) for r in (top["bm25_rank"], top["dense_rank"]) if r), rel=1e-3
    )


def test_partner_and_status_filters_are_applied(retriever):
    hits = retriever.search("financer la rénovation des bâtiments", SearchFilters(partners=("banque-des-territoires",)), limit=10)
    assert hits and {h.offer.partner for h in hits} == {"banque-des-territoires"}
    closed = retriever.search("vélo piste cyclable", SearchFilters(statuses=("closed",)), limit=10)
    assert closed and all(h.offer.status == "closed" for h in closed)


def test_offer_takes_the_rank_of_its_best_passage():
    ranked = _rank_offers([("a#s2", 9.0), ("b#card", 7.0), ("a#card", 5.0)], {"a#s2": "a", "b#card": "b", "a#card": "a"})
    assert ranked == {"a": (1, 9.0, "a#s2"), "b": (2, 7.0, "b#card")}


def test_assistant_ranking_explains_its_adjustments(assistant):
    ranked = assistant.rank("Petites villes de demain : financement du chef de projet pour notre commune")
    top = ranked[0]
    assert top.offer.id == "anct-petites-villes-de-demain"
    assert "named" in top.adjustments
    assert top.final_score == pytest.approx(top.score + sum(top.adjustments.values()))
    assert [h.final_score for h in ranked] == sorted((h.final_score for h in ranked), reverse=True)


def test_closed_offers_are_dropped_unless_named(assistant):
    assert "ademe-avelo-3" not in [h.offer.id for h in assistant.rank("aménagements cyclables et vélo dans notre intercommunalité")]
    assert assistant.rank("Peut-on encore candidater à AVELO 3 ?")[0].offer.id == "ademe-avelo-3"


def test_the_exact_vector_mirror_against_chromas_hnsw_on_the_gold_questions(assistant):
    """The vector mirror (assistant.mirror) searches exactly what Chroma stores: for every gold question,
    a passage both return is at the same distance, the mirror's k-th passage is never farther than
    Chroma's (HNSW is approximate: it may miss a near passage deep in the list), and the two agree on
    the ten nearest passages for nearly every question (the first differences are deep: rank 20 or more
    on the index of 6 December 2026)."""
    import json

    from evals.bench import GOLD

    index = assistant.handle.current()
    assert index.mirror is not None
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = [c["turns"][0] for c in cases if c["kind"] == "single"]
    same_top = 0
    for question in asked:
        vector = assistant.embeddings.embed_query(index.lexicon.canonical(question))
        found = index.collection.query(query_embeddings=[vector], n_results=40, include=["distances"])
        chroma = list(zip(found["ids"][0], found["distances"][0]))
        exact = index.mirror.query(vector, 40)
        distance = dict(index.mirror.query(vector, len(index.mirror.ids)))
        assert all(abs(distance[i] - d) < 1e-5 for i, d in chroma), question
        assert all(e[1] <= c[1] + 1e-5 for e, c in zip(exact, chroma)), question
        same_top += [i for i, _ in exact[:10]] == [i for i, _ in chroma[:10]]
    assert same_top >= 0.95 * len(asked)


def test_the_mirrors_filtered_query_is_the_exact_search_among_the_offers_rows(assistant):
    """A query among some offers (Chroma's `where offer_id $in`) reads their rows only (an offer -> rows
    index): for every gold question and each partner's offers, the same passages, distances and order
    (nearest first, ties in row order) as a stable sort of every row of those offers, and Chroma's
    passages at the same distances."""
    import json

    import numpy as np

    from evals.bench import GOLD

    index = assistant.handle.current()
    mirror = index.mirror
    partners = {}
    for offer_id, offer in index.offers.items():
        partners.setdefault(offer.partner, set()).add(offer_id)
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    for question in [c["turns"][0] for c in cases if c["kind"] == "single"][:40]:
        vector = assistant.embeddings.embed_query(index.lexicon.canonical(question))
        unit = np.asarray(vector, dtype=np.float32)
        unit = unit / np.linalg.norm(unit)
        for offers in partners.values():
            rows = np.flatnonzero([o in offers for o in mirror.offers])
            distances = 1.0 - mirror.vectors[rows] @ unit
            expected = [(mirror.ids[rows[k]], float(distances[k])) for k in np.argsort(distances, kind="stable")[:15]]
            assert mirror.query(vector, 15, offers) == expected, question
            found = index.collection.query(query_embeddings=[vector], n_results=15, include=["distances"],
                                           where={"offer_id": {"$in": sorted(offers)}})
            exact = dict(mirror.query(vector, len(rows), offers))
            assert all(abs(exact[i] - d) < 1e-5 for i, d in zip(found["ids"][0], found["distances"][0])), question


def test_evidence_texts_of_a_mirror_generation_are_chromas_documents(assistant, http):
    """The passage texts of a generation with its vector mirror are read from the mirror's texts file:
    for every live passage of the corpus, Chroma's document; and /v1/search shows, for each hit, the
    document of the passage the search chose as its evidence."""
    import json

    from evals.bench import GOLD

    index = assistant.handle.current()
    assert index.mirror is not None
    stored = index.collection.get(include=["documents"])
    documents = {i.rpartition("@")[0]: d for i, d in zip(stored["ids"], stored["documents"]) if index.live_passage(i)}
    assert len(documents) == len(index.passage_ids)
    assert index.passage_texts(index.passage_ids) == documents
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    for question in [c["turns"][0] for c in cases if c["kind"] == "single"][:30]:
        shown = http.post("/v1/search", json={"query": question}).json()["results"]
        hits = assistant.search(question)
        assert [(r["offer_id"], r["best_passage"]) for r in shown] == [(h.offer.id, documents[h.passages[0]]) for h in hits]


def test_the_turns_query_vector_is_embed_querys_exactly(assistant):
    """A turn reads its query's vector from the encoder's own array (Assistant._query_vector), not through
    embed_query's list of floats: the same values, to the last bit, for every gold question."""
    import json

    import numpy as np

    from evals.bench import GOLD

    index = assistant.handle.current()
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    for question in [c["turns"][0] for c in cases if c["kind"] == "single"]:
        vector = assistant._query_vector(index, question)
        assert vector.dtype == np.float64
        assert np.array_equal(vector, np.asarray(assistant.embeddings.embed_query(index.lexicon.canonical(question)))), question
