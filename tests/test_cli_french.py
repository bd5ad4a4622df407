"""The `aiguillage` command speaks French: every command, group and option of the command tree (walked,
not listed by hand) has a help text, none of them English, the --help option's included, and every help
screen reads in French (Typer's labels too; the type names, <str>, <path>…, are left as Typer writes them),
and so does every kind of usage error, made on every command."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from assistant.cli import HELP_OPTION_TEXT, app

# Words of English that French help texts do not use (Typer's « Show this message and exit. » has four).
ENGLISH = {"the", "this", "that", "show", "exit", "and", "with", "from", "of", "to", "is", "are", "be", "will",
           "your", "when", "which", "if", "it", "message"}
# And the labels of Typer's own help screens (« Usage: », « Commands », « COMMAND [ARGS]... », « [required] »…).
SCREEN_ENGLISH = ENGLISH | {"usage", "commands", "command", "args", "required", "default", "env", "var", "deprecated"}


def _tree() -> list[tuple[tuple[str, ...], object, object]]:
    """(path of names, command, its context) for the root and every group and command below it."""
    root = typer.main.get_command(app)
    found = []

    def walk(path: tuple[str, ...], command, parent) -> None:
        ctx = typer.Context(command, info_name=path[-1] if path else "aiguillage", parent=parent, resilient_parsing=True)
        found.append((path, command, ctx))
        for name in getattr(command, "list_commands", lambda ctx: [])(ctx):
            walk((*path, name), command.get_command(ctx, name), ctx)

    walk((), root, None)
    return found


TREE = _tree()


def _english(text: str, words: set[str] = ENGLISH) -> set[str]:
    """The English words of `text`, option names (« --help ») and type names (« <bool> ») aside."""
    text = re.sub(r"--[a-z-]+|<[a-z]+>", " ", text.lower())
    return {word for word in re.findall(r"[a-z]+", text) if word in words}


def test_the_walk_finds_every_command():
    paths = {" ".join(path) for path, _, _ in TREE}
    assert {"", "serve", "ask", "eval", "bench", "tokens", "tokens create", "corpus check", "scope train"} <= paths
    assert len(paths) >= 20


@pytest.mark.parametrize("path,command,ctx", TREE, ids=[" ".join(path) or "aiguillage" for path, _, _ in TREE])
def test_every_help_text_of_the_command_is_french(path, command, ctx):
    texts = {"la commande": command.help}
    texts |= {f"le paramètre {param.name}": getattr(param, "help", None) for param in command.get_params(ctx)}
    help_option = command.get_help_option(ctx)
    assert help_option is not None and help_option.help == HELP_OPTION_TEXT
    for what, text in texts.items():
        assert text, f"{' '.join(path)} : {what} n'a pas d'aide"
        assert not _english(text), f"{' '.join(path)} : {what} a une aide en anglais : {text!r}"


@pytest.mark.parametrize("path", [path for path, _, _ in TREE], ids=[" ".join(path) or "aiguillage" for path, _, _ in TREE])
def test_the_help_screen_is_french(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert HELP_OPTION_TEXT in result.output and "Utilisation : " in result.output
    assert not _english(result.output, SCREEN_ENGLISH), result.output


# Usage errors: every kind, made on every command of the tree (assistant.cli_errors).
ERROR_ENGLISH = SCREEN_ENGLISH | {"try", "error", "missing", "invalid", "value", "such", "got", "unexpected", "extra",
                                  "input", "should", "valid", "integer", "number", "parse", "string", "requires",
                                  "take", "did", "mean", "possible", "parameter", "greater", "than", "equal"}
LEAVES = [(path, command, ctx) for path, command, ctx in TREE if not hasattr(command, "list_commands")]
GROUPS = [path for path, command, _ in TREE if hasattr(command, "list_commands")]


def _usage_error_cases() -> list[tuple[str, str, list[str], str]]:
    """(kind, case id, arguments, what the message must name) for each usage error a command allows."""
    cases = [("commande inconnue", " ".join(path) or "aiguillage", [*path, "inconnue"], "« inconnue »") for path in GROUPS]
    cases += [("option inconnue", " ".join(path) or "aiguillage", [*path, "--inconnue"], "« --inconnue »") for path in GROUPS]
    for path, command, ctx in LEAVES:
        name = " ".join(path)
        params = [p for p in command.get_params(ctx) if p.name != "help"]
        cases.append(("option inconnue", name, [*path, "--inconnue"], "« --inconnue »"))
        if any(p.required for p in params):
            cases.append(("obligatoire absent", name, list(path), "obligatoire manquant"))
        else:
            cases.append(("argument en trop", name, [*path, "de-trop"], "de-trop"))
        for option in (p for p in params if p.param_type_name == "option"):
            flag = max(option.opts, key=len)
            if option.is_flag:
                cases.append(("drapeau avec valeur", f"{name} {flag}", [*path, f"{flag}=1"], f"« {flag} »"))
                continue
            cases.append(("option sans valeur", f"{name} {flag}", [*path, flag], f"« {flag} »"))
            if option.type_descriptor.annotation in (int, float):
                cases.append(("pas un nombre", f"{name} {flag}", [*path, flag, "abc"], "« abc » reçu"))
            if option.min is not None:
                cases.append(("sous le minimum", f"{name} {flag}", [*path, flag, str(option.min - 1)], f"égale à {option.min}"))
    return cases


USAGE_ERRORS = _usage_error_cases()


def test_the_usage_errors_cover_every_kind():
    assert {kind for kind, *_ in USAGE_ERRORS} == {
        "commande inconnue", "option inconnue", "obligatoire absent", "argument en trop", "drapeau avec valeur",
        "option sans valeur", "pas un nombre", "sous le minimum"}


@pytest.mark.parametrize("args,named", [(args, named) for *_, args, named in USAGE_ERRORS],
                         ids=[f"{kind} : {case}" for kind, case, *_ in USAGE_ERRORS])
def test_a_usage_error_is_told_in_french(args, named):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Erreur" in result.output and "Utilisation : " in result.output, result.output
    assert named in result.output, result.output
    assert not _english(result.output, ERROR_ENGLISH), result.output
