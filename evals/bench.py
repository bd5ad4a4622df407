"""Performance benchmark: prints figures, asserts nothing (targets are checked by reading them).

Measures, on the current machine and the default configuration, on the corpus or a copy N times
its size (evals/scaled.py): full, no-op and one-card ingest; cold start of `aiguillage serve`
until /readyz answers 200 with an existing index; cold load of the territory tables and the time
to find the territory in a question; latency of /v1/search and /v1/chat in process and over HTTP
on 127.0.0.1; peak RSS of the server process; `aiguillage ask` without a server (wall and CPU); the
load average, since other work on the machine inflates every time. Optionally: CPU per chat request
against a naive LangChain RAG on the same index and embedder (evals/peer.py), and chat requests
per second at 1, 4 and 16 concurrent clients with 1 and 2 `serve` workers.
Targets are those of issue 15 (2 cores, 10,000 entries for latency, ready time and memory).

`--embedder hash` (evals.scaled.HashEmbeddings) replaces the bundled encoder everywhere, the server
included (started by `python -m evals.scaled serve-hash`, the app of `aiguillage serve` with that
embedder): a 100x corpus then indexes in minutes instead of most of an hour, and the figures are
those of the service's own mechanics (index, load, ranking), without the encoder's cost (≈ 3 ms per
question, model load ≈ 1 s; measured at 1x with `--embedder use`). `aiguillage ask` is not measured
with it (it would rebuild the index with the bundled encoder).

`--embedder standin` measures the start of the real `aiguillage serve` (default encoder, model load
included) at scale: the scaled index is built with HashEmbeddings of the configured encoder's
dimension under its configuration signature, so that `serve` finds it current and starts on it as on
its own, without encoding every passage (58,400 at 100x). What a start reads (the generation's files,
Chroma's stored vectors and their HNSW index, the model) does not depend on the vectors' values; the
answers do, so only the ingest, the start (ready time, its CPU, the first chat after it, peak RSS) and
`aiguillage ask` are measured, no latency figures.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from assistant.config import Settings
from assistant.embeddings import build_embeddings, embeddings_signature
from evals.scaled import HashEmbeddings, build_scaled_corpus, edit_one_card
from ingest.indexer import ingest

GOLD = Path(__file__).parent / "datasets" / "gold.jsonl"
CLIENTS = (1, 4, 16)
THROUGHPUT_SECONDS = 8.0  # per client count and worker count
WARM_UP_SECONDS = 2.0


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


def _timed(call, items, clock=time.perf_counter) -> list[float]:
    """Seconds each call took, by `clock` (wall by default; time.process_time for this process's CPU)."""
    spent = []
    for item in items:
        started = clock()
        call(item)
        spent.append(clock() - started)
    return spent


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_ingest(settings: Settings, work: Path, embeddings, scale: int = 1) -> dict:
    corpus = work / "corpus"
    build_scaled_corpus(settings.corpus_dir, corpus, scale)
    local = settings.model_copy(update={"corpus_dir": corpus, "data_dir": work / "data"})
    cpu = time.process_time()
    full = ingest(local, embeddings, progress=scale > 1)
    full_cpu, cpu = time.process_time() - cpu, time.process_time()
    noop = ingest(local, embeddings, progress=False)
    noop_cpu = time.process_time() - cpu
    edit_one_card(corpus)
    cpu = time.process_time()
    one = ingest(local, embeddings, progress=False)
    one_cpu = time.process_time() - cpu
    return {
        "offers": full.offers,
        "passages": full.passages,
        "full_ingest_s": round(full.seconds, 2),
        "unchanged_ingest_s": round(noop.seconds, 2),
        "one_offer_changed_ingest_s": round(one.seconds, 2),
        "cpu_s": {"full": full_cpu, "unchanged": noop_cpu, "one": one_cpu},  # this process's CPU (first build: encoder included)
        "local": local,
    }


def measure_territories(settings: Settings, asked: list[str]) -> dict:
    """Cold load of the territory tables (s) and mean resolve time per question (ms)."""
    from assistant.territory import Territories, _load

    _load.cache_clear()
    start = time.perf_counter()
    territories = Territories.load(settings.corpus_dir)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    for text in asked:
        territories.resolve(text)
    return {"load_s": loaded, "resolve_ms": (time.perf_counter() - start) * 1000 / max(1, len(asked))}


def warmed_assistant(local: Settings, embeddings):
    """An Assistant on `local`'s index as the server has it once ready: nothing left for the first question."""
    from assistant.service import Assistant

    assistant = Assistant(local, embeddings=embeddings)
    # As the server before /readyz (and its territory tables after).
    assistant.warm_up()
    _ = assistant.territories
    assistant.handle.current().offers.validate_all()  # what the server does in the background once ready
    return assistant


def measure_in_process(local: Settings, embeddings, asked: list[str], rounds: int) -> dict:
    assistant = warmed_assistant(local, embeddings)
    assistant.search(asked[0])
    search = _timed(lambda q: assistant.search(q, limit=10), asked * rounds)
    cpu = time.process_time()
    chat = _timed(lambda q: assistant.chat(q), asked * rounds)
    cpu_ms = (time.process_time() - cpu) * 1000 / len(chat)
    search_cpu = _timed(lambda q: assistant.search(q, limit=10), asked * rounds, time.process_time)
    chat_cpu = _timed(lambda q: assistant.chat(q), asked * rounds, time.process_time)
    # What the scope model adds to a turn: n-grams and its linear heads; the query vector it reads is
    # the one retrieval needs anyway (encoded once per turn), so it is computed outside the timing.
    # (None when the scope model was trained on other embeddings: its n-gram head decides alone.)
    vectors = {q: embeddings.embed_query(q) if assistant._scope_reads_vectors else None for q in asked}
    scope = _timed(lambda q: assistant.scope.decide(q, vectors[q]), asked * rounds)
    return {"search": Timing.of(search), "chat": Timing.of(chat), "chat_cpu_ms": cpu_ms, "scope": Timing.of(scope),
            "search_cpu": Timing.of(search_cpu), "chat_cpu": Timing.of(chat_cpu),
            "assistant": assistant}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _server_tree(pid: int) -> list[int]:
    """The server and its worker processes (uvicorn --workers spawns children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return [pid, *[p for k in kids for p in _server_tree(k)]]


def _start_server(local: Settings, workers: int = 1, embedder: str = "use") -> tuple[subprocess.Popen, str, float]:
    port = _free_port()
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(local.data_dir), "AIGUILLAGE_CORPUS_DIR": str(local.corpus_dir),
           "AIGUILLAGE_RATE_LIMIT": "1000000/minute"}
    command = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if embedder == "hash":  # otherwise the real `aiguillage serve`, default encoder (use, standin)
        command = [sys.executable, "-m", "evals.scaled", "serve-hash", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 300:
                server.kill()
                raise RuntimeError("le serveur n'a pas démarré")
            time.sleep(0.02)
    return server, url, time.perf_counter() - started


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def measure_server(local: Settings, asked: list[str], rounds: int, embedder: str = "use") -> dict:
    """Ready time (s, wall from the command's start to the first 200 of /readyz) and the server's CPU
    until then, twice: on a data directory without caches (the first start writes DATA_DIR/cache: the
    model's uncompressed weights and parsed tokenizer, the signpost vectors), then on a restart (read
    back, as on every later start: the figure of the target); after the restart, the first chat (wall
    s and server CPU s: what a first user waits for), then, but with `standin` vectors, search and chat
    latencies over HTTP and the server's CPU per chat; peak RSS (MB)."""
    first_start, first_url, fresh = _start_server(local, embedder=embedder)
    fresh_cpu = _cpu_seconds(first_start.pid)
    try:  # a chat waits for the territory tables, loaded after ready: their cache is then written too
        httpx.post(f"{first_url}/v1/chat", json={"message": asked[0]}, timeout=60).raise_for_status()
    finally:
        _stop(first_start)
    server, url, ready = _start_server(local, embedder=embedder)
    ready_cpu = _cpu_seconds(server.pid)
    starts = {"fresh_ready_s": fresh, "fresh_ready_cpu_s": fresh_cpu, "ready_s": ready, "ready_cpu_s": ready_cpu}
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            started = time.perf_counter()
            client.post("/v1/chat", json={"message": asked[0]}).raise_for_status()
            first = {"first_chat_s": time.perf_counter() - started, "first_chat_cpu_s": _cpu_seconds(server.pid) - ready_cpu}
            if embedder == "standin":
                return {**starts, **first, "rss_mb": _peak_rss_mb(server.pid)}
            search = _timed(lambda q: client.post("/v1/search", json={"query": q}).raise_for_status(), asked * rounds)
            cpu = _cpu_seconds(server.pid)
            chat = _timed(lambda q: client.post("/v1/chat", json={"message": q}).raise_for_status(), asked * rounds)
            cpu_ms = (_cpu_seconds(server.pid) - cpu) * 1000 / len(chat)
            rss = _peak_rss_mb(server.pid)
    finally:
        _stop(server)
    return {**starts, **first, "search": Timing.of(search), "chat": Timing.of(chat), "rss_mb": rss,
            "chat_cpu_ms": cpu_ms}


def _run_command(local: Settings, *arguments: str) -> tuple[float, float]:
    """(wall s, CPU s of the command) of `python -m assistant.cli <arguments>` on `local`'s data and
    corpus, with nothing listening on its port."""
    import resource

    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(local.data_dir), "AIGUILLAGE_CORPUS_DIR": str(local.corpus_dir),
           "AIGUILLAGE_PORT": str(_free_port())}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assistant.cli", *arguments], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def measure_ask(local: Settings, question: str, runs: int = 3) -> dict:
    """`aiguillage ask` without a server (nothing listens on its port): wall time (s, median of
    `runs`) and the CPU the command used (s, median), index already built."""
    walls, cpus = zip(*(_run_command(local, "ask", question) for _ in range(runs)))
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def measure_ingest_command(local: Settings) -> dict:
    """`aiguillage ingest` in a new process after one more card is edited: wall time (s) and the CPU the
    command used (s), what an editor waits for. The in-process figure of measure_ingest leaves out what
    the command adds: the interpreter's start, the encoder's load and, when the collection is written,
    Chroma's first read of its stored vectors."""
    edit_one_card(local.corpus_dir)
    wall, cpu = _run_command(local, "ingest")
    return {"wall_s": wall, "cpu_s": cpu}


def measure_throughput(local: Settings, asked: list[str], workers: int, embedder: str = "use") -> dict[int, dict]:
    """Chat requests per second with 1, 4 and 16 clients (evals/load.py's kept-alive stdlib clients),
    each level for THROUGHPUT_SECONDS after an untimed warm-up (each worker's first questions load
    the territory tables). Shape: {clients: evals.load.run's row}."""
    from evals.load import run

    server, url, _ = _start_server(local, workers, embedder)
    try:
        run(url, max(CLIENTS), WARM_UP_SECONDS, asked)
        return {clients: run(url, clients, THROUGHPUT_SECONDS, asked) for clients in CLIENTS}
    finally:
        _stop(server)


def run_bench(
    settings: Settings, n_questions: int = 40, rounds: int = 3, scale: int = 1, peer: bool = False,
    throughput: bool = False, embedder: str = "use",
) -> dict:
    """embedder: "use" (the configured embeddings), "hash" (HashEmbeddings, server included) or
    "standin" (index of HashEmbeddings standing in for the configured encoder, real server: start-up
    figures only; peer and throughput are not measured with it)."""
    asked = questions(n_questions)
    result: dict = {"cores": os.cpu_count(), "scale": scale, "embedder": embedder,
                    "territories": measure_territories(settings, asked)}
    with tempfile.TemporaryDirectory(prefix="aiguillage-bench-") as tmp:
        embeddings = HashEmbeddings() if embedder == "hash" else build_embeddings(settings)
        if embedder == "standin":
            embeddings = HashEmbeddings(len(embeddings.embed_query("dimension")), embeddings_signature(embeddings))
        ingested = measure_ingest(settings, Path(tmp), embeddings, scale)
        local = ingested.pop("local")
        if embedder != "hash":  # the command loads the configured encoder
            ingested["command"] = measure_ingest_command(local)
        if embedder == "standin":
            result.update(ingest=ingested, http=measure_server(local, asked, rounds, embedder), ask=measure_ask(local, asked[0]))
            return result
        in_process = measure_in_process(local, embeddings, asked, rounds)
        assistant = in_process.pop("assistant")
        if peer:
            from evals.peer import NaiveLangChainRag

            naive = NaiveLangChainRag(local, embeddings, assistant.handle.current().collection_name)
            naive.chat(asked[0])
            cpu = time.process_time()
            timing = Timing.of(_timed(naive.chat, asked * rounds))
            result["peer"] = {"chat": timing, "chat_cpu_ms": (time.process_time() - cpu) * 1000 / timing.n}
        del assistant
        result["http"] = measure_server(local, asked, rounds, embedder)
        if embedder != "hash":
            result["ask"] = measure_ask(local, asked[0])
        if throughput:
            result["throughput"] = {w: measure_throughput(local, asked, w, embedder) for w in (1, 2)}
    result.update(ingest=ingested, in_process=in_process)
    return result


def format_report(result: dict) -> str:
    ingest_, local, http = result["ingest"], result.get("in_process"), result["http"]
    lines = [
        f"Banc d'essai Aiguillage — {result['cores']} cœurs, corpus ×{result['scale']} : "
        f"{ingest_['offers']} offres, {ingest_['passages']} passages, encodeur {result.get('embedder', 'use')}",
        "",
        f"{'mesure':<48}{'valeur':>16}{'cible (10 000)':>16}",
        f"{'indexation complète':<48}{ingest_['full_ingest_s']:>14.2f} s{'':>16}  (CPU {ingest_['cpu_s']['full']:.2f} s)",
        f"{'réindexation, corpus inchangé':<48}{ingest_['unchanged_ingest_s']:>14.2f} s{'≤ 1 s':>16}  (CPU {ingest_['cpu_s']['unchanged']:.2f} s)",
        f"{'réindexation, une offre modifiée':<48}{ingest_['one_offer_changed_ingest_s']:>14.2f} s{'≤ 2 s':>16}  (CPU {ingest_['cpu_s']['one']:.2f} s)",
        *([f"{'  la même, commande `aiguillage ingest`':<48}{ingest_['command']['wall_s']:>14.2f} s{'':>16}"
           f"  (CPU {ingest_['command']['cpu_s']:.2f} s)"] if "command" in ingest_ else []),
        f"{'démarrage jusqu à /readyz, DATA_DIR/cache vide':<48}{http['fresh_ready_s']:>14.2f} s{'':>16}"
        f"  (CPU {http['fresh_ready_cpu_s']:.2f} s)",
        f"{'redémarrage jusqu à /readyz (caches lus)':<48}{http['ready_s']:>14.2f} s{'≤ 3 s':>16}  (CPU {http['ready_cpu_s']:.2f} s)",
        f"{'premier chat après « prêt » (mur ; CPU serveur)':<48}{http['first_chat_s'] * 1000:>13.0f} ms{'':>16}"
        f"  ({http['first_chat_cpu_s'] * 1000:.0f} ms)",
        f"{'mémoire résidente max. du serveur':<48}{http['rss_mb']:>13.0f} Mo{'≤ 800 Mo':>16}",
    ]
    if local is None:  # standin: the real server's start on an index of stand-in vectors (evals/bench.py)
        lines.insert(1, "encodeur standin : `aiguillage serve` réel (encodeur réglé, chargement du modèle compris) sur un index "
                        "de vecteurs factices de sa dimension ; démarrage, premier chat et mémoire mesurés, pas les latences "
                        "(les réponses d'un tel index ne valent rien)")
        return "\n".join(lines + _ask_and_load_lines(result))
    for label, timing, target in (
        ("recherche en processus", local["search"], "≤ 15 ms"),
        ("chat en processus", local["chat"], "≤ 40 ms"),
        ("  recherche, CPU du processus", local["search_cpu"], ""),
        ("  chat, CPU du processus", local["chat_cpu"], ""),
        ("dont décision de champ (modèle)", local["scope"], ""),
        ("POST /v1/search sur HTTP 127.0.0.1", http["search"], ""),
        ("POST /v1/chat sur HTTP 127.0.0.1", http["chat"], ""),
    ):
        lines.append(f"{label + f' (p50 / p95, n={timing.n})':<48}{f'{timing.p50:.1f} / {timing.p95:.1f} ms':>16}{target:>16}")
    lines.append(f"{'CPU par chat, en processus':<48}{local['chat_cpu_ms']:>13.1f} ms")
    places = result["territories"]
    lines.append(f"{'chargement des tables territoriales':<48}{places['load_s']:>14.2f} s")
    lines.append(f"{'repérage du territoire, par question':<48}{places['resolve_ms']:>13.2f} ms")
    lines.append(f"{'CPU du serveur par POST /v1/chat':<48}{http['chat_cpu_ms']:>13.1f} ms")
    lines += _ask_and_load_lines(result)
    if "peer" in result:
        peer, naive = result["peer"], result["peer"]["chat"]
        ratio = local["chat_cpu_ms"] / peer["chat_cpu_ms"]
        lines += [
            f"{'RAG LangChain naïf : CPU par question':<48}{peer['chat_cpu_ms']:>13.1f} ms",
            f"{'RAG LangChain naïf (p50 / p95)':<48}{f'{naive.p50:.1f} / {naive.p95:.1f} ms':>16}",
            f"{'CPU par chat / RAG naïf, en processus':<48}{ratio:>14.2f} ×{'≤ 1,3 ×':>16}",
        ]
    rates = result.get("throughput", {})
    for workers, rows in rates.items():
        figures = ", ".join(f"{c} client(s) : {row['rps']:.1f}/s (p95 {row['p95_ms']:.0f} ms)" for c, row in rows.items())
        errors = sum(row["errors"] for row in rows.values())
        lines.append(f"chat, {workers} processus : {figures}" + (f" ; {errors} erreur(s)" if errors else ""))
    if len(rates) == 2:
        busiest = max(CLIENTS)
        ratio = rates[2][busiest]["rps"] / max(rates[1][busiest]["rps"], 1e-9)
        lines.append(f"{f'2 processus / 1 processus à {busiest} clients':<48}{ratio:>14.2f} ×{'≥ 1,6 ×':>16}")
        client_cpu = statistics.mean(row["client_cpu_ms"] for rows in rates.values() for row in rows.values())
        lines.append(f"{'  CPU du générateur de charge par requête':<48}{client_cpu:>13.2f} ms")
    return "\n".join(lines)


def _ask_and_load_lines(result: dict) -> list[str]:
    lines = []
    if "ask" in result:
        ask = result["ask"]
        lines.append(f"{'aiguillage ask sans serveur (mur ; CPU)':<48}{ask['wall_s']:>14.2f} s{'≤ 2 s':>16}  ({ask['cpu_s']:.2f} s)")
    lines.append(f"{'charge moyenne (1 min) à la fin':<48}{os.getloadavg()[0]:>16.2f}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        lines.append("PYTHONDONTWRITEBYTECODE est posée : chaque démarrage recompile les modules du projet (≈ 0,1 s de CPU)")
    return lines


def measure_cpu(settings: Settings, n_questions: int = 40, rounds: int = 5) -> dict:
    """CPU per chat in process against the naive LangChain RAG (evals/peer.py), alone and cheaply:
    on the index of `settings` (brought up to date first, incrementally), no scaled copy, no server.
    Each round times the `n_questions` bench questions through Assistant.chat, then through the peer,
    so both see the same load; returns the medians over rounds (ms of this process's CPU per question),
    the figures `aiguillage bench --peer` prints as « CPU par chat, en processus » and the peer's."""
    from evals.peer import NaiveLangChainRag

    asked = questions(n_questions)
    embeddings = build_embeddings(settings)
    ingest(settings, embeddings, progress=False)
    assistant = warmed_assistant(settings, embeddings)
    naive = NaiveLangChainRag(settings, embeddings, assistant.handle.current().collection_name)
    assistant.chat(asked[0]), naive.chat(asked[0])
    ours, peer = [], []
    for _ in range(rounds):
        ours.append(sum(_timed(assistant.chat, asked, time.process_time)) * 1000 / len(asked))
        peer.append(sum(_timed(naive.chat, asked, time.process_time)) * 1000 / len(asked))
    return {"chat_cpu_ms": statistics.median(ours), "peer_cpu_ms": statistics.median(peer),
            "ratio": statistics.median(o / p for o, p in zip(ours, peer)), "rounds": rounds}


if __name__ == "__main__":  # python -m evals.bench cpu [ROUNDS]: only the CPU lines of `aiguillage bench --peer`
    if sys.argv[1:2] == ["cpu"]:
        from assistant.config import get_settings

        cpu = measure_cpu(get_settings(), rounds=int(sys.argv[2]) if len(sys.argv) > 2 else 5)
        print(f"{'CPU par chat, en processus':<48}{cpu['chat_cpu_ms']:>13.1f} ms\n"
              f"{'RAG LangChain naïf : CPU par question':<48}{cpu['peer_cpu_ms']:>13.1f} ms\n"
              f"{'CPU par chat / RAG naïf, en processus':<48}{cpu['ratio']:>14.2f} ×  (médianes de {cpu['rounds']} tours ; "
              f"charge {os.getloadavg()[0]:.1f})")
