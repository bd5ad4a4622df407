"""Incremental, atomic indexing of the corpus into Chroma.

Every build writes a *new* collection, copying the embeddings of unchanged offers from the current
one and embedding only what changed; then it swaps a small manifest file with os.replace. A server
reading the manifest therefore sees either the old index or the new one, never a half-written one,
and a failed build (invalid card, embedder down, crash) leaves the manifest and the old index as
they were.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from assistant.config import Settings
from assistant.embeddings import embeddings_signature
from assistant.vectorstore import chroma_client, create_collection
from ingest.chunking import CHUNKER_VERSION, Passage, chunk_offer
from ingest.corpus import Corpus, load_corpus

EMBED_BATCH = 32
KEEP_COLLECTIONS = 2  # the live one and the previous one, still used by a server that has not reloaded


@dataclass
class IngestReport:
    collection: str
    offers: int
    passages: int
    embedded_offers: list[str]
    removed_offers: list[str]
    unchanged: bool
    seconds: float

    def summary(self) -> str:
        if self.unchanged:
            return f"Index à jour ({self.offers} offres, {self.passages} passages) — rien à faire, {self.seconds:.2f} s."
        return (
            f"Index {self.collection} : {self.offers} offres, {self.passages} passages ; "
            f"{len(self.embedded_offers)} offre(s) (ré)encodée(s), {len(self.removed_offers)} retirée(s), "
            f"{self.seconds:.2f} s."
        )


def manifest_path(settings: Settings) -> Path:
    return settings.data_dir / "index" / "manifest.json"


def snapshot_path(settings: Settings, collection: str) -> Path:
    return settings.data_dir / "index" / f"{collection}.offers.json"


def read_manifest(settings: Settings) -> dict | None:
    path = manifest_path(settings)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def config_signature(embeddings: Embeddings) -> str:
    return f"{embeddings_signature(embeddings)}|chunker-{CHUNKER_VERSION}"


def _copy_unchanged(old, new, offer_ids: list[str]) -> int:
    if not offer_ids:
        return 0
    found = old.get(where={"offer_id": {"$in": offer_ids}}, include=["embeddings", "documents", "metadatas"])
    if found["ids"]:
        new.add(
            ids=found["ids"],
            embeddings=found["embeddings"],
            documents=found["documents"],
            metadatas=found["metadatas"],
        )
    return len(found["ids"])


def _embed_and_add(
    collection, passages: list[tuple[Passage, dict]], embeddings: Embeddings, progress: bool
) -> None:
    bar = tqdm(total=len(passages), desc="Encodage", unit="passage", disable=not progress)
    for start in range(0, len(passages), EMBED_BATCH):
        batch = passages[start : start + EMBED_BATCH]
        vectors = embeddings.embed_documents([p.text for p, _ in batch])
        collection.add(
            ids=[p.id for p, _ in batch],
            embeddings=vectors,
            documents=[p.text for p, _ in batch],
            metadatas=[m for _, m in batch],
        )
        bar.update(len(batch))
    bar.close()


def _prune(client, settings: Settings, live: str, previous: str | None) -> None:
    keep = {live, previous}
    prefix = settings.collection_prefix + "-"
    names = sorted(c if isinstance(c, str) else c.name for c in client.list_collections())
    for name in (n for n in names if n.startswith(prefix) and n not in keep):
        client.delete_collection(name)
        snapshot_path(settings, name).unlink(missing_ok=True)


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / "index" / "build.lock"


def serialised(build: Callable[..., IngestReport]) -> Callable[..., IngestReport]:
    """One index build at a time per data directory, across processes (an flock on
    data/index/build.lock): a second `serve` or `ingest` started meanwhile waits, then finds the
    index built and has nothing to do. After each build, collections left by a build that was
    killed midway (newer than the live one, or older than the previous one) are deleted."""

    @functools.wraps(build)
    def locked(settings: Settings, *args, log: Callable[[str], None] = lambda _: None, **kwargs) -> IngestReport:
        path = lock_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log("Un autre processus construit l'index : attente de la fin de sa construction…")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                report = build(settings, *args, log=log, **kwargs)
                removed = remove_orphans(settings)
                if removed:
                    log(f"{len(removed)} collection(s) orpheline(s) supprimée(s) : {', '.join(removed)}")
                return report
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return locked


def remove_orphans(settings: Settings) -> list[str]:
    """Delete this prefix's collections other than the live one and the one just before it.
    Call only while holding the build lock (an unfinished build's collection looks orphaned)."""
    manifest = read_manifest(settings)
    if not manifest:
        return []
    client = chroma_client(settings)
    prefix = settings.collection_prefix + "-"
    live = manifest["collection"]
    names = sorted(n for n in (c if isinstance(c, str) else c.name for c in client.list_collections()) if n.startswith(prefix))
    older = [n for n in names if n < live]
    keep = {live, *older[-1:]}
    orphans = [n for n in names if n not in keep]
    for name in orphans:
        client.delete_collection(name)
        snapshot_path(settings, name).unlink(missing_ok=True)
    return orphans


@serialised
def ingest(
    settings: Settings,
    embeddings: Embeddings,
    corpus: Corpus | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> IngestReport:
    started = time.perf_counter()
    corpus = corpus or load_corpus(settings.corpus_dir)  # raises CorpusError before anything is touched
    signature = config_signature(embeddings)
    hashes = {offer_id: corpus.offer_hash(offer_id) for offer_id in corpus.offers}
    manifest = read_manifest(settings)
    client = chroma_client(settings)

    old = None
    if manifest and manifest["config_signature"] == signature:
        try:
            old = client.get_collection(manifest["collection"])
        except Exception:  # collection lost (server reset, deleted data): rebuild everything
            old = None
    old_hashes: dict[str, str] = manifest["offers"] if old is not None else {}
    if old is not None and old_hashes == hashes:
        return IngestReport(manifest["collection"], len(hashes), manifest["passages"], [], [], True,
                            time.perf_counter() - started)

    unchanged = [i for i, h in hashes.items() if old_hashes.get(i) == h]
    changed = sorted(set(hashes) - set(unchanged))
    removed = sorted(set(old_hashes) - set(hashes))
    name = f"{settings.collection_prefix}-{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S%f}"
    collection = create_collection(client, name)
    try:
        copied = _copy_unchanged(old, collection, unchanged) if old is not None else 0
        themes = corpus.themes.by_id()
        fresh = [
            (passage, passage.metadata(corpus.offers[offer_id], hashes[offer_id]))
            for offer_id in changed
            for passage in chunk_offer(corpus.offers[offer_id], themes)
        ]
        log(f"{len(changed)} offre(s) à encoder ({len(fresh)} passages), {len(unchanged)} inchangée(s).")
        _embed_and_add(collection, fresh, embeddings, progress)
        snapshot = {i: corpus.offers[i].model_dump(mode="json") for i in sorted(corpus.offers)}
        _write_atomically(snapshot_path(settings, name), snapshot)
    except BaseException:
        client.delete_collection(name)
        raise
    passages = copied + len(fresh)
    _write_atomically(
        manifest_path(settings),
        {
            "collection": name,
            "config_signature": signature,
            "corpus_signature": corpus.signature(),
            "offers": hashes,
            "passages": passages,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    _prune(client, settings, name, manifest["collection"] if manifest else None)
    return IngestReport(name, len(hashes), passages, changed, removed, False, time.perf_counter() - started)
