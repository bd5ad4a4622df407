"""Load a running server with N concurrent chat clients and print throughput, latencies and errors
(printed figures, never a timed assertion).

    AIGUILLAGE_RATE_LIMIT=1000000/minute .venv/bin/aiguillage serve --workers 2 &
    .venv/bin/python -m evals.load --url http://127.0.0.1:8000 --clients 1,4,16 --seconds 20

Each client keeps its connection alive and asks the questions below in turn, each as a new
conversation (the per-conversation limit is not what is measured). Any status other than 200, or a
connection error, counts as an error.

The clients use the standard library's `http.client` (≈ 0.4 ms of CPU per request here) rather
than httpx (≈ 5 ms): on a 2-core machine where the server spends ≈ 18 ms per chat, an httpx load
generator took a fifth of the cores it was measuring. The CPU the clients used is printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

QUESTIONS = [
    "Ma commune de 800 habitants veut rénover l'école, qui peut nous aider ?",
    "Quelle aide pour l'éclairage public d'un village du Cantal ?",
    "Notre intercommunalité veut reconvertir une friche industrielle.",
    "Comment financer une maison de santé dans une commune rurale ?",
]


def run(url: str, clients: int, seconds: float, questions: list[str] | None = None) -> dict:
    """`clients` threads, each with one kept-alive connection, POST /v1/chat for `seconds`.

    Shape: {"clients", "requests" (answered 200), "errors", "rps" (answered per second),
    "p50_ms", "p95_ms", "client_cpu_ms" (this process's CPU per request sent), "error_kinds"}.
    """
    questions = questions or QUESTIONS
    parts = urlsplit(url)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        n = index
        while time.monotonic() < stop_at:
            body = json.dumps({"message": questions[n % len(questions)]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/chat", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                outcome = None if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                connection.close()  # reconnects on the next request
            with lock:
                (errors.append(outcome) if outcome else latencies.append(time.perf_counter() - started))
            n += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    cpu, started = time.process_time(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    ordered = sorted(latencies) or [0.0]
    sent = max(1, len(latencies) + len(errors))
    return {
        "clients": clients, "requests": len(latencies), "errors": len(errors), "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000, "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "client_cpu_ms": cpu * 1000 / sent, "error_kinds": sorted(set(errors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Concurrent chat clients against a running server.")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts, run in turn")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(f"{'clients':>7} {'requêtes':>9} {'erreurs':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'CPU client ms':>14}")
    for clients in (int(c) for c in args.clients.split(",")):
        row = run(args.url, clients, args.seconds)
        print(f"{row['clients']:>7} {row['requests']:>9} {row['errors']:>8} {row['rps']:>7.1f} {row['p50_ms']:>7.0f} "
              f"{row['p95_ms']:>7.0f} {row['client_cpu_ms']:>14.2f}"
              + (f"  ({', '.join(row['error_kinds'])})" if row["error_kinds"] else ""))


if __name__ == "__main__":
    main()
