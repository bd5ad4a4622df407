"""Shared fixtures: the real corpus, the real bundled embedder, a real Chroma and a real HTTP server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from assistant.config import Settings
from assistant.embeddings import UniversalSentenceEncoderEmbeddings

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A fresh schema on the PostgreSQL of AIGUILLAGE_TEST_POSTGRES_URL (.ci/run starts one), dropped
    afterwards so runs never see each other's rows; the test is skipped when the variable is unset."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    url = os.environ.get("AIGUILLAGE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("AIGUILLAGE_TEST_POSTGRES_URL not set (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{url}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def embeddings():
    return UniversalSentenceEncoderEmbeddings()


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    # The whole suite talks to one server from 127.0.0.1: the production per-IP limit would trip it.
    return Settings(data_dir=tmp_path_factory.mktemp("data"), corpus_dir=CORPUS, rate_limit="2000/minute", _env_file=None)


@pytest.fixture(scope="session")
def indexed(settings, embeddings):
    from ingest.indexer import ingest

    return ingest(settings, embeddings, progress=False)


@pytest.fixture(scope="session")
def assistant(settings, embeddings, indexed):
    from assistant.service import Assistant

    return Assistant(settings, embeddings=embeddings)


class LiveServer:
    def __init__(self, app, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def catalogue_settings(tmp_path_factory, embeddings) -> Settings:
    """A data directory of its own with the curated index and the 274 public aids synced from the fake
    Aides-territoires server and indexed."""
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.aides_territoires import AidesTerritoiresClient, sync
    from ingest.catalogue_index import index_catalogue
    from ingest.indexer import ingest
    from evals.fake_aides_territoires import TOKEN, FakeAidesTerritoires

    settings = Settings(data_dir=tmp_path_factory.mktemp("catalogue"), corpus_dir=CORPUS, rate_limit="2000/minute",
                        _env_file=None)
    ingest(settings, embeddings, progress=False)
    with FakeAidesTerritoires() as fake:
        sync(AidesTerritoiresClient(fake.url, TOKEN, sleep=lambda _: None), settings.data_dir, progress=False)
    index_catalogue(settings, embeddings, PerimeterResolver(Territories.load(CORPUS)), progress=False)
    return settings


@pytest.fixture(scope="session")
def with_catalogue(catalogue_settings, embeddings):
    from assistant.service import Assistant

    return Assistant(catalogue_settings, embeddings=embeddings)


@pytest.fixture(scope="session")
def server(settings, assistant):
    from api.app import create_app

    with LiveServer(create_app(settings, assistant), free_port()) as live:
        yield live


@pytest.fixture(scope="session")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def agent_token(assistant) -> str:
    from assistant.auth import create_token

    return create_token(assistant.db, "Agent de test", "agent")[0]


@pytest.fixture(scope="session")
def admin_token(assistant) -> str:
    from assistant.auth import create_token

    return create_token(assistant.db, "Admin de test", "admin")[0]


@pytest.fixture
def redis_url(tmp_path):
    """A real Debian redis-server on 127.0.0.1 (installed by .ci/run), stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server absent (installé par .ci/run)")
    port = free_port()
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url, process
    process.terminate()
    process.wait(10)
