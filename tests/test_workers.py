"""`aiguillage serve --workers 2` as deployed: a real `chroma run` server, PostgreSQL and Redis on
127.0.0.1. The limit, the conversations and the index reloads hold across the two processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import CORPUS, free_port

POSTGRES = os.environ.get("AIGUILLAGE_TEST_POSTGRES_URL")
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES, reason="AIGUILLAGE_TEST_POSTGRES_URL not set (.ci/run sets it)"),
]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def deployment(tmp_path, redis_url):
    schema = f"w_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    chroma_port, port = free_port(), free_port()
    chroma = subprocess.Popen([str(BIN / "chroma"), "run", "--host", "127.0.0.1", "--port", str(chroma_port),
                               "--path", str(tmp_path / "chroma")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    env = {
        **os.environ,
        "AIGUILLAGE_DATA_DIR": str(tmp_path / "data"),
        "AIGUILLAGE_CORPUS_DIR": str(tmp_path / "corpus"),
        "AIGUILLAGE_CHROMA_URL": f"http://127.0.0.1:{chroma_port}",
        "AIGUILLAGE_DATABASE_URL": f"{POSTGRES}?options=-csearch_path%3D{schema}",
        "AIGUILLAGE_RATE_LIMIT": "8/minute",
        "AIGUILLAGE_RATE_LIMIT_STORAGE": redis_url[0],
        "AIGUILLAGE_PORT": str(port),
    }
    server = None
    try:
        wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma)
        server = subprocess.Popen([str(BIN / "aiguillage"), "serve", "--workers", "2"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{port}/readyz", server)
        yield f"http://127.0.0.1:{port}", env
    finally:
        if server is not None:
            stop(server)
        stop(chroma)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fresh(url: str) -> httpx.Client:
    """A new connection each time, so the kernel spreads requests over both workers."""
    return httpx.Client(base_url=url, timeout=120, headers={"Connection": "close"})


def test_two_workers_share_limits_conversations_and_index_reloads(deployment):
    url, env = deployment
    with fresh(url) as client:
        first = client.post("/v1/chat", json={"message": "Ma commune veut rénover l'école, qui peut aider ?"}).json()
    conversation = first["conversation_id"]
    with fresh(url) as client:
        second = client.post("/v1/chat", json={"message": "et l'éclairage public ?", "conversation_id": conversation})
    assert second.status_code == 200 and second.json()["message_id"] == 2
    restored = []
    for _ in range(4):  # whichever worker answers, it reads the same PostgreSQL
        with fresh(url) as client:
            restored.append([m["message_id"] for m in client.get(f"/v1/conversations/{conversation}/public").json()["messages"]])
    assert restored == [[1, 2]] * 4
    # 8/minute per address, counted in Redis: 2 chats + 4 restores, then 2 more, then 429
    statuses = []
    for n in range(4):
        with fresh(url) as client:
            statuses.append(client.post("/v1/feedback", json={"conversation_id": f"inconnue-{n:04d}", "message_id": 1,
                                                               "rating": "up"}).status_code)
    assert statuses == [404, 404, 429, 429]
    # a re-ingest by a third process: both workers serve the new generation
    with fresh(url) as client:
        before = client.get("/readyz").json()["generation"]
    card = sorted(Path(env["AIGUILLAGE_CORPUS_DIR"], "offers").glob("*/*.yaml"))[0]
    card.write_text(card.read_text(encoding="utf-8").replace("summary:", "summary: Mise à jour.", 1), encoding="utf-8")
    subprocess.run([str(BIN / "aiguillage"), "ingest"], env=env, check=True, capture_output=True)
    generations = set()
    for _ in range(6):
        with fresh(url) as client:
            generations.add(client.get("/readyz").json()["generation"])
    assert len(generations) == 1 and before not in generations
