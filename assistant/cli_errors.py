"""French messages for the usage errors of the `aiguillage` command (a missing argument, a value that is
not a number, an unknown option or command…).

Typer (typer==0.29.1, pinned: it vendors its own copy of Click and converts values with pydantic) writes
them in English. They are rewritten here from what the exception carries — its class, the parameter,
the option's name, and for a value that does not convert, the pydantic error *type* with its context
(documented codes: https://docs.pydantic.dev/latest/errors/validation_errors/) — not from its English
text, except for the two plain usage errors Click only spells as text (unknown command, extra
argument), recognised by their pinned templates. tests/test_cli_french.py makes every kind of error
on every command of the tree and reads the screen.
"""

from __future__ import annotations

import re

from typer._click import exceptions as click_errors

# pydantic error type -> what was expected, in French ({…}: the error's context).
EXPECTED = {
    "int_parsing": "un nombre entier",
    "int_type": "un nombre entier",
    "int_from_float": "un nombre entier",
    "float_parsing": "un nombre",
    "float_type": "un nombre",
    "bool_parsing": "oui ou non (true/false, 1/0)",
    "bool_type": "oui ou non (true/false, 1/0)",
    "greater_than_equal": "une valeur supérieure ou égale à {ge}",
    "greater_than": "une valeur supérieure à {gt}",
    "less_than_equal": "une valeur inférieure ou égale à {le}",
    "less_than": "une valeur inférieure à {lt}",
    "literal_error": "une de ces valeurs : {expected}",
    "enum": "une de ces valeurs : {expected}",
}
UNKNOWN_COMMAND = re.compile(r"No such command '(?P<name>.*?)'\.(?: Did you mean '(?P<close>.*?)'\?)?")
EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)")
# Labels of typer.rich_utils drawn around an error (read when the error is printed).
ERROR_SCREEN_LABELS = {
    "ERRORS_PANEL_TITLE": "Erreur",
    "RICH_HELP": "Aide : [blue]{command_path} {help_option}[/]",
}


class FrenchUsageError(click_errors.UsageError):
    """A usage error whose message is already French (exit code 2, like Click's)."""


def french_usage_error(error: click_errors.UsageError, ctx) -> FrenchUsageError:
    """The same error with its message in French, for its command's context (`ctx` when the error has
    none, as the option parser's errors: so that the usage line and the help hint are drawn)."""
    return FrenchUsageError(_message(error), ctx=error.ctx or ctx)


def _message(error: click_errors.UsageError) -> str:
    if isinstance(error, click_errors.MissingParameter):
        kind = "Argument obligatoire manquant" if _is_argument(error) else "Option obligatoire manquante"
        return f"{kind} : « {_name(error)} »."
    if isinstance(error, click_errors.BadParameter):
        # Raised by our own commands with a French message and a name (typer.BadParameter(…, param_hint=…)),
        # or by the conversion of a value (then with the parameter and pydantic's error as its cause).
        if error.param is None:
            return f"Valeur invalide pour « {_name(error)} » : {error.message}"
        return f"Valeur invalide pour « {_name(error)} » : {_expected(error)}."
    if isinstance(error, click_errors.NoSuchOption):
        close = error.possibilities or []
        hint = f" Vouliez-vous dire {' ou '.join(f'« {name} »' for name in close)} ?" if close else ""
        return f"Option inconnue : « {error.option_name} ».{hint}"
    if isinstance(error, click_errors.BadOptionUsage):
        if "does not take a value" in error.message:
            return f"L'option « {error.option_name} » ne prend pas de valeur."
        return f"L'option « {error.option_name} » attend une valeur."
    if match := UNKNOWN_COMMAND.fullmatch(error.message):
        close = f" Vouliez-vous dire « {match['close']} » ?" if match["close"] else ""
        return f"Commande inconnue : « {match['name']} ».{close}"
    if match := EXTRA_ARGUMENTS.fullmatch(error.message):
        return f"Argument(s) en trop : {match['args']}."
    return "Commande mal formée."


def _expected(error: click_errors.BadParameter) -> str:
    cause = error.__cause__
    problems = cause.errors() if hasattr(cause, "errors") else []
    if not problems:
        return "valeur non reconnue"
    problem = problems[0]
    expected = EXPECTED.get(problem["type"])
    given = f"« {problem['input']} » reçu" if isinstance(problem.get("input"), str) else None
    if expected is None:
        return "valeur non reconnue" + (f" ({given})" if given else "")
    text = expected.format(**problem.get("ctx", {})) + " est attendu" + ("e" if expected.startswith("une ") else "")
    return text + (f", {given}" if given else "")


def _is_argument(error: click_errors.BadParameter) -> bool:
    return error.param is not None and error.param.param_type_name == "argument"


def _name(error: click_errors.BadParameter) -> str:
    """The parameter as the user typed or reads it: its longest option name (« --scale »), or the
    argument's name."""
    if error.param_hint:
        hints = [error.param_hint] if isinstance(error.param_hint, str) else list(error.param_hint)
        return " / ".join(hints)
    param = error.param
    if param is None:
        return "?"
    if param.param_type_name == "option" and param.opts:
        return max(param.opts, key=len)
    return param.name
