"""Production behaviour over real components: turns never lost nor numbered twice, server-issued
conversation ids, masked logs, French errors for every bad input, body limit, security headers,
readiness from the loaded index, index builds serialised across processes."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import logging
import re
import shutil
import sqlite3
import threading
import time

import httpx
import pytest

from api.models import VISIBLE
from tests.conftest import CORPUS, LiveServer, free_port

SCHOOL = "Ma commune de 800 habitants veut rénover l'école, qui peut nous aider ?"
EMAIL = "jean.dupont@mairie-exemple.fr"
PHONE = "06 12 34 56 78"


@pytest.fixture
def own_db_server(settings, embeddings, indexed, tmp_path):
    """A live server over the shared index but its own SQLite file (so a test may lock it)."""
    from api.app import create_app
    from assistant.service import Assistant
    from assistant.store import Database

    db = Database(f"sqlite:///{tmp_path / 'own.db'}")
    db.create_schema()
    app = create_app(settings, Assistant(settings, embeddings=embeddings, database=db))
    with LiveServer(app, free_port()) as live:
        live.db, live.path = db, tmp_path / "own.db"
        yield live


# ---- data and privacy ---------------------------------------------------------------------------
def test_a_locked_database_loses_no_turn_and_logs_no_personal_data(own_db_server, caplog):
    """Repro of the issue: a write lock held on the SQLite file while a message carries an e-mail."""
    url = own_db_server.url
    first = httpx.post(url + "/v1/chat", json={"message": SCHOOL}, timeout=60).json()
    conversation = first["conversation_id"]
    holder = sqlite3.connect(own_db_server.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing for a long time
    try:
        with caplog.at_level(logging.INFO):
            message = f"Et pour l'éclairage public ? Écrivez-moi à {EMAIL} ou au {PHONE}."
            during = httpx.post(url + "/v1/chat", json={"message": message, "conversation_id": conversation}, timeout=60)
        assert during.status_code == 200 and during.json()["referrals"], during.text
        assert own_db_server.db.pending(), "the turn must wait in the spool"
        # the id stays usable while its turn waits: no 404 for a conversation the server issued
        assert httpx.get(f"{url}/v1/conversations/{conversation}/public").status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    logged = caplog.text + "".join(str(r.exc_text or "") for r in caplog.records)
    assert "database write failed" in logged
    assert "jean.dupont" not in logged and "06 12" not in logged
    assert own_db_server.db.flush_pending() == 1 and not own_db_server.db.pending()
    restored = httpx.get(f"{url}/v1/conversations/{conversation}/public").json()
    assert [m["message_id"] for m in restored["messages"]] == [1, 2]
    assert EMAIL in restored["messages"][1]["message"]  # stored as typed; only logs are masked


def test_exception_logs_are_masked_including_sql_parameters(tmp_path, caplog):
    from sqlalchemy import text

    from assistant.privacy import install_log_redaction
    from assistant.store import Database

    install_log_redaction()
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    log = logging.getLogger("aiguillage.test")
    with caplog.at_level(logging.ERROR, logger="aiguillage.test"):
        try:
            with db.session() as session:
                session.execute(text("INSERT INTO nowhere VALUES (:m)"), {"m": f"mail {EMAIL}"})
        except Exception:
            log.exception("write failed")
        try:
            raise ValueError(f"bad value {EMAIL} / {PHONE}")
        except ValueError:
            log.exception("plain failure")
    rendered = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert "nowhere" in rendered and "ValueError" in rendered  # the traceback is still there
    assert "jean.dupont" not in rendered and "06 12" not in rendered
    assert "[email masqué]" in rendered


def test_concurrent_messages_on_one_conversation_get_distinct_numbers(http):
    conversation = http.post("/v1/chat", json={"message": SCHOOL}).json()["conversation_id"]

    def send(n: int) -> httpx.Response:
        with httpx.Client(base_url=str(http.base_url), timeout=120) as client:
            return client.post("/v1/chat", json={"message": f"et pour l'éclairage public, question {n} ?",
                                                 "conversation_id": conversation})

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(send, range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    numbers = sorted(r.json()["message_id"] for r in responses)
    assert numbers == list(range(2, 12))
    stored = http.get(f"/v1/conversations/{conversation}/public").json()["messages"]
    assert [m["message_id"] for m in stored] == list(range(1, 12))


def test_chats_beyond_the_worker_threads_wait_their_turn_and_are_all_answered(settings, assistant):
    """AIGUILLAGE_WORKER_THREADS caps the threads that run chat turns in a worker: with one thread, six
    mayors asking at once are all answered (queued, not refused), each in their own conversation."""
    from api.app import create_app

    app = create_app(settings.model_copy(update={"worker_threads": 1}), assistant)
    with LiveServer(app, free_port()) as live:
        def send(n: int) -> httpx.Response:
            with httpx.Client(base_url=live.url, timeout=120) as client:
                return client.post("/v1/chat", json={"message": f"{SCHOOL} (question {n})"})

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(send, range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.json()["conversation_id"] for r in responses}) == 6


def test_conversation_ids_are_issued_by_the_server_only(http):
    body = http.post("/v1/chat", json={"message": SCHOOL}).json()
    issued = body["conversation_id"]
    assert len(issued) >= 32  # 192 random bits
    chosen = http.post("/v1/chat", json={"message": SCHOOL, "conversation_id": "mon-identifiant-choisi"})
    assert chosen.status_code == 404 and "donné par le serveur" in chosen.json()["detail"]
    streamed = http.post("/v1/chat/stream", json={"message": SCHOOL, "conversation_id": "mon-identifiant-choisi"})
    assert streamed.status_code == 404
    assert http.get("/v1/conversations/mon-identifiant-choisi/public").status_code == 404
    follow = http.post("/v1/chat", json={"message": "et pour l'éclairage ?", "conversation_id": issued})
    assert follow.status_code == 200 and follow.json()["message_id"] == 2


def test_public_view_shows_no_resolved_profile(http):
    body = http.post("/v1/chat", json={"message": SCHOOL, "insee": "15187"}).json()
    assert body["profile"]["insee"] == "15187"  # the asker sees it in the answer itself
    public = http.get(f"/v1/conversations/{body['conversation_id']}/public").json()
    assert "profile" not in public
    assert all("profile" not in m and "retrieved" not in m for m in public["messages"])


MARKUP = ["[cliquez ici](https://evil.example/phish)", "voir https://evil.example/x", "**URGENT** <b>x</b>"]


@pytest.mark.parametrize("text", MARKUP)
def test_user_text_is_never_markup_in_the_answer(http, text):
    from assistant.text import literal

    named = http.post("/v1/chat", json={"message": SCHOOL, "profile": {"name": text}}).json()
    quoted = http.post("/v1/chat", json={"message": f"Le programme « {text} » finance-t-il l'école ?"}).json()
    for answer in (named["answer"], quoted["answer"]):
        assert "evil.example" not in answer or "https\\://evil.example" in answer
        assert "](https://evil" not in answer and "https://evil" not in answer and "**URGENT**" not in answer
    assert literal(text) in named["answer"]


@pytest.mark.parametrize("lead", ["", " ", "   ", "\n", "\r\n", "\t", " \n "])
@pytest.mark.parametrize("trigger", ["=", "+", "-", "@"])
def test_csv_cells_never_start_a_formula(lead, trigger):
    from assistant.console import _cell

    cell = _cell(f"{lead}{trigger}HYPERLINK(\"https://evil.example\")")
    assert cell.startswith("'")
    assert _cell("Rénover l'école = priorité") == "Rénover l'école = priorité"


# ---- contract: bad input, errors, headers --------------------------------------------------------
def test_bodies_over_the_limit_get_a_french_413(http):
    huge = http.post("/v1/chat", content=b'{"message": "' + b"a" * 200_000 + b'"}',
                     headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and "trop volumineuse" in huge.json()["detail"]

    def chunks():
        for _ in range(100):
            yield b"a" * 10_000

    streamed = http.post("/v1/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize("body", [
    '{"message": "école \\ud800"}',
    '{"message": "école", "profile": {"name": "Saint-Flour \\udfff"}}',
])
def test_lone_surrogates_get_a_french_422_not_a_500(http, body):
    response = http.post("/v1/chat", content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "caractère invalide" in response.json()["detail"]
    ok = http.post("/v1/chat", content='{"message": "rénover l\'école \\ud83c\\udfeb"}'.encode(),
                   headers={"Content-Type": "application/json"})  # a real pair (an emoji) is fine
    assert ok.status_code == 200


def test_out_of_range_numbers_and_unparseable_bodies_get_french_4xx(http):
    big = http.post("/v1/feedback", json={"conversation_id": "abcdefgh", "message_id": 2**64, "rating": "up"})
    assert big.status_code == 422 and "au plus" in big.json()["detail"]
    broken = http.post("/v1/chat", content=b'{"message": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"] == "Requête invalide — corps, caractère 12 : JSON invalide"
    repeated = http.get("/v1/offers?offset=1&offset=0.0")  # the framework kept the last value (schemathesis)
    assert repeated.status_code == 422 and "paramètre répété dans l'adresse : offset" in repeated.json()["detail"]
    assert http.get("/v1/offers?offset=1&limit=2").status_code == 200
    form = http.post("/v1/chat", data={"message": "x"})
    assert form.status_code in (400, 422) and "error" not in form.json()["detail"].lower()
    assert http.get("/v1/nulle-part").json()["detail"] == "Adresse inconnue."
    assert http.delete("/v1/chat").json()["detail"] == "Méthode non permise pour cette adresse."
    wrong = http.post("/v1/feedback", json={"conversation_id": "abcdefgh", "message_id": 1, "rating": "bof"})
    assert "valeur non permise" in wrong.json()["detail"] and " or " not in wrong.json()["detail"]


def test_a_500_is_french_and_keeps_the_connection_alive(settings, assistant):
    from api.app import create_app

    app = create_app(settings, assistant)

    @app.get("/v1/test-panne")
    def broken() -> dict:
        raise RuntimeError(f"boom {EMAIL}")

    with LiveServer(app, free_port()) as live:
        connection = http.client.HTTPConnection("127.0.0.1", int(live.url.rsplit(":", 1)[1]), timeout=30)
        connection.request("GET", "/v1/test-panne")
        failed = connection.getresponse()
        body = json.loads(failed.read())
        socket_before = connection.sock
        assert failed.status == 500 and body["detail"].startswith("Erreur interne") and "boom" not in body["detail"]
        assert (failed.getheader("connection") or "").lower() != "close"
        connection.request("GET", "/healthz")
        again = connection.getresponse()
        assert again.status == 200 and json.loads(again.read()) == {"status": "ok"}
        assert connection.sock is socket_before  # same TCP connection
        connection.close()


def test_only_a_database_refusal_is_a_503_other_database_errors_stay_500(settings, assistant):
    """A database that refuses (locked, read-only, full) is « réessayez » (503); a statement the
    database rejects (a constraint) is a defect: the French 500, without its text."""
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import IntegrityError, OperationalError

    from api.app import create_app

    app = create_app(settings, assistant)

    @app.get("/v1/test-base/{kind}")
    def database_error(kind: str) -> dict:
        error = OperationalError if kind == "verrouillee" else IntegrityError
        raise error("INSERT …", {}, Exception(f"contrainte {EMAIL}"))

    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.get("/v1/test-base/verrouillee")
        rejected = client.get("/v1/test-base/contrainte")
    assert refused.status_code == 503 and refused.json()["detail"].startswith("Base de données momentanément indisponible")
    assert rejected.status_code == 500 and rejected.json()["detail"].startswith("Erreur interne")
    assert EMAIL not in rejected.text


def test_security_headers_and_no_host_built_redirect(http):
    assert http.get("/healthz").headers["x-content-type-options"] == "nosniff"
    page = http.get("/")
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in http.get("/console").headers["content-security-policy"]
    spoofed = http.get("/static", headers={"Host": "evil.example"}, follow_redirects=False)
    assert spoofed.status_code == 404 and "location" not in spoofed.headers


def test_frame_ancestors_follow_the_setting(settings, assistant):
    from fastapi.testclient import TestClient

    from api.app import create_app

    local = settings.model_copy(update={"frame_ancestors": ["https://www.mairie-exemple.fr", "https://x; script-src *"]})
    with TestClient(create_app(local, assistant)) as client:
        policy = client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://www.mairie-exemple.fr" in policy and "script-src *" not in policy


def test_openapi_documents_errors_and_export_types(http):
    spec = http.get("/openapi.json").json()
    assert spec["components"]["schemas"]["Erreur"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in json.dumps(spec)
    chat = spec["paths"]["/v1/chat"]["post"]["responses"]
    assert {"200", "400", "404", "413", "422", "429", "500", "503"} <= set(chat)
    assert "Retry-After" in chat["429"]["headers"]
    console = spec["paths"]["/v1/conversations/{conversation_id}"]
    assert {"401", "404"} <= set(console["get"]["responses"]) and "403" in console["delete"]["responses"]
    assert "401" not in spec["paths"]["/v1/conversations/{conversation_id}/public"]["get"]["responses"]
    assert "text/csv" in spec["paths"]["/v1/exports/conversations.csv"]["get"]["responses"]["200"]["content"]
    assert "application/x-ndjson" in spec["paths"]["/v1/exports/gold.jsonl"]["get"]["responses"]["200"]["content"]


# ---- health -------------------------------------------------------------------------------------
@pytest.fixture
def copied_index(settings, indexed, tmp_path):
    """The session's index and a copy of the corpus, so a test may edit or break cards."""
    data, corpus = tmp_path / "data", tmp_path / "corpus"
    shutil.copytree(settings.data_dir, data, ignore=shutil.ignore_patterns("aiguillage.db*", "pending-turns"))
    shutil.copytree(CORPUS, corpus)
    return settings.model_copy(update={"data_dir": data, "corpus_dir": corpus})


def _warned(assistant, words: str) -> dict:
    """readiness() once its warnings (refreshed in the background) mention `words`, or after 60 s."""
    deadline = time.monotonic() + 60
    while True:
        ready = assistant.readiness()
        if any(words in w for w in ready["warnings"]) or time.monotonic() > deadline:
            return ready
        time.sleep(0.05)


def test_readiness_is_about_the_live_index_not_the_files_on_disk(copied_index, embeddings):
    from assistant.service import Assistant

    assistant = Assistant(copied_index, embeddings=embeddings)
    assistant.corpus_watch.check(assistant.handle.current())  # as warm_up does, before the server is ready
    ready = assistant.readiness()
    assert ready["ready"] is True and ready["warnings"] == [] and ready["passages"] > 400
    assistant.corpus_watch.max_age_s = 0  # each probe asks for a new comparison (MAX_AGE_S otherwise)
    card = sorted((copied_index.corpus_dir / "offers").glob("*/*.yaml"))[0]
    card.write_text(card.read_text(encoding="utf-8").replace("summary:", "summary: Modifiée.", 1) + "\n", encoding="utf-8")
    edited = _warned(assistant, "ingest")
    assert edited["ready"] is True and "ingest" in edited["warnings"][0]
    card.write_text("id: [cassée\n", encoding="utf-8")
    broken = _warned(assistant, "invalide")
    assert broken["ready"] is True and "invalide" in broken["warnings"][0]
    assert assistant.search("rénovation de l'école")  # still serving


def test_a_readiness_probe_reads_no_corpus_file(copied_index, embeddings, monkeypatch):
    """Comparing the files is one stat per card (10,600 at 100x, seconds of wall time when a turn
    holds the interpreter): a probe reads the last comparison, made before the server was ready."""
    from assistant.service import Assistant

    assistant = Assistant(copied_index, embeddings=embeddings)
    card = sorted((copied_index.corpus_dir / "offers").glob("*/*.yaml"))[0]
    card.write_text(card.read_text(encoding="utf-8").replace("summary:", "summary: Modifiée.", 1) + "\n", encoding="utf-8")
    assistant.corpus_watch.check(assistant.handle.current())

    def no_files(*_):
        raise AssertionError("a probe read the corpus files")

    monkeypatch.setattr("assistant.readiness.corpus_stamps", no_files)
    for _ in range(3):
        ready = assistant.readiness()
        assert ready["ready"] is True and "ingest" in ready["warnings"][0]



def test_readyz_of_a_generation_with_its_mirror_checks_the_mirror_without_opening_chroma(copied_index, embeddings,
                                                                                         monkeypatch):
    """A generation with its vector mirror is ready when the mirror holds the manifest's rows (its live
    passages in BM25 order, then the retired ones) and a text for each; Chroma is never opened. A mirror
    that lost a row, whose ids are not the generation's, or whose texts file lost one is « index
    incohérent » (503, in French), like a collection that lost passages, and the reason names the files
    to remove for `aiguillage ingest` to write them again from Chroma."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from assistant.mirror import VectorMirror, write_mirror
    from assistant.service import Assistant
    from ingest.indexer import index_dir, ingest, read_manifest

    import numpy as np

    monkeypatch.setattr("assistant.retrieval.chroma_client", lambda *_: pytest.fail("Chroma opened"))
    directory, generation = index_dir(copied_index), read_manifest(copied_index)["generation"]
    whole = VectorMirror.read(directory, generation)
    texts = whole.all_texts()
    ids, offers, vectors = whole.ids, whole.offers, np.array(whole.vectors)
    texts_file = directory / f"{generation}.texts.bin"

    def write(mirror_ids, mirror_texts):
        keep = [ids.index(i) for i in mirror_ids]
        write_mirror(directory, generation, VectorMirror(mirror_ids, [offers[k] for k in keep], vectors[keep]), mirror_texts)

    def text_lost():
        write(ids, texts)
        write_mirror(directory, "autre", VectorMirror(ids[:-1], offers[:-1], vectors[:-1]), texts[:-1])
        shutil.copy(directory / "autre.texts.bin", texts_file)

    broken = {  # case: (how the mirror is broken, words of the reason)
        "a row lost": (lambda: write(ids[:-1], texts[:-1]), "vecteurs"),
        "ids not the generation's": (lambda: write([ids[1], ids[0], *ids[2:]], texts), "ne correspond pas"),
        "a text lost": (text_lost, "textes de passages pour"),
        "texts file cut short": (lambda: (write(ids, texts), texts_file.write_bytes(texts_file.read_bytes()[:-1])),
                                 "textes des passages illisibles"),
    }
    with TestClient(create_app(copied_index, Assistant(copied_index, embeddings=embeddings))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["passages"] == len(ids) - len(read_manifest(copied_index)["retired"])
    for case, (breaking, words) in broken.items():
        breaking()
        with TestClient(create_app(copied_index, Assistant(copied_index, embeddings=embeddings))) as client:
            ready = client.get("/readyz")
        assert ready.status_code == 503, case
        assert ready.json()["reason"].startswith("index incohérent : ") and words in ready.json()["reason"], case
    # The reason says how to repair it: the files it names removed, `aiguillage ingest` writes them again.
    for name in re.findall(r"\S+\.(?:vectors\.npy|vectors\.json|texts\.bin)", ready.json()["reason"]):
        (directory / name).unlink()
    assert ingest(copied_index, embeddings, progress=False).unchanged
    with TestClient(create_app(copied_index, Assistant(copied_index, embeddings=embeddings))) as client:
        assert client.get("/readyz").json()["ready"] is True
    assert VectorMirror.read(directory, generation).all_texts() == texts


def test_partners_are_rate_limited(settings, assistant):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings.model_copy(update={"rate_limit": "2/minute"}), assistant)) as client:
        statuses = [client.get("/v1/partners").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# ---- index builds ---------------------------------------------------------------------------------
def test_two_builds_at_once_are_serialised_and_orphans_removed(settings, embeddings, indexed, tmp_path):
    from assistant.vectorstore import chroma_client, create_collection
    from ingest.indexer import ingest, read_manifest

    local = settings.model_copy(update={"data_dir": tmp_path / "data"})
    reports, errors, lines = [], [], []

    def build() -> None:
        try:
            reports.append(ingest(local, embeddings, progress=False, log=lines.append))
        except Exception as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(r.unchanged for r in reports) == [False, True]
    assert any("attente" in line for line in lines)
    client = chroma_client(local)
    live = read_manifest(local)["collection"]
    orphan = create_collection(client, f"{local.collection_prefix}-99991231235959999999")  # a killed build's
    orphan.add(ids=["x"], embeddings=[[0.0] * 512], documents=["x"], metadatas=[{"offer_id": "x"}])
    again = ingest(local, embeddings, progress=False)
    names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    assert again.unchanged and names == {live}


# ---- several workers: shared limits, trusted proxies ------------------------------------------------
def asgi_client(app, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _feedback(n: int) -> dict:
    return {"conversation_id": f"inconnue-{n:04d}", "message_id": 1, "rating": "up"}


@pytest.mark.anyio
async def test_a_redis_store_shares_the_limit_between_workers_and_survives_redis_down(settings, assistant, redis_url, caplog):
    from api.app import create_app

    url, process = redis_url
    local = settings.model_copy(update={"rate_limit": "4/minute", "rate_limit_storage": url})
    workers = [create_app(local, assistant), create_app(local, assistant)]  # two processes' apps
    statuses = []
    for n in range(6):
        async with asgi_client(workers[n % 2], "203.0.113.40") as client:
            statuses.append((await client.post("/v1/feedback", json=_feedback(n))).status_code)
    assert statuses == [404, 404, 404, 404, 429, 429]  # 4 in all, not 4 per worker
    process.terminate()
    process.wait(10)
    with caplog.at_level(logging.WARNING, logger="aiguillage.api.limits"):
        async with asgi_client(workers[0], "203.0.113.41") as client:
            down = [(await client.post("/v1/feedback", json=_feedback(n))).status_code for n in range(5)]
    assert down == [404, 404, 404, 404, 429]  # served, limited per worker meanwhile
    assert "rate-limit storage unavailable" in caplog.text


@pytest.mark.anyio
async def test_client_address_is_the_rightmost_untrusted_hop(settings, assistant):
    from api.app import create_app

    local = settings.model_copy(update={"rate_limit": "2/minute", "trusted_proxies": ["10.0.0.0/8"]})
    app = create_app(local, assistant)

    async def post(peer: str, forwarded: str, n: int) -> int:
        async with asgi_client(app, peer) as client:
            return (await client.post("/v1/feedback", json=_feedback(n), headers={"X-Forwarded-For": forwarded})).status_code

    # behind the proxy, two users do not share a bucket; the left-most (client-written) hop is ignored
    assert [await post("10.0.0.5", f"1.2.3.{n}, 198.51.100.7, 10.0.0.9", n) for n in range(3)] == [404, 404, 429]
    assert await post("10.0.0.5", "198.51.100.8", 10) == 404
    # from an untrusted peer, a spoofed header gives no fresh bucket
    assert [await post("192.0.2.50", f"203.0.113.{n}", 20 + n) for n in range(3)] == [404, 404, 429]


def test_the_schema_states_what_the_code_checks(http, agent_token):
    spec = http.get("/openapi.json").json()
    message = spec["components"]["schemas"]["ChatRequest"]["properties"]["message"]
    assert message["maxLength"] == 2000 and message["minLength"] == 1 and message["pattern"] == VISIBLE
    assert "eau-assainissement" in json.dumps(spec["components"]["schemas"]["SearchFiltersIn"]) or \
        spec["components"]["schemas"]["SearchFiltersIn"]["properties"]["theme"]["items"]["enum"]
    auth = {"Authorization": f"Bearer {agent_token}"}
    not_a_date = http.get("/v1/unmet-needs", params={"date_to": "0"}, headers=auth)
    assert not_a_date.status_code == 422 and "date_to" in not_a_date.json()["detail"]
    assert http.get("/v1/stats", params={"date_from": "2026-02-30"}, headers=auth).status_code == 422
    options = http.request("OPTIONS", "/v1/conversations/abcdefgh", headers=auth)
    assert options.status_code == 405 and set(options.headers["allow"].split(", ")) >= {"GET", "DELETE"}


# ---- fault drills ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_no_acknowledged_turn(settings, indexed, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    data = tmp_path / "data"
    shutil.copytree(settings.data_dir, data, ignore=shutil.ignore_patterns("aiguillage.db*", "pending-turns"))
    port = free_port()
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(data), "AIGUILLAGE_CORPUS_DIR": str(CORPUS), "AIGUILLAGE_PORT": str(port),
           "AIGUILLAGE_RATE_LIMIT": "1000/minute"}
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        process = subprocess.Popen([str(Path(sys.executable).parent / "aiguillage"), "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return process
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    server = start()
    try:
        first = httpx.post(url + "/v1/chat", json={"message": SCHOOL}, timeout=60).json()
        conversation = first["conversation_id"]
        with httpx.stream("POST", url + "/v1/chat/stream", timeout=60,
                          json={"message": "et pour l'éclairage public ?", "conversation_id": conversation}) as response:
            next(response.iter_lines())  # the stream has begun
            os.kill(server.pid, signal.SIGKILL)
            server.wait(10)
        server = start()
        messages = httpx.get(f"{url}/v1/conversations/{conversation}/public", timeout=30).json()["messages"]
        assert messages[0]["message"] == SCHOOL and messages[0]["answer"] == first["answer"]  # acknowledged: kept
        assert all(m["answer"] for m in messages) and len(messages) in (1, 2)  # the cut turn: whole or absent
        after = httpx.post(url + "/v1/chat", json={"message": "qui contacter ?", "conversation_id": conversation}, timeout=60)
        assert after.status_code == 200 and after.json()["message_id"] == len(messages) + 1
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.parametrize("failure", ["read-only", "disk full"])
def test_a_read_only_or_full_database_still_answers_and_loses_no_turn(own_db_server, failure):
    """Drill: while SQLite refuses every write (opened read-only, or its file may not grow), chats
    get their answers and their turns wait in DATA_DIR/pending-turns; feedback gets a French 503;
    once the database accepts writes again every turn is stored, in order."""
    from sqlalchemy import event

    db, url = own_db_server.db, own_db_server.url
    first = httpx.post(url + "/v1/chat", json={"message": SCHOOL}, timeout=60).json()
    conversation = first["conversation_id"]
    with sqlite3.connect(own_db_server.path) as probe:
        pages = probe.execute("PRAGMA page_count").fetchone()[0]
    broken = {"on": True}

    def refuse_writes(connection, _record) -> None:
        if broken["on"]:
            connection.execute("PRAGMA query_only = ON" if failure == "read-only" else f"PRAGMA max_page_count = {pages}")

    event.listen(db.engine, "connect", refuse_writes)
    db.engine.dispose()  # every connection from now on refuses writes
    try:
        during = httpx.post(url + "/v1/chat", json={"message": "et pour l'éclairage public ?", "conversation_id": conversation},
                            timeout=60)
        assert during.status_code == 200 and during.json()["answer"] and during.json()["referrals"], during.text
        fresh = httpx.post(url + "/v1/chat", json={"message": SCHOOL}, timeout=60).json()
        again = httpx.post(url + "/v1/chat", json={"message": "qui contacter ?", "conversation_id": fresh["conversation_id"]},
                           timeout=60)
        assert again.status_code == 200 and again.json()["answer"], again.text  # a spooled conversation is known
        assert len(db.pending()) == 3
        rated = httpx.post(url + "/v1/feedback", json={"conversation_id": conversation, "message_id": 1, "rating": "up"})
        # a full file still takes a row that fits in its free pages; a read-only one takes nothing
        if failure == "read-only" or rated.status_code != 201:
            assert rated.status_code == 503 and rated.headers["retry-after"] == "5"
            assert rated.json()["detail"] == "Base de données momentanément indisponible. Réessayez dans un instant."
        still = httpx.get(f"{url}/v1/conversations/{conversation}/public").json()
        assert [m["message_id"] for m in still["messages"]] == [1]  # reads go on
    finally:
        broken["on"] = False
        db.engine.dispose()
    db.flush_pending()
    assert db.pending() == []
    restored = httpx.get(f"{url}/v1/conversations/{conversation}/public").json()["messages"]
    assert [(m["message_id"], m["message"]) for m in restored] == [(1, SCHOOL), (2, "et pour l'éclairage public ?")]
    assert restored[1]["answer"] == during.json()["answer"]
    later = httpx.get(f"{url}/v1/conversations/{fresh['conversation_id']}/public").json()["messages"]
    assert [m["message"] for m in later] == [SCHOOL, "qui contacter ?"]


def test_a_turn_neither_the_database_nor_the_spool_accepts_is_held_until_written(tmp_path, caplog):
    """Disk full for the database and the spool alike: the turn is held in memory, still counts as a
    known conversation, and is written once the database accepts writes again."""
    from sqlalchemy import event, select

    from assistant.store import Database, Turn

    blocker = tmp_path / "plein"
    blocker.write_text("")  # the spool's directory cannot be created under a file
    db = Database(f"sqlite:///{tmp_path / 'held.db'}", spool_dir=blocker / "pending-turns")
    db.create_schema()
    broken = {"on": True}
    event.listen(db.engine, "connect", lambda c, _r: c.execute("PRAGMA query_only = ON") if broken["on"] else None)
    db.engine.dispose()
    turn = {"message": "Rénover la mairie", "answer": "Réponse.", "kind": "answer", "referrals": [], "retrieved": [],
            "profile": {}, "themes": [], "usage": {}}
    with caplog.at_level(logging.ERROR):
        assert db.save_turn("tenue-en-memoire", {"state": {}}, turn) is None
    assert "turn held in memory" in caplog.text and db.conversation_known("tenue-en-memoire")
    assert db.flush_pending() == 0  # still refused: kept
    broken["on"] = False
    db.engine.dispose()
    assert db.flush_pending() == 1 and db.flush_pending() == 0
    with db.session() as session:
        assert session.scalars(select(Turn.message).where(Turn.conversation_id == "tenue-en-memoire")).all() == ["Rénover la mairie"]


@pytest.mark.slow
def test_an_ingest_killed_midway_leaves_the_live_generation_serving(copied_index, embeddings):
    """Drill: `aiguillage ingest` (a real process) is SIGKILLed while it embeds an edited corpus into
    the live collection. The running server keeps serving the previous generation (/readyz 200, same
    search results), and the next ingest completes and is picked up."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from api.app import create_app
    from assistant.service import Assistant
    from ingest.indexer import index_dir, read_manifest

    before = read_manifest(copied_index)
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(copied_index.data_dir), "AIGUILLAGE_CORPUS_DIR": str(copied_index.corpus_dir)}
    command = [str(Path(sys.executable).parent / "aiguillage"), "ingest"]
    for card in sorted((copied_index.corpus_dir / "offers").glob("*/*.yaml")):  # every offer to embed again
        text = card.read_text(encoding="utf-8")
        assert "summary: >-\n  " in text
        card.write_text(text.replace("summary: >-\n  ", "summary: >-\n  Fiche relue. ", 1), encoding="utf-8")
    query = {"query": "rénovation énergétique de l'école communale", "limit": 10}
    with LiveServer(create_app(copied_index, Assistant(copied_index, embeddings=embeddings)), free_port()) as live:
        served = httpx.post(live.url + "/v1/search", json=query, timeout=60).json()["results"]
        journal = index_dir(copied_index) / "pending.json"
        build = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(1200):  # the build has journaled its ids and is embedding into the live collection
                if journal.exists() or build.poll() is not None:
                    break
                time.sleep(0.05)
            assert build.poll() is None, "the build ended before it could be killed"
            time.sleep(1.0)
            os.kill(build.pid, signal.SIGKILL)
            build.wait(30)
        finally:
            build.kill()
        assert read_manifest(copied_index)["generation"] == before["generation"] and journal.exists()
        ready = httpx.get(live.url + "/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["generation"] == before["generation"], ready.text
        after_kill = httpx.post(live.url + "/v1/search", json=query, timeout=60).json()["results"]
        assert [r["offer_id"] for r in after_kill] == [r["offer_id"] for r in served]
        assert all("Fiche relue." not in r["summary"] for r in after_kill)

        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        assert finished.returncode == 0, finished.stderr[-2000:]
        rebuilt = read_manifest(copied_index)
        assert rebuilt["generation"] != before["generation"] and not journal.exists()
        ready = httpx.get(live.url + "/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["generation"] == rebuilt["generation"], ready.text
        reloaded = httpx.post(live.url + "/v1/search", json=query, timeout=60).json()["results"]
        assert reloaded and all(r["summary"].startswith("Fiche relue.") for r in reloaded)  # the new generation
