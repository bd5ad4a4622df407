"""Features of the scope classifier: the query embedding, then hashed character n-grams.

Text is folded (lowercase, no accents, typographic apostrophe → ') before the n-grams, so that
« ÉLECTIONS », « elections » and « élections » give the same n-gram vector. The embedding is the
vector the retriever computes for the query (USE multilingual: 512 floats, unit norm); one more
feature says whether the text names an offer of the corpus (a corpus fact, not a word list).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import chain

import mmh3
import numpy as np

from assistant.text import WORD_MEMO, fold, word_char_grams

N_FEATURES = 2**15  # hashed n-gram buckets
NAMED_WEIGHT = 1.0  # the « names an offer of the corpus » feature
NGRAMS = (2, 5)
_SPACES = re.compile(r"\s+")


def folded(text: str) -> str:
    """'  Élections\nMUNICIPALES ’' -> 'elections municipales ''"""
    return _SPACES.sub(" ", fold(text).replace("’", "'")).strip()


def gram_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices sorted, float32 values L2-normalised) of the folded text's hashed character
    n-grams: scikit-learn's HashingVectorizer(analyzer="char_wb", ngram_range=NGRAMS,
    n_features=N_FEATURES, alternate_sign=False, norm="l2", preprocessor=folded) computed without
    scikit-learn (MurmurHash3 of the UTF-8 gram, seed 0, |h| mod N_FEATURES; counts summed; norm in
    float64), so the server neither imports it nor pays its per-call checks. Same values: tested."""
    buckets = np.fromiter(chain.from_iterable(map(_word_buckets, folded(text).split())), dtype=np.int64)
    indices, counts = np.unique(buckets, return_counts=True)
    values = counts.astype(np.float64)
    norm = np.sqrt(np.sum(values * values))
    return indices.astype(np.int32), (values / norm if norm else values).astype(np.float32)


@lru_cache(maxsize=WORD_MEMO)
def _word_buckets(word: str) -> tuple[int, ...]:
    """|MurmurHash3| mod N_FEATURES of each char_wb n-gram of one folded word, in order; memoised per
    word (no gram spans two words: a text's buckets are its words')."""
    return tuple(abs(mmh3.hash(gram)) % N_FEATURES for gram in word_char_grams(word, NGRAMS))


def char_grams(texts: list[str]):
    """(len(texts), N_FEATURES) scipy.sparse CSR, each row L2-normalised; stateless (hashing).
    For training (scipy is imported here, not by the server)."""
    from scipy import sparse

    rows = [gram_counts(text) for text in texts]
    indptr = np.cumsum([0, *(len(indices) for indices, _ in rows)])
    indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, dtype=np.int32)
    values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return sparse.csr_matrix((values, indices, indptr), shape=(len(texts), N_FEATURES), dtype=np.float32)


def dense_part(vectors: np.ndarray | None, named: np.ndarray, embedding_weight: float) -> np.ndarray:
    """(rows, 512 + 1) [embedding × weight, names an offer] or (rows, 1) without embeddings.
    `named`: 1.0 when the text names an offer of the corpus (assistant/offer_names.py), else 0.0."""
    column = np.asarray(named, dtype=np.float32).reshape(-1, 1) * NAMED_WEIGHT
    if vectors is None:
        return column
    return np.hstack([np.asarray(vectors, dtype=np.float32).reshape(len(column), -1) * embedding_weight, column])


def combine(grams, dense: np.ndarray):
    """[dense part | n-grams] (scipy.sparse CSR), the rows the linear heads read (training)."""
    from scipy import sparse

    return sparse.hstack([sparse.csr_matrix(dense), grams], format="csr")
