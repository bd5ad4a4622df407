"""BM25 scores from an index written by bm25s (ingest/indexer.py), read without importing bm25s.

The index is bm25s's eager score matrix: for each vocabulary term, the precomputed BM25 score of the
term in each passage that contains it (CSC arrays `data`, `indices`, `indptr`, memory-mapped), plus
`vocab.index.json` (term -> id) and `params.index.json`. A query's score for a passage is the sum of
its terms' scores there: exactly what `bm25s.BM25.get_scores` computes for the Lucene, Robertson and
ATIRE variants (same float32 accumulation; tests/test_startup.py compares them). Importing bm25s
would import numba and SciPy, about half a second of start-up the server does not need.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# bm25s's BM25L and BM25+ add a « non-occurrence » score per term: not read here (the indexer uses Lucene).
SUPPORTED_METHODS = {"lucene", "robertson", "atire"}


class Bm25Index:
    """Scores of one saved bm25s index directory. `vocab_dict`: term -> id, as in bm25s."""

    def __init__(self, directory: Path):
        params = json.loads((directory / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method") not in SUPPORTED_METHODS:
            raise ValueError(f"BM25 variant {params.get('method')!r} not supported (only {sorted(SUPPORTED_METHODS)})")
        self.vocab_dict: dict[str, int] = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))
        self.num_docs: int = params["num_docs"]
        self.dtype = np.dtype(params.get("dtype", "float32"))
        self.int_dtype = np.dtype(params.get("int_dtype", "int32"))
        self.data = np.load(directory / "data.csc.index.npy", mmap_mode="r")
        self.indices = np.load(directory / "indices.csc.index.npy", mmap_mode="r")
        self.indptr = np.load(directory / "indptr.csc.index.npy", mmap_mode="r")

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """(num_docs,) scores of the query's terms (list of analysed tokens; unknown ones are ignored)."""
        ids = np.asarray([self.vocab_dict[t] for t in tokens if t in self.vocab_dict], dtype=self.int_dtype)
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for start, end in zip(self.indptr[ids], self.indptr[ids + 1]):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores
