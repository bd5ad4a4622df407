"""The committed scope classifier: loading the artefact and deciding one message.

Artefact (written by assistant/scope/train.py, no pickle):
  model.json — classes, doors, thresholds, embedding signature and weight, training figures;
  model.npz  — per head (`scope`, `scope_grams`, `door_scope`, `door_scope_grams`): `<head>_dense`
               (classes × dense columns: embedding and « names an offer » for `scope`, the latter
               only for `scope_grams`), `<head>_index` (hashed n-gram columns with a weight),
               `<head>_grams` (classes × columns), `<head>_bias` (classes).
Heads: `scope` (embedding + n-grams) when the configured embeddings are those it was trained on;
`scope_grams` (n-grams only, its own threshold) otherwise; `door_*` picks the door of a
refused message among every door (centre de gestion, préfecture, CNIL, service-public.fr for
collectivités, service-public.fr for a private person) with the same features, and the refusal's
kind follows that door. A message is refused when P(out of scope) = 1 − P(projet) ≥ the head's threshold, chosen on
held-out sources so that in-scope questions are answered when the model hesitates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.scope.doors import DOORS, PARTICULIER
from assistant.scope.features import N_FEATURES, dense_part, gram_counts

HERE = Path(__file__).resolve().parent
MODEL_JSON = HERE / "model.json"
MODEL_NPZ = HERE / "model.npz"
IN_SCOPE = "projet"


@dataclass(frozen=True)
class ScopeVerdict:
    kind: str  # "projet", "collectivite-autre" or "particulier" (the likeliest out-of-scope kind when refused)
    out_probability: float  # 1 − P(projet), in [0, 1]
    threshold: float
    door: str | None  # door id (assistant/scope/doors.py) when refused
    head: str  # "scope" or "scope_grams"

    @property
    def refuses(self) -> bool:
        return self.kind != IN_SCOPE

    @property
    def door_text(self) -> str | None:
        return DOORS[self.door] if self.door else None


class _Head:
    def __init__(self, arrays: dict, name: str):
        self.dense = arrays[f"{name}_dense"].astype(np.float32)
        grams = arrays[f"{name}_grams"].astype(np.float32)
        # The n-gram weights by hashed bucket (N_FEATURES × classes, zero where the head has none): a
        # message's few buckets are read directly instead of densifying a 32,768-column row per turn.
        self.by_bucket = np.zeros((N_FEATURES, grams.shape[0]), dtype=np.float32)
        self.by_bucket[arrays[f"{name}_index"]] = grams.T
        self.bias = arrays[f"{name}_bias"].astype(np.float32)

    def probabilities(self, grams: tuple[np.ndarray, np.ndarray], dense: np.ndarray) -> np.ndarray:
        """Softmax over the head's classes for one row: `grams` is (bucket indices, values) of the
        message (features.gram_counts), `dense` is (1, dense columns)."""
        indices, values = grams
        scores = values @ self.by_bucket[indices] + self.bias + dense @ self.dense.T
        scores = np.asarray(scores).ravel()
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()


class ScopeModel:
    def __init__(self, meta: dict, arrays: dict):
        if meta["n_features"] != N_FEATURES:
            raise ValueError(f"scope model hashed into {meta['n_features']} buckets, features use {N_FEATURES}")
        self.meta = meta
        self.classes: list[str] = meta["classes"]
        self.doors: list[str] = meta["doors"]
        self.embedding_signature: str = meta["embedding_signature"]
        self.embedding_weight: float = meta["embedding_weight"]
        self.thresholds: dict[str, float] = meta["thresholds"]
        self.heads = {name: _Head(arrays, name) for name in ("scope", "scope_grams", "door_scope", "door_scope_grams")}

    @classmethod
    def load(cls, json_path: Path = MODEL_JSON, npz_path: Path = MODEL_NPZ) -> ScopeModel:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        with np.load(npz_path) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(meta, arrays)

    def uses(self, embedding_signature: str) -> bool:
        """Whether the embedding head applies to vectors of these embeddings."""
        return embedding_signature == self.embedding_signature

    def decide(self, text: str, vector=None, named: bool = False, threshold: float | None = None) -> ScopeVerdict:
        """Scope of one message. `vector`: the query embedding from the embeddings the model was
        trained on (see `uses`), or None for the n-gram head; `named`: the text names an offer of the
        corpus; `threshold` overrides the calibrated one."""
        grams = gram_counts(text)
        head = "scope" if vector is not None else "scope_grams"
        dense = dense_part(None if vector is None else np.asarray(vector, dtype=np.float32).reshape(1, -1), np.array([float(named)]), self.embedding_weight)
        probs = self.heads[head].probabilities(grams, dense)
        out = float(1.0 - probs[self.classes.index(IN_SCOPE)])
        limit = self.thresholds[head] if threshold is None else threshold
        if out < limit:
            return ScopeVerdict(IN_SCOPE, out, limit, None, head)
        # The door head decides among every door, service-public.fr for a private person included; the
        # kind follows the door (a staff rule asked « Un agent peut-il… ? » is the CDG's, whoever asks).
        door = self.doors[int(np.argmax(self.heads[f"door_{head}"].probabilities(grams, dense)))]
        kind = "particulier" if door == PARTICULIER else "collectivite-autre"
        return ScopeVerdict(kind, out, limit, door, head)


@lru_cache(maxsize=1)
def load_scope_model() -> ScopeModel:
    """The committed model, loaded once per process (a few hundred KiB, no network)."""
    return ScopeModel.load()
