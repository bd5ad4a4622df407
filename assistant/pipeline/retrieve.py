"""Stage 3, retrieve: candidate offers for the query, from hybrid search and from the themes named.

Input: the query and the themes understood. Output: unranked `OfferHit`s (fused RRF score set).
"""

from __future__ import annotations

from assistant.offer_names import Named
from assistant.pipeline.rank import themed_pool
from assistant.retrieval import HybridRetriever, LoadedIndex, OfferHit

NAMED_NONE = Named(frozenset(), frozenset())

SEARCH_DEPTH = 30  # offers fused before relevance gating; themed offers further down can still surface
MIN_DENSE_SIMILARITY = 0.30
MIN_BM25_SCORE = 3.0


def retrieve(
    retriever: HybridRetriever, index: LoadedIndex, query: str, themes: list[str], query_vector: list[float] | None = None,
    need: str | None = None, named: Named = NAMED_NONE,
) -> list[OfferHit]:
    """Relevant hits of the hybrid search, then the offers of a named theme that neither retriever saw.
    query_vector: the query's embedding when an earlier stage already computed it; need and named:
    the asker's need and the offers the message names, which decide which themed offers can rank."""
    hits = [h for h in retriever.search(query, limit=SEARCH_DEPTH, index=index, query_vector=query_vector) if relevant(h, themes)]
    # Offers carrying a theme the question names are candidates even if neither retriever saw
    # them (short titles such as "Pose de 2 citernes DECI"); with no fused score they rank last.
    # Looked up through the generation's theme index, not by scanning the catalogue, and only
    # those that can reach the candidates (rank.themed_pool) become hits.
    seen = {h.offer.id for h in hits}
    themed = sorted({i for t in themes for i in index.by_theme.get(t, ())} - seen)
    return hits + [OfferHit(offer=index.offers[i], score=0.0) for i in themed_pool(themed, index.facets, need, named)]


def relevant(hit: OfferHit, themes: list[str]) -> bool:
    """Below both floors an offer is noise, unless it carries a theme the question names."""
    if hit.dense_similarity >= MIN_DENSE_SIMILARITY or hit.bm25_score >= MIN_BM25_SCORE:
        return True
    return bool(set(hit.offer.themes) & set(themes))
