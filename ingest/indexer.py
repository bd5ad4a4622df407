"""Incremental, atomic indexing of the corpus into one Chroma collection per embedder configuration.

A build embeds only the passages of new or changed offers and adds them under content-derived ids
(``<passage id>@<offer hash>``); the passages of the previous version of a changed or removed offer
are *retired*: they stay in the collection for one more generation, so that a server still reading
the previous manifest keeps working, and are deleted by the next build. Each generation writes its
own files beside the manifest (offer snapshot, passage order, BM25 model), then swaps the small
manifest with os.replace: a server sees either the old generation or the new one, never a half-built
one, and a failed build (invalid card, embedder down, crash) leaves the manifest as it was. The ids a
build was about to add are journaled first, so the next build removes those a failed build left.

Cost is proportional to what changed: a corpus whose files are untouched (same size and
modification time) is not even parsed, unchanged cards are taken from the last snapshot instead of
being parsed again (nor validated, when that snapshot is intact and was checked today with the same
themes and partners), keep their recorded content hash and JSON form, and BM25 tokens are cached per
offer version. The BM25 model is rebuilt from the cached tokens with numpy (assistant.bm25), the
lexicon's counts are updated card by card and written with the name automaton (assistant.derived). Every read and write to Chroma is
paged under the client's maximum batch size and SQLite's variable limit.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.bm25 import read_bm25_counts, save_bm25, updated_bm25_arrays
from assistant.config import Settings
from assistant.derived import (
    Derived, DerivedUnusable, build_derived, encode_snapshot, gc_paused, read_derived, snapshot_digest, updated_counts, write_derived,
)
from assistant.embeddings import Embeddings, embeddings_signature
from assistant.mirror import MIRROR_SUFFIXES, VectorMirror, build_mirror, fits, has_mirror, write_mirror
from assistant.schema import Offer
from assistant.text import analyze
from assistant.vectorstore import chroma_client, create_collection
from ingest.chunking import CHUNKER_VERSION, chunk_offer
from ingest.corpus import Corpus, card_entries, load_corpus, signature_of, yaml_entries

EMBED_BATCH = 32
# Ids per Chroma read or delete: far under SQLite's 32,766 bound variables and Chroma's max batch.
PAGE = 2000
INDEX_VERSION = "3"  # one collection per configuration, generations of files beside the manifest
KEEP_GENERATIONS = 2  # the live one and the previous one, still used by a server that has not reloaded


@dataclass
class IngestReport:
    collection: str
    offers: int
    passages: int
    embedded_offers: list[str]
    removed_offers: list[str]
    unchanged: bool
    seconds: float
    generation: str  # the live generation's name (its files in DATA_DIR/index)

    def summary(self) -> str:
        if self.unchanged:
            return f"Index à jour ({self.offers} offres, {self.passages} passages) — rien à faire, {self.seconds:.2f} s."
        return (
            f"Index {self.collection} : {self.offers} offres, {self.passages} passages ; "
            f"{len(self.embedded_offers)} offre(s) (ré)encodée(s), {len(self.removed_offers)} retirée(s), "
            f"{self.seconds:.2f} s."
        )


def index_dir(settings: Settings) -> Path:
    return settings.data_dir / "index"


def manifest_path(settings: Settings) -> Path:
    return index_dir(settings) / "manifest.json"


def snapshot_path(settings: Settings, generation: str) -> Path:
    return index_dir(settings) / f"{generation}.offers.json"


def passages_path(settings: Settings, generation: str) -> Path:
    """JSON {"ids": [...], "offers": [...]}: live passages in BM25 document order."""
    return index_dir(settings) / f"{generation}.passages.json"


def bm25_path(settings: Settings, generation: str) -> Path:
    return index_dir(settings) / f"{generation}.bm25"


def derived_path(settings: Settings, generation: str) -> Path:
    """Pickle of the generation's lexicon, offer-name automaton and names as phrases (assistant.derived)."""
    return index_dir(settings) / f"{generation}.derived.pkl"


def tokens_path(settings: Settings, generation: str) -> Path:
    """Pickle {offer id: (offer hash, passage ids, BM25 tokens per passage)}; our own cache, never shared."""
    return index_dir(settings) / f"{generation}.tokens.pkl"


def _pending_path(settings: Settings) -> Path:
    return index_dir(settings) / "pending.json"


def read_manifest(settings: Settings) -> dict | None:
    path = manifest_path(settings)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_bytes_atomically(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


def _write_atomically(path: Path, payload: object, binary: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if binary:
        tmp.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    else:
        tmp.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def config_signature(embeddings: Embeddings) -> str:
    return f"{embeddings_signature(embeddings)}|chunker-{CHUNKER_VERSION}"


def chroma_id(passage_id: str, offer_hash: str) -> str:
    return f"{passage_id}@{offer_hash}"


def corpus_stamps(corpus_dir: Path) -> dict[str, list[int]]:
    """relative path -> [mtime_ns, size] of every file the index is built from (themes.yaml,
    offers/*/*.yaml, partners/*.yaml), sorted by path.

    Read with os.scandir, one stat per file and no Path object per entry: at 10,600 cards ≈ 0.04 s
    of CPU instead of ≈ 0.25 s through Path.glob and relative_to (each /readyz and each build reads it)."""
    stamps = {}

    def add(relative: str, entry: os.DirEntry | str) -> None:
        try:
            st = entry.stat() if isinstance(entry, os.DirEntry) else os.stat(entry)
        except FileNotFoundError:
            return
        stamps[relative] = [st.st_mtime_ns, st.st_size]

    add("themes.yaml", os.path.join(corpus_dir, "themes.yaml"))
    for partner, card in card_entries(corpus_dir):
        add(f"offers/{partner}/{card.name}", card)
    for card in yaml_entries(os.path.join(corpus_dir, "partners")):
        add(f"partners/{card.name}", card)
    return dict(sorted(stamps.items()))


def pages(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def page_size(client) -> int:
    """Chroma's own maximum batch (5,461 on SQLite builds), capped by PAGE."""
    try:
        return max(1, min(PAGE, int(client.get_max_batch_size())))
    except Exception:  # older servers do not tell
        return PAGE


def delete_ids(collection, ids: Iterable[str], size: int) -> None:
    for page in pages(sorted(set(ids)), size):
        collection.delete(ids=page)


class _Tokens:
    """Per offer version: its passage ids and their BM25 tokens, so a build re-analyzes only what changed."""

    def __init__(self) -> None:
        self.by_offer: dict[str, tuple[str, list[str], list[list[str]]]] = {}

    def load(self, path: Path) -> bool:
        try:
            self.by_offer = pickle.loads(path.read_bytes())
            return True
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            self.by_offer = {}
            return False

    def chroma_ids(self, offer_id: str) -> list[str]:
        entry = self.by_offer.get(offer_id)
        return [chroma_id(pid, entry[0]) for pid in entry[1]] if entry else []


def unchanged_offers(offers: Iterable[Offer], recorded: dict, stamps: dict[str, list[int]]) -> dict[str, Offer]:
    """The offers whose card file has the size and modification time a build recorded, by relative path."""
    reused = {}
    for offer in offers:
        path = f"offers/{getattr(offer.partner, 'value', offer.partner)}/{offer.id}.yaml"
        if path in stamps and recorded.get(path) == stamps[path]:
            reused[path] = offer
    return reused


def _read_snapshot(settings: Settings, manifest: dict) -> tuple[dict[str, dict], str | None, bytes]:
    """The last build's cards in their JSON form (id -> card), the digest of the file and its bytes,
    or ({}, None, b"")."""
    try:
        raw = snapshot_path(settings, manifest["generation"]).read_bytes()
        return json.loads(raw), snapshot_digest(raw), raw
    except (OSError, ValueError):
        return {}, None, b""


def _reusable_offers(manifest: dict, snapshot: dict[str, dict], stamps: dict[str, list[int]]) -> dict[str, Offer]:
    """Cards whose file did not change since the last build, read from its snapshot instead of YAML."""
    recorded = manifest.get("files", {})

    def untouched(offer_id: str, card: dict) -> bool:
        path = f"offers/{card.get('partner')}/{offer_id}.yaml"
        return path in stamps and recorded.get(path) == stamps[path]

    offers = (Offer.model_validate(card) for offer_id, card in snapshot.items() if untouched(offer_id, card))
    return unchanged_offers(offers, recorded, stamps)


def _collection(client, name: str):
    """The Chroma collection, or None when it is lost (server reset, deleted data): rebuild everything."""
    try:
        return client.get_collection(name)
    except Exception:
        return None


def _trusted_snapshot(manifest: dict, digest: str | None, stamps: dict[str, list[int]], today: str) -> bool:
    """Whether the last snapshot's cards can be taken without validation (load_corpus `trusted`): it is
    the file the build wrote (digest), that build checked the cards today (periods marked today), and
    the files other than cards (themes, partners) are those it read."""
    recorded = manifest.get("files", {})
    return (digest is not None and manifest.get("snapshot_digest") == digest and manifest.get("checked_on") == today
            and all(recorded.get(path) == stamp for path, stamp in stamps.items() if not path.startswith("offers/"))
            and all(path in stamps for path in recorded if not path.startswith("offers/")))


def _unchanged_cards(manifest: dict, snapshot: dict[str, dict], stamps: dict[str, list[int]]) -> dict[str, dict]:
    """relative path -> JSON form, for the snapshot's cards whose file did not change since the build."""
    recorded = manifest.get("files", {})
    unchanged = {}
    for offer_id, card in snapshot.items():
        path = f"offers/{card.get('partner')}/{offer_id}.yaml"
        if path in stamps and recorded.get(path) == stamps[path]:
            unchanged[path] = card
    return unchanged


def _previous_derived(settings: Settings, manifest: dict, digest: str | None) -> Derived | None:
    """The last generation's derived structures, when its artefact is there and intact."""
    try:
        return read_derived(derived_path(settings, manifest["generation"]), manifest["generation"], digest or "")
    except DerivedUnusable:
        return None


def _embed_and_add(collection, fresh: list, embeddings: Embeddings, size: int, progress: bool,
                   mirror_rows: int | None = None) -> dict:
    """fresh: (chroma id, text, metadata) triples; embedded EMBED_BATCH at a time, written in pages.
    mirror_rows: the rows of the collection after this build; when that many vectors of the embedder's
    dimension fit in a vector mirror (assistant.mirror.fits), return {chroma id: (float32 vector, text)}
    of what was written, for the mirror, else {}."""
    kept, keep = {}, None
    bar = tqdm(total=len(fresh), desc="Encodage", unit="passage", disable=not progress)
    for page in pages(fresh, size):
        vectors = []
        for batch in pages(page, EMBED_BATCH):
            vectors += embeddings.embed_documents([text for _, text, _ in batch])
            bar.update(len(batch))
        collection.upsert(
            ids=[i for i, _, _ in page], embeddings=vectors, documents=[t for _, t, _ in page], metadatas=[m for _, _, m in page]
        )
        if keep is None:
            keep = mirror_rows is not None and fits(mirror_rows, len(vectors[0]))
        if keep:
            kept.update(zip((i for i, _, _ in page), zip(np.asarray(vectors, dtype=np.float32), (t for _, t, _ in page))))
    bar.close()
    return kept


def _write_mirror(settings: Settings, generation: str, previous: dict | None, collection, size: int,
                  stored: list[tuple[str, str]], fresh: dict) -> None:
    """The generation's exact vector mirror (assistant.mirror) of `stored` (chroma id, offer id): the live
    passages in BM25 order, then the retired ones; vectors and texts just embedded (fresh: id -> (vector,
    text)), else the previous generation's mirror, else read from Chroma. Nothing is written when the
    collection's vectors do not fit in a mirror (assistant.mirror.fits)."""
    ids, owners = [cid for cid, _ in stored], [offer_id for _, offer_id in stored]
    earlier = VectorMirror.read(index_dir(settings), previous["generation"]) if previous else None

    def read_stored(wanted: list[str]) -> dict[str, tuple[list[float], str]]:
        found = {}
        for page in pages(wanted, size):
            got = collection.get(ids=page, include=["embeddings", "documents"])
            found.update(zip(got["ids"], zip(got["embeddings"], got["documents"])))
        return found

    if fresh:
        dimension = len(next(iter(fresh.values()))[0])
    else:
        dimension = earlier.vectors.shape[1] if earlier is not None else _stored_dimension(collection)
    if fits(len(ids), dimension):
        write_mirror(index_dir(settings), generation, *build_mirror(ids, owners, fresh, earlier, read_stored))


def _stored_dimension(collection) -> int:
    """The dimension of the collection's vectors, read from one of them (0 when it is empty)."""
    got = collection.get(limit=1, include=["embeddings"])
    return len(got["embeddings"][0]) if len(got["embeddings"]) else 0


def _mirror_if_missing(settings: Settings, manifest: dict, collection, size: int) -> None:
    """A generation without its mirror (built before mirrors, or before they held the passage texts)
    gets it, read from Chroma, when its vectors fit (assistant.mirror.fits)."""
    retired = manifest.get("retired", [])
    if (has_mirror(index_dir(settings), manifest["generation"])
            or not fits(manifest["passages"] + len(retired), _stored_dimension(collection))):
        return
    order = json.loads(passages_path(settings, manifest["generation"]).read_text(encoding="utf-8"))
    live = [(chroma_id(p, manifest["offers"][o]), o) for p, o in zip(order["ids"], order["offers"])]
    # A passage id is « <offer id>#<part> » (ingest.chunking).
    _write_mirror(settings, manifest["generation"], None, collection, size,
                  live + [(cid, cid.rpartition("@")[0].partition("#")[0]) for cid in retired], {})


def _write_bm25(settings: Settings, generation: str, tokens: _Tokens, offer_ids: list[str],
                previous: dict | None = None, fresh: Iterable[str] = ()) -> int:
    """The generation's BM25 model (assistant.bm25.save_bm25) and its passage order.

    previous: the manifest of the generation this one follows, fresh: the offers whose passages are
    new since it. When its model has its counts, only the fresh passages are read
    (assistant.bm25.updated_bm25_arrays: ≈ 0.1 s of CPU at 58,000 passages instead of ≈ 0.45 s for a
    pass over every cached token); otherwise the model is built from the cached tokens."""
    ids, owners = [], []
    for offer_id in offer_ids:
        passage_ids = tokens.by_offer[offer_id][1]
        ids += passage_ids
        owners += [offer_id] * len(passage_ids)
    counts, old_ids = None, []
    if previous is not None:
        counts = read_bm25_counts(bm25_path(settings, previous["generation"]))
        try:
            old_ids = json.loads(passages_path(settings, previous["generation"]).read_text(encoding="utf-8"))["ids"]
        except (OSError, ValueError, KeyError):
            counts = None
    if counts is not None and len(old_ids) == counts["num_docs"]:
        fresh, where = set(fresh), {passage_id: i for i, passage_id in enumerate(old_ids)}
        kept = np.fromiter((-1 if owner in fresh else where.get(passage_id, -1) for passage_id, owner in zip(ids, owners)),
                           dtype=np.int64, count=len(ids))
        added, position = {}, 0
        for offer_id in offer_ids:
            for passage_tokens in tokens.by_offer[offer_id][2]:
                if kept[position] < 0:
                    added[position] = passage_tokens or ["∅"]
                position += 1
        save_bm25(bm25_path(settings, generation), arrays=updated_bm25_arrays(counts, kept, added))
    else:
        save_bm25(bm25_path(settings, generation), [t or ["∅"] for offer_id in offer_ids for t in tokens.by_offer[offer_id][2]])
    _write_atomically(passages_path(settings, generation), {"ids": ids, "offers": owners})
    return len(ids)


def _prune(settings: Settings, live: str, previous: dict | None) -> None:
    """Keep the live generation's files and the previous one's (collections: see remove_orphans)."""
    import shutil

    keep = {live, previous.get("generation") if previous else None}
    for path in index_dir(settings).iterdir():
        generation = path.name.split(".", 1)[0]
        if path.name.endswith((".offers.json", ".passages.json", ".bm25", ".tokens.pkl", ".derived.pkl", *MIRROR_SUFFIXES)) and generation not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / "index" / "build.lock"


def serialised(build: Callable[..., IngestReport]) -> Callable[..., IngestReport]:
    """One index build at a time per data directory, across processes (an flock on
    data/index/build.lock): a second `serve` or `ingest` started meanwhile waits, then finds the
    index built and has nothing to do. After each build, collections left by a build that was
    killed midway (newer than the live one, or older than the previous one) are deleted. The build
    runs with the cyclic collector paused (assistant.derived.gc_paused: ≈ 0.6 s of CPU of a
    one-card re-index at 10,600 cards)."""

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
                with gc_paused():  # a build makes hundreds of thousands of containers (snapshot, caches) and no cycles to speak of
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


def _current(settings: Settings, manifest: dict | None, signature: str, stamps: dict, today: str) -> bool:
    """Whether the built generation is that of these files and this configuration, checked today."""
    return (bool(manifest) and manifest.get("index_version") == INDEX_VERSION and manifest["config_signature"] == signature
            and manifest.get("files") == stamps and manifest.get("checked_on") == today
            and tokens_path(settings, manifest["generation"]).exists())


def current_report(settings: Settings, embeddings: Embeddings) -> IngestReport | None:
    """ingest()'s report when it would have nothing to do and the generation has its vector mirror
    (assistant.mirror: then nothing the server or a turn does reads Chroma), read from the files alone
    (manifest, corpus stamps, token cache, mirror) without importing chromadb; else None.
    `aiguillage serve` and `aiguillage ask` skip ingest() on it."""
    started = time.perf_counter()
    manifest = read_manifest(settings)
    if not (_current(settings, manifest, config_signature(embeddings), corpus_stamps(settings.corpus_dir), dt.date.today().isoformat())
            and has_mirror(index_dir(settings), manifest["generation"])):
        return None
    return IngestReport(manifest["collection"], len(manifest["offers"]), manifest["passages"], [], [], True,
                        time.perf_counter() - started, manifest["generation"])


@serialised
def ingest(
    settings: Settings,
    embeddings: Embeddings,
    corpus: Corpus | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> IngestReport:
    started = time.perf_counter()
    signature = config_signature(embeddings)
    stamps = corpus_stamps(settings.corpus_dir)
    manifest = read_manifest(settings)
    client = chroma_client(settings)
    size = page_size(client)
    tokens = _Tokens()

    collection = None
    compatible = bool(manifest) and manifest.get("index_version") == INDEX_VERSION and manifest["config_signature"] == signature
    today = dt.date.today().isoformat()  # a card's period may end overnight (ingest.corpus._mark_ended)
    if corpus is None and _current(settings, manifest, signature, stamps, today) and (live := _collection(client, manifest["collection"])) is not None:
        # Nothing to read: the token cache is loaded (and checked) by the next build that has work.
        _mirror_if_missing(settings, manifest, live, size)
        return IngestReport(manifest["collection"], len(manifest["offers"]), manifest["passages"], [], [], True,
                            time.perf_counter() - started, manifest["generation"])
    if compatible and tokens.load(tokens_path(settings, manifest["generation"])):
        collection = _collection(client, manifest["collection"])

    old_cards, old_digest, old_raw = _read_snapshot(settings, manifest) if collection is not None else ({}, None, b"")
    old_hashes: dict[str, str] = manifest["offers"] if collection is not None else {}
    reused, trusted = {}, {}
    if corpus is None and old_cards:
        if _trusted_snapshot(manifest, old_digest, stamps, today):
            trusted = _unchanged_cards(manifest, old_cards, stamps)
        else:
            reused = _reusable_offers(manifest, old_cards, stamps)
    corpus = corpus or load_corpus(settings.corpus_dir, reuse=reused, trusted=trusted)  # CorpusError before anything is touched
    # A card taken unchanged from the snapshot keeps its recorded hash: a trusted one always, a reused
    # one unless load_corpus marked an ended period (it returns the very object otherwise).
    kept = {card["id"] for card in trusted.values()} | {offer.id for path, offer in reused.items()
                                                       if corpus.offers.get(offer.id) is offer}
    hashes = {offer_id: old_hashes[offer_id] if offer_id in kept and offer_id in old_hashes else corpus.offer_hash(offer_id)
              for offer_id in corpus.offers}
    if collection is not None and old_hashes == hashes:
        # Files touched (or a new day) but no content changed: remember the stamps, keep the generation.
        if manifest.get("files") != stamps or manifest.get("checked_on") != today:
            _write_atomically(manifest_path(settings), {**manifest, "files": stamps, "checked_on": today})
        _mirror_if_missing(settings, manifest, collection, size)
        return IngestReport(manifest["collection"], len(hashes), manifest["passages"], [], [], True,
                            time.perf_counter() - started, manifest["generation"])

    now = dt.datetime.now(dt.UTC)
    generation = f"{settings.collection_prefix}-{now:%Y%m%d%H%M%S%f}"
    if collection is None:
        tokens.by_offer = {}
        collection_name = generation
        collection = create_collection(client, collection_name)
    else:
        collection_name = manifest["collection"]
    changed = sorted(i for i, h in hashes.items() if old_hashes.get(i) != h)
    removed = sorted(set(old_hashes) - set(hashes))
    try:
        # Passages retired by the previous build, and those a failed build left, are no longer read.
        pending = _pending_path(settings)
        if pending.exists():
            live = {cid for offer_id in old_hashes for cid in tokens.chroma_ids(offer_id)}
            delete_ids(collection, set(json.loads(pending.read_text(encoding="utf-8"))) - live, size)
        delete_ids(collection, (manifest or {}).get("retired", []) if compatible else [], size)
        retiring = [(cid, offer_id) for offer_id in changed + removed for cid in tokens.chroma_ids(offer_id)]
        retired = [cid for cid, _ in retiring]

        themes = corpus.themes.by_id()
        fresh, new_tokens = [], {}
        for offer_id in changed:
            offer, offer_hash = corpus.offers[offer_id], hashes[offer_id]
            passages = chunk_offer(offer, themes)
            fresh += [(chroma_id(p.id, offer_hash), p.text, p.metadata(offer, offer_hash)) for p in passages]
            new_tokens[offer_id] = (offer_hash, [p.id for p in passages], [analyze(p.text) for p in passages])
        log(f"{len(changed)} offre(s) à encoder ({len(fresh)} passages), {len(hashes) - len(changed)} inchangée(s).")
        _write_atomically(pending, [i for i, _, _ in fresh])
        unchanged_rows = sum(len(tokens.by_offer[i][1]) for i in hashes if i not in new_tokens and i in tokens.by_offer)
        embedded = _embed_and_add(collection, fresh, embeddings, size, progress, mirror_rows=unchanged_rows + len(fresh) + len(retired))

        for offer_id in removed:
            tokens.by_offer.pop(offer_id, None)
        tokens.by_offer.update(new_tokens)
        passages = _write_bm25(settings, generation, tokens, sorted(hashes), manifest if compatible and old_hashes else None, changed)
        live = [(chroma_id(p, tokens.by_offer[i][0]), i) for i in sorted(hashes) for p in tokens.by_offer[i][1]]
        _write_mirror(settings, generation, manifest if compatible else None, collection, size, live + retiring, embedded)
        # Unchanged cards keep their JSON form (same hash: same model_dump) and its bytes in the
        # previous snapshot; changed ones are dumped.
        cards = {i: old_cards[i] if i in old_cards and old_hashes.get(i) == hashes[i] else corpus.offers[i].model_dump(mode="json")
                 for i in sorted(hashes)}
        previous = _previous_derived(settings, manifest, old_digest) if old_cards else None
        kept_json = {i: old_raw[start:end] for i, (start, end) in previous.spans.items()
                     if cards.get(i) is old_cards[i]} if previous is not None and previous.spans is not None else {}
        raw, spans = encode_snapshot(cards, kept_json)
        digest = snapshot_digest(raw)
        _write_bytes_atomically(snapshot_path(settings, generation), raw)
        counts, phrases, name_keys = None, None, None
        if previous is not None:  # only the changed cards are read again
            counts = updated_counts(previous.counts, [old_cards[i] for i in changed + removed if i in old_cards],
                                    [cards[i] for i in changed])
            phrases = {i: p for i, p in previous.phrases.items() if i not in changed}
            name_keys = {i: k for i, k in previous.names.keys.items() if i not in changed}
        write_derived(derived_path(settings, generation), build_derived(cards, counts, phrases, spans, name_keys),
                      generation, digest)
        _write_atomically(tokens_path(settings, generation), tokens.by_offer, binary=True)
    except BaseException:
        if collection_name == generation:  # a first build: nothing else reads this collection
            client.delete_collection(collection_name)
        raise
    _write_atomically(
        manifest_path(settings),
        {
            "index_version": INDEX_VERSION,
            "collection": collection_name,
            "generation": generation,
            "config_signature": signature,
            "corpus_signature": signature_of(hashes),
            "snapshot_digest": digest,
            "offers": hashes,
            "files": stamps,
            "checked_on": today,
            "passages": passages,
            "retired": retired,
            "built_at": now.isoformat(timespec="seconds"),
        },
    )
    pending.unlink(missing_ok=True)
    _prune(settings, generation, manifest)
    return IngestReport(collection_name, len(hashes), passages, changed, removed, False, time.perf_counter() - started,
                        generation)
