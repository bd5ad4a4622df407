"""Conversations on a real PostgreSQL server, when one is given (CI starts one on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, text

from assistant.store import Database

URL = os.environ.get("AIGUILLAGE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="AIGUILLAGE_TEST_POSTGRES_URL not set (.ci/run sets it)")


def test_migrations_and_a_conversation_on_postgresql(postgres_url, settings, embeddings, indexed):
    from assistant.service import Assistant

    database = Database(postgres_url)
    database.create_schema()
    assert {"conversations", "turns", "feedback", "api_tokens", "reviews"} <= set(inspect(database.engine).get_table_names())
    assistant = Assistant(settings, embeddings=embeddings, database=database)
    first = assistant.chat("Je suis maire de Saint-Flour, on veut rénover l'éclairage public.")
    restarted = Assistant(settings, embeddings=embeddings, database=Database(postgres_url))
    follow_up = restarted.chat("qui je contacte ?", first.conversation_id)
    assert follow_up.profile.name == "Saint-Flour"
    assert "Préfecture du Cantal" in follow_up.answer.text


def test_concurrent_turns_on_postgresql_get_distinct_numbers(postgres_url):
    import concurrent.futures

    database = Database(postgres_url)
    database.create_schema()
    turn = {"message": "question", "answer": "réponse", "kind": "answer", "referrals": [], "retrieved": [],
            "profile": {}, "themes": [], "usage": {}}
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        numbers = list(pool.map(lambda _: database.save_turn("conversation-pg", {"state": {}}, turn), range(10)))
    assert sorted(numbers) == list(range(1, 11))  # the first ten even race to create the conversation
    database.engine.dispose()


def test_a_read_only_postgresql_spools_turns_and_feedback_gets_a_french_503(postgres_url, settings, embeddings, indexed, tmp_path):
    """Drill on PostgreSQL: a read-only server (a standby, default_transaction_read_only) refuses
    writes with its own error class; turns still wait in the spool and feedback gets the French 503."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from assistant.service import Assistant

    writable = Database(postgres_url, spool_dir=tmp_path / "pending-turns")
    writable.create_schema()
    first = Assistant(settings, embeddings=embeddings, database=writable).chat("Rénover l'éclairage public de Saint-Flour.")
    read_only = Database(postgres_url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20"),
                         spool_dir=tmp_path / "pending-turns")
    with TestClient(create_app(settings, Assistant(settings, embeddings=embeddings, database=read_only))) as client:
        follow_up = client.post("/v1/chat", json={"message": "qui je contacte ?", "conversation_id": first.conversation_id})
        assert follow_up.status_code == 200 and follow_up.json()["answer"]
        assert len(read_only.pending()) == 1
        rated = client.post("/v1/feedback", json={"conversation_id": first.conversation_id, "message_id": 1, "rating": "down"})
        assert rated.status_code == 503 and rated.json()["detail"].startswith("Base de données momentanément indisponible")
    assert writable.flush_pending() == 1 and not writable.pending()
    with writable.session() as session:
        numbers = session.execute(text("SELECT number, message FROM turns ORDER BY number")).all()
    assert [tuple(row) for row in numbers] == [(1, "Rénover l'éclairage public de Saint-Flour."), (2, "qui je contacte ?")]
    for database in (writable, read_only):
        database.engine.dispose()
