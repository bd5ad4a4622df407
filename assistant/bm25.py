"""BM25 scores from an index in bm25s's saved layout, built and read without importing bm25s.

The index is bm25s's eager score matrix: for each vocabulary term, the precomputed BM25 score of the
term in each passage that contains it (CSC arrays `data`, `indices`, `indptr`, memory-mapped), plus
`vocab.index.json` (term -> id) and `params.index.json`. A query's score for a passage is the sum of
its terms' scores there: exactly what `bm25s.BM25.get_scores` computes for the Lucene, Robertson and
ATIRE variants (same float32 accumulation; tests/test_startup.py compares them). Importing bm25s
would import numba and SciPy, about half a second of start-up the server (and an ingest) does not need.
`bm25_arrays` builds that matrix with numpy and `save_bm25` writes it in bm25s's layout (bm25s.BM25.load
reads it): the indexer rebuilds the model of 58,000 passages from cached tokens in a fraction of
bm25s's own `index` (2.2 s at 100x, its per-document Python loops).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

# bm25s's BM25L and BM25+ add a « non-occurrence » score per term: not read here (the indexer uses Lucene).
SUPPORTED_METHODS = {"lucene", "robertson", "atire"}
# bm25s.BM25()'s defaults, the variant every index here uses.
PARAMS = {"k1": 1.5, "b": 0.75, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
          "int_dtype": "int32", "backend": "numpy"}


def bm25_arrays(tokens: list[list[str]]) -> dict:
    """Lucene BM25 (k1 1.5, b 0.75, float32) of these documents, as bm25s.BM25().index(tokens) builds
    it: {"vocab": term -> id, "data", "indices", "indptr" (CSC by term), "num_docs"}.

    Same score for every term and document as bm25s (tests/test_catalogue.py and tests/test_startup.py
    compare them): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) with math.log as bm25s, term part
    tf / (k1 × (1 - b + b × len / avg len) + tf) in float64 then float32; vocabulary in first-seen
    order plus bm25s's empty token "" (bm25s's own order is a set's, arbitrary)."""
    k1, b, dtype = PARAMS["k1"], PARAMS["b"], np.dtype(PARAMS["dtype"])
    count = len(tokens)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(t for doc in tokens for t in doc))}
    vocab.setdefault("", len(vocab))
    lengths = np.fromiter((len(doc) for doc in tokens), dtype=np.int64, count=count)
    ids = np.fromiter((vocab[t] for doc in tokens for t in doc), dtype=np.int64, count=int(lengths.sum()))
    docs = np.repeat(np.arange(count, dtype=np.int64), lengths)
    pairs, tf = np.unique(ids * count + docs, return_counts=True)  # by token, then by document
    token_of, doc_of = pairs // count, pairs % count
    df = np.bincount(token_of, minlength=len(vocab))
    idf = np.zeros(len(vocab), dtype=dtype)
    for token, frequency in enumerate(df.tolist()):
        if frequency:
            idf[token] = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
    tf = tf.astype(dtype)
    norm = k1 * ((1 - b) + b * lengths[doc_of] / lengths.mean())
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return {"vocab": vocab, "data": (idf[token_of] * (tf / (norm + tf))).astype(dtype),
            "indices": doc_of.astype(PARAMS["int_dtype"]), "indptr": indptr, "num_docs": count}


def save_bm25(directory: Path, tokens: list[list[str]]) -> None:
    """Write the BM25 model of these documents (bm25_arrays) into `directory`, in bm25s's layout,
    replacing it whole (written beside it, then renamed)."""
    arrays = bm25_arrays(tokens)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("data", "indices", "indptr"):
        np.save(tmp / f"{name}.csc.index.npy", arrays[name])
    (tmp / "vocab.index.json").write_text(json.dumps(arrays["vocab"], ensure_ascii=False), encoding="utf-8")
    params = {**PARAMS, "num_docs": arrays["num_docs"]}
    (tmp / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


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
