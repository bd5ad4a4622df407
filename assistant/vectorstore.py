"""Chroma client and collections: embedded by default, a Chroma server when AIGUILLAGE_CHROMA_URL is set.

Collections are always created with embedding_function=None: embeddings come from our own backend,
so Chroma never tries to download its default ONNX model. chromadb is imported on first use (≈ 0.7 s
of CPU): a process that never opens a collection does not pay for it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from assistant.config import Settings

if TYPE_CHECKING:
    import chromadb

    from assistant.embeddings import Embeddings

COSINE = {"hnsw:space": "cosine"}


def chroma_client(settings: Settings) -> chromadb.ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or 8000,
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def create_collection(client: chromadb.ClientAPI, name: str):
    return client.create_collection(name=name, embedding_function=None, metadata=COSINE)


def read_in_background(collection) -> threading.Thread:
    """Start the collection's first read in a daemon thread and return it (join it to wait).

    Chroma loads a collection's stored vectors (its HNSW index and id maps) on the first read of a
    process: ≈ 0.75 s of CPU at 58,400 passages of 512 dimensions, in its native code, outside the
    interpreter lock, so that it runs on another core beside the caller's work. A second read waits
    for that load instead of doing it again. A failure is left to the next read (/readyz reports it)."""

    def first_read() -> None:
        with contextlib.suppress(Exception):
            collection.count()

    thread = threading.Thread(target=first_read, name="aiguillage-vectors", daemon=True)
    thread.start()
    return thread


def langchain_store(client: chromadb.ClientAPI, name: str, embeddings: Embeddings):
    """The LangChain view of a collection (langchain_chroma.Chroma), used by the naive baseline and by
    integrators; imported here, so the server does not load it (≈ 0.3 s of start-up)."""
    from langchain_chroma import Chroma

    return Chroma(client=client, collection_name=name, embedding_function=embeddings)
