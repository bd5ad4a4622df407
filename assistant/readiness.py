"""Whether the corpus on disk differs from the one the live index generation was built from: the
`warnings` of /readyz, read without touching the files in the probe.

Comparing the files means one stat per card (10,600 at 100x). In the probe itself that cost ≈ 0.06 s
of CPU, and far more in wall time whenever another thread of the process was computing: each stat
releases the interpreter lock and waits up to its switch interval (5 ms) to take it back, so a probe
during chat turns or the start-up's background work took seconds. The probe now reads the last
result (O(1)); the files are compared once before the server is ready (`check`, from warm_up), then
again in a background thread when a probe finds the result older than `max_age_s` or made for
another generation. Until that thread ends, probes answer with the previous result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ingest.corpus import CorpusError, load_corpus
from ingest.indexer import corpus_stamps, unchanged_offers

CHANGED = "le corpus a changé depuis la dernière indexation : relancer `aiguillage ingest`"
MAX_AGE_S = 10.0  # how old the warnings of /readyz may be


def corpus_warnings(index, corpus_dir) -> list[str]:
    """[] when the corpus files are those the generation `index` (assistant.retrieval.LoadedIndex)
    was built from, or when only their dates changed; otherwise one French warning. Files whose size
    and modification time match the build's record are not read again; only edited cards are parsed
    (the rest come from the loaded generation)."""
    stamps = corpus_stamps(corpus_dir)
    recorded = index.manifest.get("files", {})
    if stamps == recorded:
        return []
    try:
        reuse = unchanged_offers(index.offers.values(), recorded, stamps)
        changed = load_corpus(corpus_dir, reuse=reuse).signature() != index.manifest["corpus_signature"]
    except CorpusError as exc:
        return [f"corpus sur disque invalide ({len(exc.problems)} problème(s)) : l'index en service reste celui d'avant"]
    return [CHANGED] if changed else []


class CorpusWatch:
    """The last corpus_warnings of the live generation, refreshed in the background (thread-safe)."""

    def __init__(self, corpus_dir, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic):
        self._corpus_dir = corpus_dir
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[str, float, list[str]] | None = None  # generation, when, warnings
        self._refreshing = False

    def check(self, index) -> list[str]:
        """Compare the files now (in this thread) and keep the result."""
        started = self._clock()
        warnings = corpus_warnings(index, self._corpus_dir)
        with self._lock:
            self._last = (index.generation, started, warnings)
        return warnings

    def warnings(self, index) -> list[str]:
        """The last result for this generation, at once; a background comparison is started when it
        is older than max_age_s or missing (the first probe of a generation then answers [])."""
        with self._lock:
            last = self._last if self._last and self._last[0] == index.generation else None
            stale = last is None or self._clock() - last[1] >= self.max_age_s
            if stale and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, args=(index,), name="aiguillage-corpus-watch", daemon=True).start()
        return list(last[2]) if last else []

    def _refresh(self, index) -> None:
        try:
            self.check(index)
        finally:
            with self._lock:
                self._refreshing = False
