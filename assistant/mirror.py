"""An exact copy of the index's vectors and passage texts beside its generation, searched with numpy
(docs/decisions/0001-exact-vector-mirror.md, bound amended by docs/decisions/0002-mirror-up-to-the-target.md).

Chroma stays the vector store of record: the indexer writes every vector there first. While the
collection's vectors fit in MIRROR_MAX_BYTES of float32 (81,920 vectors of 512 dimensions: 1.4 times
the 58,400 passages of 10,600 offers), the indexer also writes, before the manifest swap,
every row of the collection — the live passages in BM25 order, then those retired for one generation —
into three files of DATA_DIR/index:

- `<generation>.vectors.npy`: float32 rows of unit length (read memory-mapped: a process reads no
  more of it than a query does, and several workers share it through the page cache);
- `<generation>.vectors.json`: {"ids": [Chroma id], "offers": [offer id]} of each row;
- `<generation>.texts.bin`: each row's passage text (Chroma's document), read on demand for the few
  passages shown (format: _TEXTS_MAGIC, uint64 count n, n + 1 uint64 offsets into the UTF-8 data that
  follows, all little-endian).

A generation with a mirror is searched through it, exactly (Chroma's HNSW graph is approximate: on
the gold questions its 40 nearest passages differ from the exact ones for 8 of 166), and served by
every process without importing chromadb (≈ 0.5 s of CPU to import, ≈ 0.75 s to load its HNSW index
at 58,400 passages): the server and `aiguillage ask` give the same answers. A larger collection, or a
generation built by an older indexer, has no mirror and is searched and read through Chroma.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

import numpy as np

# Bytes of float32 vectors a mirror may hold: 160 MiB, 81,920 vectors of 512 dimensions (the bundled
# encoder's). Memory is not what binds (the mapped vectors are shared by the workers; the server's RSS
# stays under 800 MB with them), time is: a query reads every vector, memory-bound, ≈ 4-8 ms of CPU at
# 58,400 x 512 (120 MB), ≈ 10-12 ms at the bound, ≈ 13-16 ms at 200 MiB (one BLAS thread, 2 shared
# cores, load 3-4, 6 December 2026): at the bound a search (≈ 2.5 ms besides) stays under the 15 ms p50
# of issue 15. Above it, Chroma's HNSW index (≈ 1.5 ms, approximate) is searched instead
# (docs/decisions/0002-mirror-up-to-the-target.md).
MIRROR_MAX_BYTES = 160 * 2**20
_TEXTS_MAGIC = b"AIGTXT01"
_HEAD = struct.Struct("<8sQ")  # magic, count
_OFFSETS = struct.Struct("<QQ")  # a row's start and end in the data


def fits(rows: int, dimension: int) -> bool:
    """Whether `rows` vectors of `dimension` float32 fit in a mirror (MIRROR_MAX_BYTES)."""
    return rows * dimension * 4 <= MIRROR_MAX_BYTES


class VectorMirror:
    """Rows of unit vectors with their Chroma ids and offer ids, in the collection's cosine space, and
    (when read from a generation) the file of their passage texts."""

    def __init__(self, ids: list[str], offers: list[str], vectors: np.ndarray, texts: Path | None = None):
        if len(ids) != len(offers) or len(ids) != len(vectors):
            raise ValueError(f"vector mirror: {len(ids)} ids, {len(offers)} offers, {len(vectors)} vectors")
        self.ids, self.offers, self.vectors, self.texts_path = ids, offers, vectors, texts

    @classmethod
    def read(cls, directory: Path, generation: str) -> VectorMirror | None:
        """The generation's mirror (vectors memory-mapped, texts left on disk), or None when it has none (a
        large collection, an older indexer) or it cannot be read."""
        if not has_mirror(directory, generation):
            return None
        try:
            listed = json.loads(_ids_path(directory, generation).read_text(encoding="utf-8"))
            vectors = np.asarray(np.load(_vectors_path(directory, generation), mmap_mode="r", allow_pickle=False))
            return cls(listed["ids"], listed["offers"], vectors, _texts_path(directory, generation))
        except (OSError, ValueError, KeyError):
            return None

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Chroma id -> row."""
        return dict(zip(self.ids, range(len(self.ids))))

    @cached_property
    def rows_by_offer(self) -> dict[str, list[int]]:
        """offer id -> its rows, ascending: a filtered query reads the rows of its offers only."""
        rows: dict[str, list[int]] = {}
        for row, offer in enumerate(self.offers):
            rows.setdefault(offer, []).append(row)
        return rows

    def warm(self) -> None:
        """Read every vector once (the pages of the mapped file, outside the interpreter lock) and build
        the row indexes, so that the first query pays for neither (≈ 0.05 s of CPU at 58,400 rows)."""
        if len(self.vectors):
            self.vectors.sum(axis=0)
        _ = self.row_of, self.rows_by_offer

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

    def text_count(self) -> int:
        """How many texts the texts file holds (OSError, ValueError when it cannot be read or its size is
        not the one its last offset gives)."""
        with open(self.texts_path, "rb") as handle:
            count = _read_head(handle)
            handle.seek(_HEAD.size + 8 * count)
            last = handle.read(8)
            if len(last) != 8:
                raise ValueError("texts file cut short")
            (end,) = struct.unpack("<Q", last)
            size = handle.seek(0, os.SEEK_END)
        if size != _HEAD.size + 8 * (count + 1) + end:
            raise ValueError(f"{size} bytes instead of {_HEAD.size + 8 * (count + 1) + end}")
        return count

    def texts(self, rows: Iterable[int]) -> list[str]:
        """The passage texts of `rows`, read from the texts file (a few reads per row)."""
        found = []
        with open(self.texts_path, "rb") as handle:
            count = _read_head(handle)
            data = _HEAD.size + 8 * (count + 1)
            for row in rows:
                if not 0 <= row < count:
                    raise IndexError(f"texts: row {row} of {count}")
                handle.seek(_HEAD.size + 8 * row)
                start, end = _OFFSETS.unpack(handle.read(_OFFSETS.size))
                handle.seek(data + start)
                found.append(handle.read(end - start).decode("utf-8"))
        return found

    def all_texts(self) -> list[bytes]:
        """Every row's text, UTF-8 encoded (read whole: for the next build)."""
        raw = self.texts_path.read_bytes()
        count = _count(raw)
        offsets = np.frombuffer(raw, dtype="<u8", count=count + 1, offset=_HEAD.size).tolist()
        data = memoryview(raw)[_HEAD.size + 8 * (count + 1):]
        return [bytes(data[start:end]) for start, end in zip(offsets, offsets[1:])]

    def problem(self, expected_ids: list[str]) -> str | None:
        """Why this mirror is not the collection a manifest describes (its ids: the live passages in BM25
        order, then the retired ones), in French, or None."""
        if len(self.ids) != len(expected_ids):
            return f"copie exacte de {len(self.ids)} vecteurs, {len(expected_ids)} attendus"
        try:
            texts = self.text_count()
        except (OSError, ValueError) as exc:
            return f"textes des passages illisibles ({exc})"
        if texts != len(self.ids):
            return f"{texts} textes de passages pour {len(self.ids)} vecteurs"
        if self.ids != expected_ids:
            return "la copie exacte des vecteurs ne correspond pas aux passages de la génération"
        return None


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


def _read_head(handle) -> int:
    return _count(handle.read(_HEAD.size))


def _count(head: bytes) -> int:
    """The number of texts a texts file's first bytes announce (ValueError when it is not one)."""
    if len(head) < _HEAD.size:
        raise ValueError("texts file cut short")
    magic, count = _HEAD.unpack_from(head)
    if magic != _TEXTS_MAGIC:
        raise ValueError("not a texts file")
    return count


def build_mirror(
    ids: list[str], offers: list[str], fresh: dict[str, tuple[np.ndarray, str]], previous: VectorMirror | None,
    read_stored: Callable[[list[str]], dict[str, tuple[list[float], str]]],
) -> tuple[VectorMirror, list[bytes]]:
    """The mirror of a collection holding `ids` (with their `offers`) and the UTF-8 texts of its rows:
    each row taken from `fresh` (id -> (vector, text) just embedded), else from the previous
    generation's mirror, else read from Chroma (read_stored: ids -> {id: (vector, document)}, paged by
    the caller; a first build with a mirror, or after a large one). Rows copied from the previous
    mirror are copied as arrays (≈ 0.1 s at 58,400 rows of 512 dimensions)."""
    known = previous.row_of if previous is not None else {}
    source = np.fromiter((-1 if i in fresh else known.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
    stored = read_stored([i for i, s in zip(ids, source.tolist()) if s < 0 and i not in fresh])
    rows = np.empty((len(ids), _dimension(fresh, previous, stored)), dtype=np.float32)
    copied = source >= 0
    if copied.any():
        rows[copied] = previous.vectors[source[copied]]
    earlier = previous.all_texts() if copied.any() else []
    texts, added = [], []
    for row, (stored_id, origin) in enumerate(zip(ids, source.tolist())):
        if origin >= 0:
            texts.append(earlier[origin])
            continue
        vector, text = fresh[stored_id] if stored_id in fresh else stored[stored_id]
        rows[row] = vector
        added.append(row)
        texts.append(text.encode("utf-8"))
    if added:
        new = rows[added]
        norms = np.linalg.norm(new, axis=1, keepdims=True)
        rows[added] = new / np.where(norms == 0, 1.0, norms)
    return VectorMirror(ids, offers, rows), texts


def _dimension(fresh: dict, previous: VectorMirror | None, stored: dict) -> int:
    for vector, _ in (*fresh.values(), *stored.values()):
        return len(vector)
    return previous.vectors.shape[1] if previous is not None and len(previous.vectors) else 0


def has_mirror(directory: Path, generation: str) -> bool:
    return all(path.is_file() for path in (_vectors_path(directory, generation), _ids_path(directory, generation),
                                            _texts_path(directory, generation)))


def write_mirror(directory: Path, generation: str, mirror: VectorMirror, texts: list[bytes]) -> None:
    """The three files, each replaced atomically (the manifest naming the generation is swapped after)."""
    if len(texts) != len(mirror.ids):
        raise ValueError(f"vector mirror: {len(texts)} texts for {len(mirror.ids)} rows")
    vectors, listed, written = _vectors_path(directory, generation), _ids_path(directory, generation), _texts_path(directory, generation)
    partial = vectors.with_name(f"{vectors.name}.{os.getpid()}.tmp.npy")
    np.save(partial, mirror.vectors, allow_pickle=False)
    os.replace(partial, vectors)
    partial = listed.with_name(f"{listed.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"ids": mirror.ids, "offers": mirror.offers}, separators=(",", ":")), encoding="utf-8")
    os.replace(partial, listed)
    offsets = np.zeros(len(texts) + 1, dtype="<u8")
    offsets[1:] = np.cumsum([len(t) for t in texts], dtype=np.uint64)
    partial = written.with_name(f"{written.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as handle:
        handle.write(_HEAD.pack(_TEXTS_MAGIC, len(texts)))
        handle.write(offsets.tobytes())
        handle.write(b"".join(texts))
    os.replace(partial, written)


MIRROR_SUFFIXES = (".vectors.npy", ".vectors.json", ".texts.bin")


def _vectors_path(directory: Path, generation: str) -> Path:
    return directory / f"{generation}{MIRROR_SUFFIXES[0]}"


def _ids_path(directory: Path, generation: str) -> Path:
    return directory / f"{generation}{MIRROR_SUFFIXES[1]}"


def _texts_path(directory: Path, generation: str) -> Path:
    return directory / f"{generation}{MIRROR_SUFFIXES[2]}"
