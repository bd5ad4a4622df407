"""What the assistant's install brings: evaluation and model-training packages live in the `eval`
extra of pyproject.toml, the assistant and the benchmark never import them, and the commands that
need them say in French which extra to install when it is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import EVAL_EXTRA, app

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of pinned requirements (« name[extra]==1.2 » -> « name »)."""
    return {re.split(r"[\[=<>!~ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_cli_checks_exactly_the_eval_extra_and_the_base_install_has_none_of_it():
    extra = _names(PYPROJECT["project"]["optional-dependencies"]["eval"])
    assert extra == set(EVAL_EXTRA.values())
    assert not extra & _names(PYPROJECT["project"]["dependencies"])
    assert "aiguillage[eval," in " ".join(PYPROJECT["project"]["optional-dependencies"]["test"]), "tests and CI need the extra"


def test_every_dependency_is_pinned_exactly():
    optional = PYPROJECT["project"]["optional-dependencies"]
    for requirement in PYPROJECT["project"]["dependencies"] + [r for group in optional.values() for r in group]:
        assert requirement.startswith("aiguillage[") or re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", requirement), requirement


def test_neither_the_assistant_nor_the_benchmark_imports_the_eval_extra_or_torch():
    """The default offline path (server, `ask`, ingest, `aiguillage bench` and its load and peer
    clients) runs on the base install: torch stays in the `st` extra, the eval extra unused."""
    watched = sorted({*EVAL_EXTRA, "torch", "sentence_transformers"})
    probe = (
        "import sys\nimport api.app, assistant.cli, assistant.service, ingest.indexer, evals.bench, evals.load, evals.peer\n"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(EVAL_EXTRA))
@pytest.mark.parametrize("command", [["eval", "--out", "{tmp}"], ["scope", "train"]], ids=["eval", "scope-train"])
def test_a_command_that_needs_the_eval_extra_names_it_in_french_when_missing(monkeypatch, tmp_path, module, command):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import and find_spec both fail
    result = CliRunner().invoke(app, [part.format(tmp=tmp_path) for part in command])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, no traceback
    assert "option « eval »" in result.stderr and EVAL_EXTRA[module] in result.stderr
    assert 'pip install -e ".[eval]"' in result.stderr
    assert not list(tmp_path.iterdir()), "nothing ran"


def test_the_door_training_names_the_eval_extra_in_french_when_missing(tmp_path):
    """`python -m evals.door_training` without scikit-learn: exit 2 with the French message, no traceback
    (it used to fail in the middle of its first fit)."""
    blocker = tmp_path / "sitecustomize.py"  # as if scikit-learn were not installed
    blocker.write_text("import sys\nsys.modules['sklearn'] = None\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "evals.door_training", "other-leads"], capture_output=True,
                            text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "option « eval »" in result.stderr and "scikit-learn" in result.stderr
