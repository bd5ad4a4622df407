"""Conversations on a real PostgreSQL server, when one is given (CI starts one on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect

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
