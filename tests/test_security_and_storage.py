"""Rate limits, CORS, log redaction, retention purge, tokens CLI and Alembic migrations."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, select, update

from assistant.store import Conversation, Database, Turn


def limited_client(app, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tight_app(settings, assistant):
    from api.app import create_app

    return create_app(settings.model_copy(update={"rate_limit": "3/minute"}), assistant)


@pytest.mark.anyio
async def test_rate_limit_per_ip_answers_429_in_french(tight_app):
    async with limited_client(tight_app, "203.0.113.7") as client:
        body = {"conversation_id": str(uuid.uuid4()), "message_id": 1, "rating": "up"}
        statuses = []
        for _ in range(4):
            body["conversation_id"] = str(uuid.uuid4())  # a new conversation each time: only the IP counts
            statuses.append((await client.post("/v1/feedback", json=body)).status_code)
        assert statuses == [404, 404, 404, 429]
        refused = await client.post("/v1/feedback", json=body)
        assert refused.status_code == 429 and "Patientez" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # the console is not a public route: no per-IP budget, only the token
        assert (await client.get("/v1/conversations")).status_code == 401


def test_in_process_rate_counters_start_no_thread_per_hit_and_still_free_expired_windows(monkeypatch):
    """The memory:// counters (api.security.SweptMemoryStorage) refuse past the limit as the library
    does, start no thread per hit (the library started a timer thread on nearly every request), and
    free the windows of expired hits at the next sweep, in the thread that counts a hit."""
    import threading

    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    from api.security import SweptMemoryStorage, limit_storage

    storage = limit_storage("memory://")
    assert isinstance(storage, SweptMemoryStorage)
    limiter = MovingWindowRateLimiter(storage)
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))
    item = parse("2/minute")
    assert [limiter.hit(item, "ip", "10.0.0.1") for _ in range(3)] == [True, True, False]
    assert [limiter.hit(item, "ip", "10.0.0.2") for _ in range(60)].count(True) == 2
    assert started == []
    for entries in storage.events.values():  # the window has passed for every hit
        for entry in entries:
            entry.expiry -= 3600
    storage._next_sweep = 0.0
    assert limiter.hit(item, "ip", "10.0.0.3")
    swept = [entries for key, entries in storage.events.items() if "10.0.0.1" in key or "10.0.0.2" in key]
    assert len(swept) == 2 and swept == [[], []]
    assert limiter.hit(item, "ip", "10.0.0.1")  # counted afresh


@pytest.mark.anyio
async def test_rate_limit_per_conversation_across_addresses(tight_app):
    conversation = str(uuid.uuid4())
    body = {"conversation_id": conversation, "message_id": 1, "rating": "up"}
    statuses = []
    for n in range(4):
        async with limited_client(tight_app, f"198.51.100.{n + 1}") as client:
            statuses.append((await client.post("/v1/feedback", json=body)).status_code)
    assert statuses == [404, 404, 404, 429]
    async with limited_client(tight_app, "198.51.100.99") as client:
        assert (await client.get(f"/v1/conversations/{conversation}/public")).status_code == 429
        other = {**body, "conversation_id": str(uuid.uuid4())}
        assert (await client.post("/v1/feedback", json=other)).status_code == 404


@pytest.mark.anyio
async def test_cors_allows_only_listed_origins(settings, assistant):
    from api.app import create_app

    app = create_app(settings.model_copy(update={"cors_origins": ["https://www.mairie-exemple.fr"]}), assistant)
    async with limited_client(app, "192.0.2.1") as client:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        ok = await client.options("/v1/chat/stream", headers={"Origin": "https://www.mairie-exemple.fr", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://www.mairie-exemple.fr"
        denied = await client.options("/v1/chat/stream", headers={"Origin": "https://evil.example", **preflight})
        assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
        script = await client.get("/widget.js", headers={"Origin": "https://evil.example"})
        assert script.status_code == 200  # the script itself can be loaded anywhere


def test_logs_never_show_emails_or_phone_numbers(caplog):
    from assistant.privacy import install_log_redaction, redact

    install_log_redaction()
    logger = logging.getLogger("aiguillage.test")
    with caplog.at_level(logging.INFO, logger="aiguillage.test"):
        logger.info("question: %s", "écrivez à jean.dupont@mairie-exemple.fr ou au 06 12 34 56 78, +33 4 71 00 00 00")
    text = caplog.records[-1].getMessage()
    assert "jean.dupont" not in text and "06 12" not in text and "+33 4" not in text
    assert "[email masqué]" in text and text.count("[téléphone masqué]") == 2
    assert redact("Commune de 2 400 habitants, code 15187, budget 120000 €") == "Commune de 2 400 habitants, code 15187, budget 120000 €"
    assert redact("tél. 01.23.45.67.89") == "tél. [téléphone masqué]"


def _old_conversation(db: Database, days: int) -> str:
    cid = str(uuid.uuid4())
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
    with db.session() as session:
        session.add(Conversation(id=cid, created_at=when, updated_at=when, profile={}, state={}))
        session.add(Turn(conversation_id=cid, number=1, message="vieux", answer="vieille réponse", kind="answer",
                         referrals=[], retrieved=[], profile={}, themes=[], usage={}))
    return cid


def test_a_turn_written_survives_the_writing_process_killed_right_after(tmp_path):
    """README: SQLite in WAL with synchronous=NORMAL, the log copied back by a thread of its own — a turn stored
    survives a crash of the process (not necessarily a power cut). The writer is killed (SIGKILL) right after save_turn returns."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'w.db'}"
    Database(url).create_schema()
    writer = (
        "import os, signal\nfrom assistant.store import Database\n"
        f"db = Database({url!r})\n"
        "with db.engine.connect() as c:\n"
        "    assert c.exec_driver_sql('PRAGMA journal_mode').scalar() == 'wal'\n"
        "    assert c.exec_driver_sql('PRAGMA synchronous').scalar() == 1  # NORMAL\n"
        "db.save_turn('c' * 32, {'profile': {}, 'state': {}}, {'message': 'Quelle aide pour le pont ?', 'answer': 'x', "
        "'kind': 'answer', 'generator': 'grounded', 'referrals': [], 'retrieved': [], 'profile': {}, 'themes': []})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", writer], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    with Database(url).session() as session:
        assert session.scalars(select(Turn.message).where(Turn.conversation_id == "c" * 32)).all() == ["Quelle aide pour le pont ?"]


def test_a_turns_json_columns_read_back_as_json_would_give_them(tmp_path):
    """The JSON columns are written by orjson (store.json_text): what is read back, through SQLAlchemy or
    as raw text through json.loads, is what json.dumps then json.loads gives, accents, « », emoji and
    non-string keys included; a NaN, which JSON has no word for, reads back null."""
    import json

    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    db.create_schema()
    profile = {"name": "Laveissière « bourg »", "population": 800, "facts": ["rural"], "opening_m": 12.5}
    state = {"themes": ["ecole"], "shown_offers": ["anah-x"], "counts": {1: "un", 2.5: "deux", True: "vrai", None: "rien"}}
    retrieved = [{"offer_id": "a", "adjustments": {"named": 0.02}, "final_score": 0.064787, "dense_similarity": 0.4018,
                  "eligibility": {"missing": ["le type de collectivité (commune, intercommunalité…)"], "free": None}},
                 {"offer_id": "b", "title": "Mobilité 🚲", "bm25_score": 1e-05, "nan": float("nan")}]
    db.save_turn("j" * 32, {"profile": profile, "state": state},
                 {"message": "École ?", "answer": "x", "kind": "answer", "generator": "grounded", "referrals": [],
                  "retrieved": retrieved, "profile": profile, "themes": ["ecole"]})
    expected = json.loads(json.dumps({"profile": profile, "state": state, "retrieved": retrieved}).replace("NaN", "null"))
    with db.session() as session:
        conversation = session.get(Conversation, "j" * 32)
        turn = session.scalars(select(Turn).where(Turn.conversation_id == "j" * 32)).one()
        assert {"profile": conversation.profile, "state": conversation.state, "retrieved": turn.retrieved} == expected
        assert turn.retrieved[1]["nan"] is None and turn.retrieved[1]["bm25_score"] == 1e-05
    with db.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT retrieved, profile FROM turns").one()
    assert [json.loads(raw[0]), json.loads(raw[1])] == [expected["retrieved"], expected["profile"]]
    assert "Mobilité 🚲" in raw[0]  # stored as UTF-8, not as \\u escapes


def test_purge_removes_conversations_past_retention(tmp_path):
    from assistant.privacy import purge

    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.create_schema()
    old, recent = _old_conversation(db, 200), _old_conversation(db, 10)
    assert purge(db, 180) == 1
    with db.session() as session:
        assert session.get(Conversation, old) is None and session.get(Conversation, recent) is not None
        assert session.scalars(select(Turn).where(Turn.conversation_id == old)).all() == []


def test_purge_runs_at_startup(settings, embeddings, indexed, tmp_path):
    from api.app import create_app
    from assistant.service import Assistant
    from tests.conftest import LiveServer, free_port

    local = settings.model_copy(update={"data_dir": tmp_path, "conversation_retention_days": 30})
    db = Database(local.sqlalchemy_url)
    db.create_schema()
    old = _old_conversation(db, 45)
    with LiveServer(create_app(local, Assistant(local, embeddings=embeddings, database=db)), free_port()):
        for _ in range(100):
            with db.session() as session:
                if session.get(Conversation, old) is None:
                    break
            import time

            time.sleep(0.05)
        else:
            pytest.fail("startup purge did not run")


def test_cli_tokens_and_purge(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant import cli
    from assistant.config import get_settings

    monkeypatch.setenv("AIGUILLAGE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        created = runner.invoke(cli.app, ["tokens", "create", "--role", "agent", "--name", "Agent Cantal"])
        assert created.exit_code == 0, created.output
        secret = created.stdout.strip().splitlines()[0]
        assert secret.startswith("aig_")
        listed = runner.invoke(cli.app, ["tokens", "list"])
        assert "Agent Cantal" in listed.stdout and secret not in listed.stdout
        db = Database(get_settings().sqlalchemy_url)
        from assistant.auth import authenticate

        assert authenticate(db, secret).role == "agent"
        assert runner.invoke(cli.app, ["tokens", "create", "--role", "chef", "--name", "X"]).exit_code == 2
        assert runner.invoke(cli.app, ["tokens", "revoke", "1"]).exit_code == 0
        assert authenticate(db, secret) is None
        _old_conversation(db, 400)
        purged = runner.invoke(cli.app, ["purge"])
        assert purged.exit_code == 0 and purged.stdout.startswith("1 conversation")
    finally:
        get_settings.cache_clear()


def test_migrations_build_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from assistant.store import Base

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.create_schema()
    db.create_schema()  # idempotent
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == _head()


def test_the_head_read_without_alembic_is_alembics_and_an_older_database_is_still_upgraded(tmp_path):
    """create_schema skips alembic when the database is stamped at head_revision(): that head must be
    alembic's own, and a database one migration behind must still be migrated."""
    from assistant.store import head_revision

    assert head_revision() == _head()
    db = Database(f"sqlite:///{tmp_path / 'behind.db'}")
    db.create_schema()
    _downgrade(db, "-1")
    assert "catalogue" not in {c["name"] for c in inspect(db.engine).get_columns("turns")}
    db.create_schema()
    assert "catalogue" in {c["name"] for c in inspect(db.engine).get_columns("turns")}
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == _head()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from assistant.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_a_database_made_before_migrations_is_adopted(tmp_path):
    from assistant.store import Base, Feedback

    db = Database(f"sqlite:///{tmp_path / 'legacy.db'}")
    Base.metadata.create_all(db.engine, tables=[Conversation.__table__, Turn.__table__, Feedback.__table__])
    with db.engine.begin() as connection:  # columns added by later migrations did not exist then
        connection.exec_driver_sql("ALTER TABLE turns DROP COLUMN clarification")
    kept = _old_conversation(db, 1)
    with db.engine.begin() as connection:  # nor the console's search column and index (0005), nor 0006's
        connection.exec_driver_sql("ALTER TABLE conversations DROP COLUMN search_text")
        connection.exec_driver_sql("DROP INDEX ix_turns_kind")
        connection.exec_driver_sql("ALTER TABLE turns DROP COLUMN catalogue")
    db.create_schema()
    assert {"api_tokens", "reviews", "alembic_version"} <= set(inspect(db.engine).get_table_names())
    with db.session() as session:
        assert session.get(Conversation, kept) is not None
        session.execute(update(Conversation).values(review_status="validated"))


def _downgrade(db: Database, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    from assistant.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, target)


def test_migrations_downgrade_to_nothing(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    db.create_schema()
    _downgrade(db, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_writers_of_two_processes_and_their_threads_all_land_in_one_sqlite_file(tmp_path):
    """Two processes (two workers), eight threads each, saving turns of one conversation at once into one
    SQLite file: every turn is stored with its own number, none waits in the spool (the writers queue on
    the file's writer lock, `<database>.writer`, instead of failing or polling SQLite's busy handler)."""
    import subprocess
    import sys

    database = tmp_path / "w.db"
    url = f"sqlite:///{database}"
    Database(url).create_schema()
    writer = (
        "import concurrent.futures, json\nfrom assistant.store import Database\n"
        f"db = Database({url!r})\n"
        "turn = {'message': 'question', 'answer': 'x', 'kind': 'answer', 'generator': 'grounded', 'referrals': [],"
        " 'retrieved': [], 'profile': {}, 'themes': []}\n"
        "with concurrent.futures.ThreadPoolExecutor(8) as pool:\n"
        "    numbers = list(pool.map(lambda _: db.save_turn('w' * 32, {'profile': {}, 'state': {}}, turn), range(40)))\n"
        "print(json.dumps(sorted(numbers)))\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    printed = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], printed
    numbers = sorted(n for out in printed for n in json.loads(out))
    assert numbers == list(range(1, 81))
    assert not any((tmp_path / "pending-turns").glob("*")) and Path(f"{database}.writer").exists()
    with Database(url).session() as session:
        assert len(session.scalars(select(Turn.number).where(Turn.conversation_id == "w" * 32)).all()) == 80
