"""The corpus is the product's knowledge: counts, sources, and every card findable by its own title."""

from collections import Counter

import pytest

from assistant.retrieval import HybridRetriever, IndexHandle
from ingest.corpus import load_corpus, quality_warnings, source_problems
from tests.conftest import CORPUS

MINIMUM_PER_PARTNER = {"anct": 14, "ademe": 13, "cerema": 13, "anru": 6, "anah": 14, "banque-des-territoires": 14}
OFFICIAL_DOMAINS = (".gouv.fr", "ademe.fr", "cerema.fr", "anru.fr", "anah.fr", "banquedesterritoires.fr",
                    "caissedesdepots.fr", "senat.fr", "assemblee-nationale.fr", "vie-publique.fr", "beta.gouv.fr",
                    "territoiresentransitions.fr", "legifrance.gouv.fr", "service-public.fr")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS)


def test_corpus_has_the_required_offers_per_partner(corpus):
    counts = Counter(o.partner for o in corpus.offers.values())
    assert len(corpus.offers) >= 95
    for partner, minimum in MINIMUM_PER_PARTNER.items():
        assert counts[partner] >= minimum, partner
    assert counts["etat"] >= 5
    assert all(o.operator for o in corpus.offers.values() if o.partner == "etat")


def test_corpus_passes_editorial_checks(corpus):
    errors, _ = quality_warnings(corpus)
    assert errors == []


def test_every_card_cites_an_official_page(corpus):
    for offer in corpus.offers.values():
        hosts = [u.host for u in offer.source_urls]
        assert any(h.endswith(OFFICIAL_DOMAINS) for h in hosts), (offer.id, hosts)


def test_a_bare_home_page_is_not_a_source(corpus):
    detr = corpus.offers["etat-detr"]  # a préfecture offer: a home page says nothing about it
    for home in ["https://www.banquedesterritoires.fr/", "https://www.calvados.gouv.fr", "https://www.anah.gouv.fr/"]:
        card = detr.model_copy(update={"source_urls": [*detr.source_urls, home]})
        problems = source_problems(card, "etat-detr.yaml")
        assert [p.field for p in problems] == ["source_urls"] and home.rstrip("/") in problems[0].reason
    assert source_problems(detr, "etat-detr.yaml") == []
    # An online service's own site is the offer's page: its home page is accepted as a source.
    platform = corpus.offers["cerema-cartofriches"]
    assert str(platform.access.url) in map(str, platform.source_urls)
    assert source_problems(platform, "cerema-cartofriches.yaml") == []


def test_the_official_page_link_is_the_offers_own_page(corpus):
    fonds_chaleur = corpus.offers["ademe-fonds-chaleur"]  # applications go through the ADEME portal
    assert fonds_chaleur.url == str(fonds_chaleur.source_urls[0]) != str(fonds_chaleur.access.url)
    assert all(o.url == str(o.source_urls[0]) for o in corpus.offers.values())


def test_closed_offers_are_kept_with_their_status(corpus):
    assert corpus.offers["ademe-avelo-3"].status == "closed"
    assert corpus.offers["cerema-programme-national-ponts"].status == "closed"


def test_every_partner_has_a_card_saying_how_to_reach_it(corpus):
    assert set(corpus.partners) >= set(MINIMUM_PER_PARTNER)


def test_each_card_is_found_first_by_its_own_title(assistant, corpus):
    misses = [o.id for o in corpus.offers.values() if assistant.rank(o.title)[0].offer.id != o.id]
    assert misses == []


def test_hybrid_retrieval_alone_finds_almost_every_title(settings, embeddings, indexed, corpus):
    retriever = HybridRetriever(IndexHandle(settings), embeddings, settings)
    misses = [o.id for o in corpus.offers.values() if retriever.search(o.title, limit=1)[0].offer.id != o.id]
    assert len(misses) <= 3, misses
