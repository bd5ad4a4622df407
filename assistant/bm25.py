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
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# bm25s's BM25L and BM25+ add a « non-occurrence » score per term: not read here (the indexer uses Lucene).
SUPPORTED_METHODS = {"lucene", "robertson", "atire"}
# bm25s.BM25()'s defaults, the variant every index here uses.
PARAMS = {"k1": 1.5, "b": 0.75, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
          "int_dtype": "int32", "backend": "numpy"}


def bm25_arrays(tokens: list[list[str]]) -> dict:
    """Lucene BM25 (k1 1.5, b 0.75, float32) of these documents, as bm25s.BM25().index(tokens) builds
    it: {"vocab": term -> id, "data", "indices", "indptr" (CSC by term), "num_docs"}, plus what it is
    computed from, for updated_bm25_arrays: "tf" (the term's count in the document, beside "data")
    and "lengths" (tokens per document).

    Same score for every term and document as bm25s (tests/test_catalogue.py and tests/test_startup.py
    compare them): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) with math.log as bm25s, term part
    tf / (k1 × (1 - b + b × len / avg len) + tf) in float64 then float32; vocabulary in first-seen
    order plus bm25s's empty token "" (bm25s's own order is a set's, arbitrary)."""
    count = len(tokens)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(t for doc in tokens for t in doc))}
    vocab.setdefault("", len(vocab))
    lengths = np.fromiter((len(doc) for doc in tokens), dtype=np.int64, count=count)
    ids = np.fromiter((vocab[t] for doc in tokens for t in doc), dtype=np.int64, count=int(lengths.sum()))
    docs = np.repeat(np.arange(count, dtype=np.int64), lengths)
    pairs, tf = np.unique(ids * count + docs, return_counts=True)  # by token, then by document
    return _scored(vocab, pairs // count, pairs % count, tf, lengths)


def updated_bm25_arrays(previous: dict, kept: np.ndarray, added: Mapping[int, list[str]]) -> dict:
    """The arrays bm25_arrays gives for a new list of documents, from those of the previous list
    (`previous`, as bm25_arrays or read_bm25_counts return them) without reading its documents again.

    kept: for each new document, its position in the previous list, or -1 for a new one, whose tokens
    are added[position]. Same score for every term and document as bm25_arrays of the new list
    (tests/test_ingest.py); the vocabulary keeps the previous ids' order, new terms after, terms no
    longer in any document dropped (bm25s's "" kept). Cost: numpy over the previous postings plus the
    added documents' tokens, not a pass over every token of the catalogue."""
    count = len(kept)
    old_terms = np.repeat(np.arange(len(previous["indptr"]) - 1, dtype=np.int64), np.diff(previous["indptr"]))
    new_position = np.full(previous["num_docs"], -1, dtype=np.int64)
    stays = np.flatnonzero(kept >= 0)
    new_position[kept[stays]] = stays
    docs = new_position[np.asarray(previous["indices"], dtype=np.int64)]
    live = docs >= 0
    terms, docs, tf = [old_terms[live]], [docs[live]], [np.asarray(previous["tf"], dtype=np.int64)[live]]
    lengths = np.zeros(count, dtype=np.int64)
    lengths[stays] = np.asarray(previous["lengths"], dtype=np.int64)[kept[stays]]
    vocab = dict(previous["vocab"])
    for position, doc in added.items():
        counted = Counter(doc)
        for term in counted:
            vocab.setdefault(term, len(vocab))
        terms.append(np.fromiter((vocab[t] for t in counted), dtype=np.int64, count=len(counted)))
        docs.append(np.full(len(counted), position, dtype=np.int64))
        tf.append(np.fromiter(counted.values(), dtype=np.int64, count=len(counted)))
        lengths[position] = len(doc)
    terms, docs, tf = np.concatenate(terms), np.concatenate(docs), np.concatenate(tf)
    used = np.bincount(terms, minlength=len(vocab)) > 0
    used[vocab[""]] = True
    renumbered = np.cumsum(used) - 1
    terms_by_id = [""] * len(vocab)
    for term, i in vocab.items():
        terms_by_id[i] = term
    vocab = {terms_by_id[i]: int(renumbered[i]) for i in np.flatnonzero(used).tolist()}
    terms = renumbered[terms]
    # By token, then by document: the previous postings are in that order already (both numberings
    # keep it), the added ones at the end; a stable sort merges such runs in linear time.
    order = np.argsort(terms * count + docs, kind="stable")
    return _scored(vocab, terms[order], docs[order], tf[order], lengths)


def _scored(vocab: dict[str, int], token_of: np.ndarray, doc_of: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> dict:
    """The CSC score arrays of postings sorted by token then document (token_of, doc_of, their count tf)."""
    k1, b, dtype = PARAMS["k1"], PARAMS["b"], np.dtype(PARAMS["dtype"])
    count = len(lengths)
    df = np.bincount(token_of, minlength=len(vocab))
    idf = np.zeros(len(vocab), dtype=dtype)
    for token, frequency in enumerate(df.tolist()):
        if frequency:
            idf[token] = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
    norm = k1 * ((1 - b) + b * lengths[doc_of] / lengths.mean())
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    term_part = tf.astype(dtype)
    return {"vocab": vocab, "data": (idf[token_of] * (term_part / (norm + term_part))).astype(dtype),
            "indices": doc_of.astype(PARAMS["int_dtype"]), "indptr": indptr, "num_docs": count,
            "tf": tf.astype(np.int32), "lengths": lengths.astype(np.int32)}


COUNTS = ("tf", "lengths")  # beside bm25s's files, for updated_bm25_arrays; bm25s ignores them


def save_bm25(directory: Path, tokens: list[list[str]] | None = None, arrays: dict | None = None) -> None:
    """Write the BM25 model of these documents (bm25_arrays), or these arrays, into `directory`, in
    bm25s's layout plus the counts it is computed from, replacing it whole (written beside it, then renamed)."""
    arrays = arrays if arrays is not None else bm25_arrays(tokens)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("data", "indices", "indptr"):
        np.save(tmp / f"{name}.csc.index.npy", arrays[name])
    for name in COUNTS:
        np.save(tmp / f"{name}.counts.npy", arrays[name])
    (tmp / "vocab.index.json").write_text(json.dumps(arrays["vocab"], ensure_ascii=False), encoding="utf-8")
    params = {**PARAMS, "num_docs": arrays["num_docs"]}
    (tmp / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def read_bm25_counts(directory: Path) -> dict | None:
    """The arrays save_bm25 wrote (for updated_bm25_arrays), or None when the model has no counts
    (written by bm25s or an older indexer), is not this variant, or cannot be read."""
    try:
        params = json.loads((directory / "params.index.json").read_text(encoding="utf-8"))
        if {k: params.get(k) for k in PARAMS} != PARAMS:
            return None
        arrays = {name: np.load(directory / f"{name}.csc.index.npy") for name in ("data", "indices", "indptr")}
        arrays.update({name: np.load(directory / f"{name}.counts.npy") for name in COUNTS})
        arrays["vocab"] = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    arrays["num_docs"] = params["num_docs"]
    consistent = (len(arrays["lengths"]) == arrays["num_docs"] and len(arrays["indptr"]) == len(arrays["vocab"]) + 1
                  and len(arrays["tf"]) == len(arrays["indices"]) == len(arrays["data"]) == arrays["indptr"][-1])
    return arrays if consistent else None


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
        # Memory-mapped, read as plain arrays: numpy.memmap's Python-level slicing cost more than the
        # scoring itself (a query slices each term's column).
        self.data = np.asarray(np.load(directory / "data.csc.index.npy", mmap_mode="r"))
        self.indices = np.asarray(np.load(directory / "indices.csc.index.npy", mmap_mode="r"))
        self.indptr = np.asarray(np.load(directory / "indptr.csc.index.npy", mmap_mode="r"))

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """(num_docs,) scores of the query's terms (list of analysed tokens; unknown ones are ignored)."""
        ids = np.asarray([self.vocab_dict[t] for t in tokens if t in self.vocab_dict], dtype=self.int_dtype)
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for start, end in zip(self.indptr[ids].tolist(), self.indptr[ids + 1].tolist()):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores
