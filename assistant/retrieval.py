"""Hybrid retrieval: French BM25 and dense search, fused by reciprocal rank fusion, grouped per offer.

Both retrievers rank *offers* (an offer takes the rank of its best passage), then
fused = Σ 1 / (rrf_k + rank). The breakdown is kept on each hit: agents see why an offer came up,
and the answer uses the best passages as evidence.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.bm25 import Bm25Index
from assistant.config import Settings
from assistant.derived import OfferFacets, card_facets, card_text, gc_paused, load_derived, snapshot_digest  # noqa: F401 (re-exported)
from assistant.embeddings import Embeddings
from assistant.mirror import VectorMirror
from assistant.schema import Offer, OfferTable
from assistant.text import Lexicon, analyze
from assistant.vectorstore import chroma_client
from ingest.indexer import (
    bm25_path, chroma_id, derived_path, index_dir, manifest_path, passages_path, read_manifest, snapshot_path,
)


MAX_WHERE_OFFERS = 500  # offer ids in one Chroma `where` clause, far under SQLite's variable limit


class IndexNotReady(RuntimeError):
    pass


@dataclass(frozen=True)
class SearchFilters:
    partners: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def accepts(self, offer: Offer) -> bool:
        return (
            (not self.partners or offer.partner in self.partners)
            and (not self.themes or bool(set(offer.themes) & set(self.themes)))
            and (not self.audiences or bool(set(offer.audiences) & set(self.audiences)))
            and (not self.statuses or offer.status in self.statuses)
        )

    @property
    def empty(self) -> bool:
        return not (self.partners or self.themes or self.audiences or self.statuses)


@dataclass
class OfferHit:
    offer: Offer
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None
    bm25_score: float = 0.0
    dense_similarity: float = 0.0
    passages: list[str] = field(default_factory=list)  # best evidence first
    adjustments: dict[str, float] = field(default_factory=dict)  # set by the assistant's ranking

    @property
    def final_score(self) -> float:
        return self.score + sum(self.adjustments.values())

    def breakdown(self) -> dict:
        return {
            "adjustments": self.adjustments,
            "final_score": round(self.final_score, 6),
            "bm25_rank": self.bm25_rank,
            "dense_rank": self.dense_rank,
            "bm25_score": round(self.bm25_score, 4),
            "dense_similarity": round(self.dense_similarity, 4),
            "fused_score": round(self.score, 6),
        }


class LoadedIndex:
    """One immutable generation of the index: snapshot of cards, passage order, BM25 model, collection.

    Everything is read from the generation's files, written by the indexer: nothing is re-analyzed
    and no passage text is held in memory (the few shown as evidence are read on demand from the
    generation's vector mirror when it has one, else from Chroma, which is then the only reader of it:
    a generation with a mirror is served without importing chromadb).
    The cards are parsed and validated on first use when the snapshot's digest is the one the manifest
    records (all of them now otherwise); the lexicon, the name automaton, the names as phrases, what
    ranking reads of every card (CardView) and each card's place in the snapshot are read from the
    generation's derived artefact (assistant.derived), rebuilt when missing, stale or corrupt.
    """

    def __init__(self, settings: Settings, manifest: dict):
        self.manifest = manifest
        self.collection_name = manifest["collection"]
        self.generation = manifest["generation"]
        self.hashes: dict[str, str] = manifest["offers"]
        self.stale = len(manifest.get("retired", []))  # retired passages still in the collection
        raw = snapshot_path(settings, self.generation).read_bytes()
        digest = snapshot_digest(raw)
        derived, cards = load_derived(derived_path(settings, self.generation), self.generation, raw, digest)
        view = derived.view
        self.by_theme: dict[str, list[str]] = view.by_theme
        self.facets: dict[str, OfferFacets] = view.facets
        self.active_themes: set[str] = view.active_themes
        self.name_lists: dict[str, list[str]] = view.name_lists
        self.premise_offers: list[str] = view.premise_offers
        if derived.spans is not None and manifest.get("snapshot_digest") == digest:
            self.offers: OfferTable = OfferTable.from_snapshot(raw, derived.spans)  # each card parsed when first used
        else:
            self.offers = OfferTable(cards if cards is not None else json.loads(raw))
            if manifest.get("snapshot_digest") != digest:  # edited by hand, or written by an older indexer
                for offer_id in self.offers:
                    self.offers[offer_id]  # a card that is not valid fails the load, not a turn
        self.names, self._lexicon, self.name_phrases = derived.names, derived.lexicon, derived.phrases
        self._memo: dict[str, object] = {}
        self._settings = settings
        self._collection = None
        # Searched exactly, and its passage texts read, when the indexer wrote the generation's vector
        # mirror (a collection whose vectors fit in assistant.mirror.MIRROR_MAX_BYTES).
        self.mirror = VectorMirror.read(index_dir(settings), self.generation)
        order = json.loads(passages_path(settings, self.generation).read_text(encoding="utf-8"))
        self.passage_ids: list[str] = order["ids"]
        self.passage_offer: list[str] = order["offers"]
        self.offer_of: dict[str, str] = dict(zip(self.passage_ids, self.passage_offer))
        self.bm25 = Bm25Index(bm25_path(settings, self.generation))

    @property
    def collection(self):
        """The generation's Chroma collection, opened on first use (chromadb is imported then)."""
        if self._collection is None:
            self._collection = chroma_client(self._settings).get_collection(self.collection_name)
        return self._collection

    def nearest(self, vector: list[float], n_results: int, offers: set[str] | None = None) -> list[tuple[str, float]]:
        """(stored id, cosine distance) of the n_results nearest stored passages, nearest first, among
        those of `offers` when given: from the vector mirror, exactly, when the generation has one
        (assistant.mirror), else from Chroma's HNSW index."""
        if self.mirror is not None:
            return self.mirror.query(vector, n_results, offers)
        where = {"offer_id": {"$in": sorted(offers)}} if offers is not None else None
        found = self.collection.query(query_embeddings=[vector], n_results=n_results, where=where, include=["distances"])
        return list(zip(found["ids"][0], found["distances"][0]))

    def memo(self, name: str, build):
        """A structure derived from this generation (premise table…), built once on first use."""
        if name not in self._memo:
            self._memo[name] = build()
        return self._memo[name]

    @property
    def lexicon(self) -> Lexicon:
        """The cards' own spelling of their words (assistant.text.Lexicon), read with the generation."""
        return self._lexicon

    def live_passage(self, stored_id: str) -> str | None:
        """The passage id behind a Chroma id, or None for a retired version of a changed offer."""
        passage_id, _, offer_hash = stored_id.rpartition("@")
        offer_id = self.offer_of.get(passage_id)
        return passage_id if offer_id is not None and self.hashes.get(offer_id) == offer_hash else None

    def passage_texts(self, passage_ids: list[str]) -> dict[str, str]:
        """passage id -> text (Chroma's document), for the few passages shown to a user: read from the
        vector mirror's texts file when the generation has one, else from Chroma."""
        wanted = [chroma_id(p, self.hashes[self.offer_of[p]]) for p in passage_ids if p in self.offer_of]
        if not wanted:
            return {}
        if self.mirror is not None:
            row_of = self.mirror.row_of
            wanted = [i for i in wanted if i in row_of]
            return {i.rpartition("@")[0]: text for i, text in zip(wanted, self.mirror.texts(row_of[i] for i in wanted))}
        found = self.collection.get(ids=wanted, include=["documents"])
        return {i.rpartition("@")[0]: text for i, text in zip(found["ids"], found["documents"])}

    def mirror_problem(self) -> str | None:
        """Why the generation's vector mirror is not the collection its manifest describes (every live
        passage in BM25 order, then the retired ones), in French; None when it is, or there is no mirror.
        Checked once per generation (its files are never rewritten)."""
        if self.mirror is None:
            return None
        return self.memo("mirror-problem", lambda: self.mirror.problem(
            [chroma_id(p, self.hashes[o]) for p, o in zip(self.passage_ids, self.passage_offer)]
            + list(self.manifest.get("retired", []))))


class IndexHandle:
    """Gives the current index generation, reloading when the manifest file is replaced."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._path = manifest_path(settings)
        self._lock = threading.Lock()
        self._loaded: LoadedIndex | None = None
        self._stamp: int | None = None

    def current(self) -> LoadedIndex:
        try:
            stamp = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            raise IndexNotReady("aucun index : lancez `aiguillage ingest`") from None
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    manifest = read_manifest(self._settings)
                    with gc_paused():
                        self._loaded = LoadedIndex(self._settings, manifest)
                    self._stamp = stamp
        return self._loaded

    @property
    def path(self) -> Path:
        return self._path


def corpus_lexicon(offers: Iterable[Offer]) -> Lexicon:
    """The spelling the question is read in (retrieval, scope): every string of the cards' JSON form."""
    return Lexicon(card_text(o.model_dump(mode="json")) for o in offers)


def _rank_offers(passage_order: list[tuple[str, float]], passage_offer: dict[str, str]) -> dict[str, tuple[int, float, str]]:
    """offer_id -> (rank from 1, best passage score, best passage id), first passage wins."""
    ranked: dict[str, tuple[int, float, str]] = {}
    for passage_id, score in passage_order:
        offer_id = passage_offer[passage_id]
        if offer_id not in ranked:
            ranked[offer_id] = (len(ranked) + 1, score, passage_id)
    return ranked


class HybridRetriever:
    def __init__(self, handle: IndexHandle, embeddings: Embeddings, settings: Settings):
        self.handle = handle
        self.embeddings = embeddings
        self.depth = settings.retrieval_depth
        self.rrf_k = settings.rrf_k

    def bm25_ranking(self, index: LoadedIndex, query: str, allowed: set[str] | None) -> list[tuple[str, float]]:
        tokens = [t for t in analyze(query) if t in index.bm25.vocab_dict]
        if not tokens:
            return []
        scores = index.bm25.get_scores(tokens)
        order = np.argsort(-scores)
        # The passages that score, best first (all of them come before the first that does not), read
        # as Python ints and floats at once rather than one numpy scalar at a time.
        ranked = order[: int(np.count_nonzero(scores > 0))]
        if allowed is None:
            ranked = ranked[: self.depth]
        ids, offers = index.passage_ids, index.passage_offer
        ranking = [(ids[i], score) for i, score in zip(ranked.tolist(), scores[ranked].tolist())
                   if allowed is None or offers[i] in allowed]
        return ranking[: self.depth]

    def dense_ranking(
        self, index: LoadedIndex, query_vector: list[float], allowed: set[str] | None
    ) -> list[tuple[str, float]]:
        """Nearest live passages, best first: (passage id, cosine similarity).

        Retired passages (an older version of a changed offer) are skipped, so the query asks for
        that many more. A filter on few offers goes to the search (LoadedIndex.nearest: Chroma's `where`
        clause, or the vector mirror's rows); a broad one is applied here on a deeper unfiltered query
        (a `where` listing thousands of ids would hit SQLite's variable limit).
        """
        if allowed is not None and not allowed:
            return []
        total = len(index.passage_ids) + index.stale
        n_results, where = self.depth + index.stale, None
        if allowed is not None and len(allowed) <= MAX_WHERE_OFFERS:
            where = allowed
        elif allowed is not None:
            n_results *= -(-2 * len(index.offers) // len(allowed))  # twice the expected depth
        pairs = []
        for stored_id, distance in index.nearest(query_vector, max(1, min(total, n_results)), where):
            passage_id = index.live_passage(stored_id)
            if passage_id is not None and (allowed is None or index.offer_of[passage_id] in allowed):
                pairs.append((passage_id, 1.0 - float(distance)))
        return pairs[: self.depth]

    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        limit: int = 10,
        index: LoadedIndex | None = None,
        query_vector: list[float] | None = None,
    ) -> list[OfferHit]:
        """index: the generation a turn already holds (one generation per turn), else the current one;
        query_vector: the embedding of the query in the cards' spelling when already computed (the
        scope decision reads it), else encoded here.

        Both retrievers read the query in the cards' spelling (LoadedIndex.lexicon): a question typed
        in capitals, without accents or decomposed (NFD) is searched exactly as its usual spelling.
        """
        index = index or self.handle.current()
        query = index.lexicon.canonical(query)
        filters = filters or SearchFilters()
        allowed = None if filters.empty else {i for i, o in index.offers.items() if filters.accepts(o)}
        passage_offer = index.offer_of
        bm25 = _rank_offers(self.bm25_ranking(index, query, allowed), passage_offer)
        dense = _rank_offers(
            self.dense_ranking(index, query_vector if query_vector is not None else self.embeddings.embed_query(query), allowed),
            passage_offer,
        )
        hits: list[OfferHit] = []
        offers, rrf_k = index.offers, self.rrf_k
        for offer_id in bm25.keys() | dense.keys():
            b, d = bm25.get(offer_id), dense.get(offer_id)
            if b and d:  # both retrievers: the better-ranked passage first, once
                score = 1.0 / (rrf_k + b[0]) + 1.0 / (rrf_k + d[0])
                evidence = [b[2]] if b[2] == d[2] else [b[2], d[2]] if b[0] <= d[0] else [d[2], b[2]]
                hit = OfferHit(offers[offer_id], score, b[0], d[0], b[1], d[1], evidence)
            elif b:
                hit = OfferHit(offers[offer_id], 1.0 / (rrf_k + b[0]), b[0], None, b[1], 0.0, [b[2]])
            else:
                hit = OfferHit(offers[offer_id], 1.0 / (rrf_k + d[0]), None, d[0], 0.0, d[1], [d[2]])
            hits.append(hit)
        hits.sort(key=lambda h: (-h.score, h.offer.id))
        return hits[:limit]
