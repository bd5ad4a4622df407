"""`aiguillage ask` without a server: the server's answer, with only what a turn needs loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer

from tests.conftest import CORPUS, free_port

QUESTIONS = [
    "Bonjour, je suis maire de Laveissière dans le Cantal, 450 habitants. On voudrait transformer l'ancienne "
    "école en maison de santé. Qui peut nous aider à monter le projet ?",
    "Quelle aide pour rénover l'éclairage public ?",
    "Notre intercommunalité veut un réseau de chaleur biomasse",
    "Comment contester mon avis de taxe foncière ?",
]
# Modules a local answer does not need: the web framework, the migrations tool (database already at
# the latest revision), Chroma (the index generation has its exact vector mirror: assistant.mirror) and
# httpx (the running server is looked for with the standard library's client).
NOT_NEEDED = ("fastapi", "starlette", "alembic", "chromadb", "httpx")


def test_ask_without_a_server_gives_the_servers_answer_and_skips_the_web_framework_and_chroma(settings, http):
    """Each question asked through `aiguillage ask --json` with nothing listening on its port gets the body
    POST /v1/chat gives (same referrals, text, profile, doors…; only the new conversation's id differs)."""
    probe = (
        "import json, sys\nfrom typer.testing import CliRunner\nfrom assistant.cli import app\n"
        f"bodies = [json.loads(CliRunner().invoke(app, ['ask', '--json', q]).stdout) for q in {QUESTIONS!r}]\n"
        f"print(json.dumps({{'bodies': bodies, 'loaded': sorted(m for m in {NOT_NEEDED!r} if m in sys.modules)}}))"
    )
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(settings.data_dir), "AIGUILLAGE_CORPUS_DIR": str(CORPUS),
           "AIGUILLAGE_PORT": str(free_port())}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    local = json.loads(run.stdout.strip().splitlines()[-1])
    assert local["loaded"] == []
    for question, body in zip(QUESTIONS, local["bodies"], strict=True):
        served = http.post("/v1/chat", json={"message": question}).json()
        assert body.pop("conversation_id") != served.pop("conversation_id")
        assert body == served, question


def test_ask_shows_the_running_servers_french_error(server, monkeypatch, capsys):
    """A question the running server refuses (blank: 422) ends with its French message and exit code 2."""
    from urllib.parse import urlparse

    from assistant import cli

    url = urlparse(server.url)
    settings = cli.get_settings().model_copy(update={"host": url.hostname, "port": url.port})
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "_ask_locally", lambda *a: pytest.fail("the running server was not used"))
    with pytest.raises(typer.Exit) as ended:
        cli.ask("   ", as_json=False, conversation=None)
    assert ended.value.exit_code == 2 and "Le message est vide" in capsys.readouterr().err
