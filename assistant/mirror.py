"""An exact copy of the index's vectors beside its generation, searched with numpy
(docs/decisions/0001-exact-vector-mirror.md).

Chroma stays the vector store of record (the indexer writes every vector there first; passage texts
and readiness are read there). While the collection is small (at most EXACT_MAX_ROWS vectors: about
18 times today's corpus), the indexer also writes every vector of the collection — the live passages
and those retired for one generation — as float32 rows of unit length with their Chroma ids and offer
ids: `<generation>.vectors.npy` and `<generation>.vectors.json` in DATA_DIR/index, before the
manifest swap. A generation with a mirror is searched through it, exactly (Chroma's HNSW graph is
approximate: on the gold questions its 40 nearest passages differ from the exact ones for 8 of 166),
by every process: the server and `aiguillage ask` give the same answers, and ask never imports
chromadb (≈ 1 s of CPU). A larger collection has no mirror and is searched by Chroma.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np

EXACT_MAX_ROWS = 10_000  # ≈ 20 MB of float32 per process and ≈ 1 ms a query at the bound


class VectorMirror:
    """Rows of unit vectors with their Chroma ids and offer ids, in the collection's cosine space."""

    def __init__(self, ids: list[str], offers: list[str], vectors: np.ndarray):
        if len(ids) != len(offers) or len(ids) != len(vectors):
            raise ValueError(f"vector mirror: {len(ids)} ids, {len(offers)} offers, {len(vectors)} vectors")
        self.ids, self.offers, self.vectors = ids, offers, vectors

    @classmethod
    def read(cls, directory: Path, generation: str) -> VectorMirror | None:
        """The generation's mirror, or None when it has none (a large collection, an older indexer) or it
        cannot be read."""
        try:
            listed = json.loads(_ids_path(directory, generation).read_text(encoding="utf-8"))
            return cls(listed["ids"], listed["offers"], np.load(_vectors_path(directory, generation), allow_pickle=False))
        except (OSError, ValueError, KeyError):
            return None

    @cached_property
    def rows_by_offer(self) -> dict[str, list[int]]:
        """offer id -> its rows, ascending: a filtered query reads the rows of its offers only."""
        rows: dict[str, list[int]] = {}
        for row, offer in enumerate(self.offers):
            rows.setdefault(offer, []).append(row)
        return rows

    def query(self, vector: list[float], n_results: int, offers: set[str] | None = None) -> list[tuple[str, float]]:
        """The n_results nearest rows, nearest first, as (Chroma id, cosine distance = 1 − cosine), among
        the rows of `offers` when given (Chroma's `where offer_id $in`); ties in row order."""
        query = np.asarray(vector, dtype=np.float32)
        query = query / (np.linalg.norm(query) or 1.0)
        if offers is None:
            distances = 1.0 - self.vectors @ query
            nearest = _nearest(distances, n_results)
            rows = nearest
        else:
            by_offer = self.rows_by_offer
            rows = np.fromiter(sorted(r for o in offers for r in by_offer.get(o, ())), dtype=np.int64)
            distances = 1.0 - self.vectors[rows] @ query
            nearest = _nearest(distances, n_results)
            rows = rows[nearest]
        return list(zip([self.ids[row] for row in rows.tolist()], distances[nearest].tolist()))


def _nearest(distances: np.ndarray, n: int) -> np.ndarray:
    """Indexes of the n smallest distances, smallest first, ties in index order: the first n of a
    stable argsort, without sorting every row (the rows at most as far as the n-th are sorted)."""
    if n >= len(distances):
        return np.argsort(distances, kind="stable")
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    nth = np.partition(distances, n - 1)[n - 1]
    closest = np.flatnonzero(distances <= nth)
    return closest[np.argsort(distances[closest], kind="stable")[:n]]


def build_mirror(
    ids: list[str], offers: list[str], fresh: dict[str, np.ndarray], previous: VectorMirror | None,
    read_stored: Callable[[list[str]], dict[str, list[float]]],
) -> VectorMirror:
    """The mirror of a collection holding `ids` (with their `offers`): each vector taken from `fresh`
    (just embedded), else from the previous generation's mirror, else read from Chroma (read_stored:
    ids -> {id: vector}, paged by the caller; a first build with a mirror, or after a large one)."""
    known = dict(zip(previous.ids, range(len(previous.ids)))) if previous is not None else {}
    stored = read_stored([i for i in ids if i not in fresh and i not in known])
    rows = np.empty((len(ids), _dimension(fresh, previous, stored)), dtype=np.float32)
    for row, stored_id in enumerate(ids):
        if stored_id in fresh:
            rows[row] = fresh[stored_id]
        elif stored_id in known:
            rows[row] = previous.vectors[known[stored_id]]
        else:
            rows[row] = stored[stored_id]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows /= np.where(norms == 0, 1.0, norms)
    return VectorMirror(ids, offers, rows)


def _dimension(fresh: dict, previous: VectorMirror | None, stored: dict) -> int:
    for vector in (*fresh.values(), *stored.values()):
        return len(vector)
    return previous.vectors.shape[1] if previous is not None and len(previous.vectors) else 0


def has_mirror(directory: Path, generation: str) -> bool:
    return _vectors_path(directory, generation).is_file() and _ids_path(directory, generation).is_file()


def write_mirror(directory: Path, generation: str, mirror: VectorMirror) -> None:
    """Both files, each replaced atomically (the manifest naming the generation is swapped after)."""
    vectors, listed = _vectors_path(directory, generation), _ids_path(directory, generation)
    partial = vectors.with_name(f"{vectors.name}.{os.getpid()}.tmp.npy")
    np.save(partial, mirror.vectors, allow_pickle=False)
    os.replace(partial, vectors)
    partial = listed.with_name(f"{listed.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"ids": mirror.ids, "offers": mirror.offers}, separators=(",", ":")), encoding="utf-8")
    os.replace(partial, listed)


MIRROR_SUFFIXES = (".vectors.npy", ".vectors.json")


def _vectors_path(directory: Path, generation: str) -> Path:
    return directory / f"{generation}{MIRROR_SUFFIXES[0]}"


def _ids_path(directory: Path, generation: str) -> Path:
    return directory / f"{generation}{MIRROR_SUFFIXES[1]}"
