"""Index the Aides-territoires snapshot: a second kind of entry beside the curated cards.

One Chroma collection per embedder configuration (``catalogue-<prefix>-<signature hash>``, outside
the curated index's ``<prefix>-`` namespace so its orphan cleanup never touches it), one vector per
two vectors per aid — its name alone (``<aid id>@<content hash>/t``) and its name with the start of its
description (``…/d``) — with metadata {"aid_id", "perimeter"} where perimeter is the key of
assistant.perimeter (``dep:56``…, ``none`` when unresolved). Beside the snapshot, ``index.json``
records what the collection holds ({"collection", "config_signature", "synced_at", "hashes": {aid id:
hash}, "keys": {aid id: perimeter key}, "territories": the tables' signature, "built_at"}),
``entries.jsonl`` the fields an answer shows (CatalogueEntry, without the
descriptions) and ``bm25/`` + ``bm25-ids.json`` a BM25 model of the aids' texts (same order), whose
tokens are cached per aid version (``bm25-tokens.pkl``): only new or changed aids are analysed again.
With the same territory tables, an unchanged aid is not even parsed: its line of ``entries.jsonl``, its
perimeter key and its tokens are reused, so a re-indexing costs the changed aids plus one BM25 build
from the cached tokens (bm25_model, a few tenths of a second at 10,000 aids).

Incremental: only aids whose hash is new or changed since the last indexing are embedded, removed
aids (and the old versions of changed ones) are deleted. It reads the *complete* snapshot written by
ingest.aides_territoires.sync: a failed or partial sync raises before replacing it, so it never
reaches this step and nothing is deleted. The snapshot is streamed (one page of aids in memory), the
writes paged under Chroma's maximum batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from assistant.config import Settings
from assistant.embeddings import Embeddings, embeddings_signature
from assistant.perimeter import PerimeterResolver
from assistant.text import analyze
from ingest.aides_territoires import Aid, aid_lines, catalogue_dir, line_id, read_snapshot
from ingest.indexer import EMBED_BATCH, delete_ids, page_size

DESCRIPTION_CHARS = 300  # of an aid's description embedded with its name: the name and the gist, not the details
BM25_CHARS = 3000  # of the description read by BM25
TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CatalogueEntry:
    """What an answer shows of an imported aid (entries.jsonl, one JSON object a line)."""

    id: str
    name: str
    url: str  # its page on Aides-territoires
    financers: list[str]
    audiences: list[str]  # AT vocabulary: commune, epci, department, region, special, association…
    aid_types: list[str]  # AT vocabulary: grant, loan, technical_engineering…
    perimeter_key: str | None  # assistant.perimeter key; None: not resolved, never shown
    perimeter_label: str  # « Morbihan (département) »
    perimeter_reason: str  # why it was not resolved (console), "" when resolved
    submission_deadline: str | None  # ISO date
    recurrence: str | None
    origin_url: str | None
    application_url: str | None
    has_conditions: bool  # free-text eligibility on the aid's page (« à vérifier »)


@dataclass
class CatalogueIndexReport:
    collection: str
    aids: int
    embedded: int
    removed: int
    unresolved: int
    seconds: float

    def summary(self) -> str:
        return (
            f"Catalogue indexé ({self.collection}) : {self.aids} aides, {self.embedded} encodée(s), "
            f"{self.removed} supprimée(s), {self.unresolved} au périmètre non rattaché (jamais proposées), "
            f"{self.seconds:.1f} s."
        )


def index_path(data_dir: Path) -> Path:
    return catalogue_dir(data_dir) / "index.json"


def entries_path(data_dir: Path) -> Path:
    return catalogue_dir(data_dir) / "entries.jsonl"


def read_index(data_dir: Path) -> dict | None:
    path = index_path(data_dir)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def collection_name(settings: Settings, embeddings: Embeddings) -> str:
    digest = hashlib.sha256(embeddings_signature(embeddings).encode()).hexdigest()[:10]
    return f"catalogue-{settings.collection_prefix}-{digest}"


def plain(html: str) -> str:
    return SPACES.sub(" ", TAG.sub(" ", html)).strip()


def aid_texts(aid: Aid) -> dict[str, str]:
    """The two texts embedded for an aid: "t" its name, "d" its name and the start of its description."""
    return {"t": aid.name, "d": f"{aid.name}. {plain(aid.description)[:DESCRIPTION_CHARS]}"}


def stored_ids(aid_id: str, digest: str) -> list[str]:
    return [f"{aid_id}@{digest}/{kind}" for kind in ("t", "d")]


def bm25_dir(data_dir: Path) -> Path:
    return catalogue_dir(data_dir) / "bm25"


def bm25_ids_path(data_dir: Path) -> Path:
    return catalogue_dir(data_dir) / "bm25-ids.json"


def entry_of(aid: Aid, resolver: PerimeterResolver) -> CatalogueEntry:
    resolved = resolver.resolve(aid.perimeter, aid.perimeter_scale)
    return CatalogueEntry(
        id=aid.id, name=aid.name, url=aid.url, financers=aid.financers, audiences=aid.audiences,
        aid_types=aid.aid_types, perimeter_key=resolved.key, perimeter_label=resolved.label,
        perimeter_reason=resolved.reason, submission_deadline=aid.submission_deadline, recurrence=aid.recurrence,
        origin_url=aid.origin_url, application_url=aid.application_url, has_conditions=bool(aid.eligibility.strip()),
    )


def tokens_path(data_dir: Path) -> Path:
    """Pickle {aid id: (content hash, BM25 tokens)}: our own cache, written and read only here."""
    return catalogue_dir(data_dir) / "bm25-tokens.pkl"


def _read_tokens(data_dir: Path) -> dict[str, tuple[str, list[str]]]:
    try:
        return pickle.loads(tokens_path(data_dir).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return {}


def _read_entries(data_dir: Path) -> Iterator[dict]:
    with entries_path(data_dir).open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _entry_lines(data_dir: Path) -> dict[str, str]:
    """{aid id: its line of entries.jsonl, newline included}, the lines left unparsed; {} when absent."""
    try:
        with entries_path(data_dir).open(encoding="utf-8") as lines:
            return {line_id(line): line for line in lines}
    except FileNotFoundError:
        return {}


def _write_record(data_dir: Path, record: dict) -> None:
    """index.json, replaced atomically: a server reloads the catalogue when it changes."""
    tmp = index_path(data_dir).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, index_path(data_dir))


def bm25_model(tokens: list[list[str]]):
    """A bm25s.BM25 of these documents (its defaults), built with numpy by assistant.bm25.bm25_arrays
    instead of bm25s's per-document Python loops (0.7-1.1 s -> 0.2-0.3 s at 10,000 aids); same score as
    ``bm25s.BM25().index(tokens)`` for every token (tests/test_catalogue.py compares them)."""
    import bm25s

    from assistant.bm25 import bm25_arrays

    model = bm25s.BM25()
    arrays = bm25_arrays(tokens)
    model.scores = {"data": arrays["data"], "indices": arrays["indices"], "indptr": arrays["indptr"],
                    "num_docs": arrays["num_docs"]}
    model.vocab_dict = arrays["vocab"]
    model.unique_token_ids_set = set(arrays["vocab"].values())
    model.nonoccurrence_array = None
    return model


def _write_bm25(data_dir: Path, ids: list[str], tokens: list[list[str]]) -> None:
    """The BM25 model of the aids' texts and its document order, replaced whole (bm25_model)."""
    import shutil

    model = bm25_model(tokens or [["∅"]])
    tmp = bm25_dir(data_dir).with_name("bm25.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), show_progress=False)
    shutil.rmtree(bm25_dir(data_dir), ignore_errors=True)
    os.replace(tmp, bm25_dir(data_dir))
    ids_tmp = bm25_ids_path(data_dir).with_suffix(".json.tmp")
    ids_tmp.write_text(json.dumps(ids), encoding="utf-8")
    os.replace(ids_tmp, bm25_ids_path(data_dir))


def index_catalogue(
    settings: Settings, embeddings: Embeddings, resolver: PerimeterResolver, progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> CatalogueIndexReport:
    """Bring the catalogue collection in line with the last complete snapshot.

    Raises FileNotFoundError when no sync ever completed. A crash midway leaves index.json as it
    was: the next run re-embeds what it had not recorded (upserts are idempotent)."""
    from assistant.vectorstore import chroma_client, create_collection

    started = time.perf_counter()
    data_dir = settings.data_dir
    snapshot = read_snapshot(data_dir)
    if snapshot is None:
        raise FileNotFoundError("aucun instantané du catalogue : lancez `aiguillage catalogue sync aides-territoires`")
    client = chroma_client(settings)
    size = page_size(client)
    name = collection_name(settings, embeddings)
    previous = read_index(data_dir) or {}
    try:
        collection = client.get_collection(name)
        old: dict[str, str] = previous.get("hashes", {}) if previous.get("collection") == name else {}
    except Exception:  # first indexing, or collection lost: everything is embedded again
        collection, old = create_collection(client, name), {}
    hashes: dict[str, str] = snapshot["hashes"]
    if (old == hashes and previous.get("territories") == resolver.signature and entries_path(data_dir).exists()
            and bm25_ids_path(data_dir).exists()):
        # Nothing changed since the last indexing: only the date of the snapshot is new.
        _write_record(data_dir, {**previous, "synced_at": snapshot["synced_at"]})
        unresolved = sum(1 for e in _read_entries(data_dir) if e["perimeter_key"] is None)
        return CatalogueIndexReport(name, len(hashes), 0, 0, unresolved, time.perf_counter() - started)
    stale = [s for i, h in old.items() if hashes.get(i) != h for s in stored_ids(i, h)]  # removed aids, old versions
    todo = sum(1 for i, h in hashes.items() if old.get(i) != h)
    bar = tqdm(total=todo, desc="Catalogue : encodage", unit="aide", disable=not progress)
    log(f"{todo} aide(s) à encoder, {len(hashes) - todo} inchangée(s), {sum(1 for i in old if i not in hashes)} retirée(s).")

    batch: list[tuple[str, str, dict]] = []

    def flush() -> None:
        vectors = []
        for start in range(0, len(batch), EMBED_BATCH):
            vectors += embeddings.embed_documents([text for _, text, _ in batch[start : start + EMBED_BATCH]])
        collection.upsert(ids=[i for i, _, _ in batch], embeddings=vectors,
                          documents=[t for _, t, _ in batch], metadatas=[m for _, _, m in batch])
        bar.update(len(batch) // 2)
        batch.clear()

    unresolved = 0
    bm25_ids: list[str] = []
    bm25_tokens: list[list[str]] = []
    cached = _read_tokens(data_dir)  # BM25 tokens of unchanged aids: not analysed again
    old_keys: dict[str, str | None] = previous.get("keys", {}) if old else {}
    # Same territory tables: an unchanged aid keeps its entry line, its perimeter and its tokens, unparsed.
    reusable = _entry_lines(data_dir) if old and previous.get("territories") == resolver.signature else {}
    keys: dict[str, str | None] = {}
    moved: list[tuple[str, dict]] = []  # unchanged aids whose perimeter resolves anew (new territory tables)
    fresh_tokens: dict[str, tuple[str, list[str]]] = {}
    tmp = entries_path(data_dir).with_suffix(".jsonl.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for line in aid_lines(data_dir):
                aid_id = line_id(line)
                digest = hashes.get(aid_id)
                known = cached.get(aid_id)
                if (digest is not None and old.get(aid_id) == digest and aid_id in reusable and aid_id in old_keys
                        and known and known[0] == digest):
                    out.write(reusable[aid_id])
                    keys[aid_id] = old_keys[aid_id]
                    unresolved += keys[aid_id] is None
                    bm25_ids.append(aid_id)
                    bm25_tokens.append(known[1])
                    fresh_tokens[aid_id] = known
                    continue
                aid = Aid(**json.loads(line))
                entry = entry_of(aid, resolver)
                unresolved += entry.perimeter_key is None
                out.write(json.dumps(vars(entry), ensure_ascii=False) + "\n")  # flat: no asdict deep copy
                keys[aid.id] = entry.perimeter_key
                if digest is not None and old.get(aid.id) == digest and old_keys.get(aid.id, entry.perimeter_key) != entry.perimeter_key:
                    moved += [(sid, {"aid_id": aid.id, "perimeter": entry.perimeter_key or "none"}) for sid in stored_ids(aid.id, digest)]
                tokens = known[1] if known and known[0] == digest else (
                    analyze(f"{aid.name} {' '.join(aid.financers)} {plain(aid.description)[:BM25_CHARS]}") or ["∅"])
                bm25_ids.append(aid.id)
                bm25_tokens.append(tokens)
                fresh_tokens[aid.id] = (digest, tokens)
                if digest is not None and old.get(aid.id) != digest:
                    metadata = {"aid_id": aid.id, "perimeter": entry.perimeter_key or "none"}
                    texts = aid_texts(aid)
                    batch += [(sid, texts[sid[-1]], metadata) for sid in stored_ids(aid.id, digest)]
                    if len(batch) >= min(size, 512):
                        flush()
            if batch:
                flush()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    delete_ids(collection, stale, size)
    for start in range(0, len(moved), size):  # metadata only: the text, hence the vectors, did not change
        page = moved[start : start + size]
        collection.update(ids=[i for i, _ in page], metadatas=[m for _, m in page])
    _write_bm25(data_dir, bm25_ids, bm25_tokens)
    tokens_tmp = tokens_path(data_dir).with_suffix(".pkl.tmp")
    tokens_tmp.write_bytes(pickle.dumps(fresh_tokens, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tokens_tmp, tokens_path(data_dir))
    os.replace(tmp, entries_path(data_dir))
    _write_record(data_dir, {
        "collection": name, "config_signature": embeddings_signature(embeddings), "synced_at": snapshot["synced_at"],
        "hashes": hashes, "keys": keys, "territories": resolver.signature,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    removed = sum(1 for i in old if i not in hashes)
    return CatalogueIndexReport(name, len(hashes), todo, removed, unresolved, time.perf_counter() - started)
