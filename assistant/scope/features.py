"""Features of the scope classifier: the query embedding, then hashed character n-grams.

Text is folded (lowercase, no accents, typographic apostrophe → ') before the n-grams, so that
« ÉLECTIONS », « elections » and « élections » give the same n-gram vector. The embedding is the
vector the retriever computes for the query (USE multilingual: 512 floats, unit norm); one more
feature says whether the text names an offer of the corpus (a corpus fact, not a word list).
"""

from __future__ import annotations

import re

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from assistant.text import fold

N_FEATURES = 2**15  # hashed n-gram buckets
NAMED_WEIGHT = 1.0  # the « names an offer of the corpus » feature
NGRAMS = (2, 5)
_SPACES = re.compile(r"\s+")


def folded(text: str) -> str:
    """'  Élections\nMUNICIPALES ’' -> 'elections municipales ''"""
    return _SPACES.sub(" ", fold(text).replace("’", "'")).strip()


_HASHER = HashingVectorizer(
    analyzer="char_wb",
    ngram_range=NGRAMS,
    n_features=N_FEATURES,
    alternate_sign=False,
    norm="l2",
    lowercase=False,
    preprocessor=folded,
    dtype=np.float32,
)


def char_grams(texts: list[str]) -> sparse.csr_matrix:
    """(len(texts), N_FEATURES) sparse, each row L2-normalised; stateless (hashing)."""
    return _HASHER.transform(texts)


def dense_part(vectors: np.ndarray | None, named: np.ndarray, embedding_weight: float) -> np.ndarray:
    """(rows, 512 + 1) [embedding × weight, names an offer] or (rows, 1) without embeddings.
    `named`: 1.0 when the text names an offer of the corpus (assistant/offer_names.py), else 0.0."""
    column = np.asarray(named, dtype=np.float32).reshape(-1, 1) * NAMED_WEIGHT
    if vectors is None:
        return column
    return np.hstack([np.asarray(vectors, dtype=np.float32).reshape(len(column), -1) * embedding_weight, column])


def combine(grams: sparse.csr_matrix, dense: np.ndarray) -> sparse.csr_matrix:
    """[dense part | n-grams], the rows the linear heads read."""
    return sparse.hstack([sparse.csr_matrix(dense), grams], format="csr")
