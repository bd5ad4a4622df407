"""Hybrid retrieval: French BM25 and dense search, fused by reciprocal rank fusion, grouped per offer.

Both retrievers rank *offers* (an offer takes the rank of its best passage), then
fused = Σ 1 / (rrf_k + rank). The breakdown is kept on each hit: agents see why an offer came up,
and the answer uses the best passages as evidence.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.schema import Offer
from assistant.text import analyze
from assistant.vectorstore import chroma_client
from ingest.indexer import manifest_path, read_manifest, snapshot_path


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
    """One immutable generation of the index: snapshot of cards, passages, BM25 model, collection."""

    def __init__(self, settings: Settings, manifest: dict):
        self.manifest = manifest
        self.collection_name = manifest["collection"]
        snapshot = json.loads(snapshot_path(settings, self.collection_name).read_text(encoding="utf-8"))
        self.offers = {offer_id: Offer.model_validate(card) for offer_id, card in snapshot.items()}
        self.collection = chroma_client(settings).get_collection(self.collection_name)
        stored = self.collection.get(include=["documents", "metadatas"])
        self.passage_ids: list[str] = stored["ids"]
        self.passage_texts: list[str] = stored["documents"]
        self.passage_offer: list[str] = [m["offer_id"] for m in stored["metadatas"]]
        self.passage_text_by_id = dict(zip(self.passage_ids, self.passage_texts))
        self.bm25 = bm25s.BM25()
        self.bm25.index([analyze(text) or ["∅"] for text in self.passage_texts], show_progress=False)


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
                    self._loaded = LoadedIndex(self._settings, manifest)
                    self._stamp = stamp
        return self._loaded

    @property
    def path(self) -> Path:
        return self._path


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
        ranking = []
        for i in order:
            if scores[i] <= 0:
                break
            if allowed is None or index.passage_offer[i] in allowed:
                ranking.append((index.passage_ids[i], float(scores[i])))
            if len(ranking) >= self.depth:
                break
        return ranking

    def dense_ranking(
        self, index: LoadedIndex, query_vector: list[float], allowed: set[str] | None
    ) -> list[tuple[str, float]]:
        n_results = len(index.passage_ids) if allowed is not None else min(self.depth, len(index.passage_ids))
        where = {"offer_id": {"$in": sorted(allowed)}} if allowed is not None else None
        if allowed is not None and not allowed:
            return []
        found = index.collection.query(
            query_embeddings=[query_vector], n_results=max(1, n_results), where=where, include=["distances"]
        )
        pairs = [(pid, 1.0 - float(d)) for pid, d in zip(found["ids"][0], found["distances"][0])]
        return pairs[: self.depth]

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 10) -> list[OfferHit]:
        index = self.handle.current()
        filters = filters or SearchFilters()
        allowed = None if filters.empty else {i for i, o in index.offers.items() if filters.accepts(o)}
        passage_offer = dict(zip(index.passage_ids, index.passage_offer))
        bm25 = _rank_offers(self.bm25_ranking(index, query, allowed), passage_offer)
        dense = _rank_offers(
            self.dense_ranking(index, self.embeddings.embed_query(query), allowed), passage_offer
        )
        hits: list[OfferHit] = []
        for offer_id in set(bm25) | set(dense):
            b, d = bm25.get(offer_id), dense.get(offer_id)
            score = sum(1.0 / (self.rrf_k + r[0]) for r in (b, d) if r)
            evidence = [r[2] for r in sorted((r for r in (b, d) if r), key=lambda r: r[0])]
            hits.append(
                OfferHit(
                    offer=index.offers[offer_id],
                    score=score,
                    bm25_rank=b[0] if b else None,
                    dense_rank=d[0] if d else None,
                    bm25_score=b[1] if b else 0.0,
                    dense_similarity=d[1] if d else 0.0,
                    passages=list(dict.fromkeys(evidence)),
                )
            )
        hits.sort(key=lambda h: (-h.score, h.offer.id))
        return hits[:limit]
