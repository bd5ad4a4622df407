"""Performance benchmark: prints figures, asserts nothing (targets are checked by reading them).

Measures, on the current machine and the default configuration: full, incremental and no-op ingest;
cold start of `aiguillage serve` until /readyz answers 200 with an existing index; latency of
/v1/search and /v1/chat in process and over HTTP on 127.0.0.1; peak RSS of the server process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from assistant.config import Settings
from assistant.embeddings import build_embeddings
from ingest.indexer import ingest

GOLD = Path(__file__).parent / "datasets" / "gold.jsonl"
TARGETS = {"search_p50_ms": 15, "chat_p50_ms": 25, "ready_s": 5, "rss_mb": 600}


@dataclass
class Timing:
    p50: float
    p95: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ordered = sorted(seconds)
        return cls(statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000, len(ordered))


def questions(limit: int) -> list[str]:
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [c["turns"][0] for c in cases if c["kind"] == "single"][:limit]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _timed(call, items) -> list[float]:
    spent = []
    for item in items:
        started = time.perf_counter()
        call(item)
        spent.append(time.perf_counter() - started)
    return spent


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_ingest(settings: Settings, work: Path, embeddings) -> dict:
    corpus = work / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    local = settings.model_copy(update={"corpus_dir": corpus, "data_dir": work / "data"})
    full = ingest(local, embeddings, progress=False)
    noop = ingest(local, embeddings, progress=False)
    card = next((corpus / "offers").glob("*/*.yaml"))
    data = yaml.safe_load(card.read_text(encoding="utf-8"))
    data["summary"] = data["summary"] + " (modifié pour le banc d'essai)"
    card.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    one = ingest(local, embeddings, progress=False)
    return {
        "offers": full.offers,
        "passages": full.passages,
        "full_ingest_s": round(full.seconds, 2),
        "unchanged_ingest_s": round(noop.seconds, 2),
        "one_offer_changed_ingest_s": round(one.seconds, 2),
        "local": local,
    }


def measure_in_process(local: Settings, embeddings, asked: list[str], rounds: int) -> dict:
    from assistant.service import Assistant

    assistant = Assistant(local, embeddings=embeddings)
    assistant.search(asked[0])
    search = _timed(lambda q: assistant.search(q, limit=10), asked * rounds)
    chat = _timed(lambda q: assistant.chat(q), asked * rounds)
    return {"search": Timing.of(search), "chat": Timing.of(chat)}


def measure_server(local: Settings, asked: list[str], rounds: int) -> dict:
    port = _free_port()
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(local.data_dir), "AIGUILLAGE_CORPUS_DIR": str(local.corpus_dir),
           "AIGUILLAGE_RATE_LIMIT": "100000/minute"}
    command = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("le serveur n'a pas démarré")
                time.sleep(0.02)
            ready = time.perf_counter() - started
            search = _timed(lambda q: client.post("/v1/search", json={"query": q}).raise_for_status(), asked * rounds)
            chat = _timed(lambda q: client.post("/v1/chat", json={"message": q}).raise_for_status(), asked * rounds)
            rss = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"ready_s": ready, "search": Timing.of(search), "chat": Timing.of(chat), "rss_mb": rss}


def run_bench(settings: Settings, n_questions: int = 40, rounds: int = 3) -> dict:
    asked = questions(n_questions)
    with tempfile.TemporaryDirectory(prefix="aiguillage-bench-") as tmp:
        embeddings = build_embeddings(settings)
        ingested = measure_ingest(settings, Path(tmp), embeddings)
        local = ingested.pop("local")
        in_process = measure_in_process(local, embeddings, asked, rounds)
        over_http = measure_server(local, asked, rounds)
    return {"ingest": ingested, "in_process": in_process, "http": over_http, "cores": os.cpu_count()}


def format_report(result: dict) -> str:
    ingest_, local, http = result["ingest"], result["in_process"], result["http"]
    lines = [
        f"Banc d'essai Aiguillage — {result['cores']} cœurs, {ingest_['offers']} offres, {ingest_['passages']} passages",
        "",
        f"{'mesure':<44}{'valeur':>12}{'cible':>10}",
        f"{'indexation complète':<44}{ingest_['full_ingest_s']:>10.2f} s",
        f"{'réindexation, corpus inchangé':<44}{ingest_['unchanged_ingest_s']:>10.2f} s",
        f"{'réindexation, une offre modifiée':<44}{ingest_['one_offer_changed_ingest_s']:>10.2f} s",
        f"{'démarrage à froid jusqu à /readyz':<44}{http['ready_s']:>10.2f} s{'≤ 5 s':>10}",
        f"{'mémoire résidente max. du serveur':<44}{http['rss_mb']:>9.0f} Mo{'≤ 600 Mo':>10}",
    ]
    for label, timing, target in (
        ("recherche en processus", local["search"], "≤ 15 ms"),
        ("chat en processus", local["chat"], "≤ 25 ms"),
        ("POST /v1/search sur HTTP 127.0.0.1", http["search"], "≤ 15 ms"),
        ("POST /v1/chat sur HTTP 127.0.0.1", http["chat"], "≤ 25 ms"),
    ):
        lines.append(f"{label + f' (p50 / p95, n={timing.n})':<44}{timing.p50:>6.1f} / {timing.p95:.1f} ms{target:>10}")
    return "\n".join(lines)
