"""Regular expressions behind a screen of literals: most of a turn's patterns find nothing in its message.

A turn runs some sixty patterns over its folded message (who is asking, facts, stage, need, guardrails,
the doors' names), and most of them match nothing: the regex engine then tries every position of the
text, ≈ 1-4 µs a pattern. Every match of such a pattern contains one of a few literal strings, read from
the pattern itself by `required_literals` (« montagne|\\bstation de ski|massif » needs « montagne », « station
de ski » or « massif »): when the text holds none of them, a few substring tests (≈ 0.1 µs each) say
« no match » without running the engine. The answer is the bare pattern's, always: the screen only skips
texts the pattern cannot match (tests/test_patterns.py checks it on the evaluation's questions and the
real project titles of evals/datasets). A pattern with no such literal (character classes only, a
case-insensitive pattern) is run as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
# The standard library's own parser of regular expressions (what re.compile reads a pattern with).
from re import _constants as _sre
from re import _parser as _sre_parser

_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
MAX_LITERALS = 64  # alternatives a run of literals may multiply into (« .gouv », « .fr », « .com »…)


def _alternatives(op, argument) -> set[str] | None:
    """The strings one item matches when they are a few literal strings (« fr|com », « [ée] », « (le|la) »),
    else None."""
    if op is _sre.IN:
        chars = {chr(a) for o, a in argument if o is _sre.LITERAL}
        return chars if chars and len(chars) == len(argument) else None
    if op is _sre.SUBPATTERN:
        _, add_flags, _, sub = argument
        if add_flags & re.IGNORECASE:
            return None
        if all(o is _sre.LITERAL for o, _ in sub):
            return {"".join(chr(a) for _, a in sub)}
        return _alternatives(*sub[0]) if len(sub) == 1 else None
    if op is _sre.BRANCH:
        found: set[str] = set()
        for branch in argument[1]:
            if not all(o is _sre.LITERAL for o, _ in branch):
                return None
            found.add("".join(chr(a) for _, a in branch))
        return found
    return None


def _required(items) -> set[str] | None:
    """A set of strings one of which every match of the parsed sequence `items` contains, or None."""
    candidates: list[set[str]] = []
    run = {""}  # what the consecutive literals read so far can be: one string, or a few alternatives

    def flush() -> None:
        nonlocal run
        if "" not in run:  # an empty alternative leaves nothing required
            candidates.append(run)
        run = {""}

    for op, argument in items:
        if op is _sre.LITERAL:
            run = {r + chr(argument) for r in run}
            continue
        alternatives = _alternatives(op, argument)
        if alternatives is not None and len(run) * len(alternatives) <= MAX_LITERALS:
            run = {r + a for r in run for a in alternatives}
            continue
        flush()
        found = None
        if op is _sre.SUBPATTERN:
            _, add_flags, _, sub = argument
            found = None if add_flags & re.IGNORECASE else _required(sub)
        elif op is _sre.ATOMIC_GROUP:
            found = _required(argument)
        elif op is _sre.BRANCH:  # one literal of each alternative, or nothing is required
            branches = [_required(branch) for branch in argument[1]]
            found = None if any(b is None for b in branches) else set().union(*branches)
        elif op in _REPEATS:
            low, _, sub = argument
            found = _required(sub) if low >= 1 else None
        elif op is _sre.ASSERT:  # a lookahead or lookbehind that must hold: its text is in the string
            found = _required(argument[1])
        if found:
            candidates.append(found)
    flush()
    # The most selective: the longest shortest literal, then the longest on average.
    return max(candidates, key=lambda c: (min(map(len, c)), sum(map(len, c)) / len(c))) if candidates else None


def required_literals(pattern: re.Pattern) -> tuple[str, ...] | None:
    """Strings one of which is in every text `pattern` matches (str patterns, case-sensitive), none of
    them inside another, sorted; None when the pattern requires no literal (or is case-insensitive).

    Example: re.compile(r"\\bqpv\\b|quartiers? prioritaires?|politique de la ville") ->
    (" prioritaire", "politique de la ville", "qpv") (the parser factors « quartier » out of the optional « s »).
    """
    if not isinstance(pattern.pattern, str) or pattern.flags & re.IGNORECASE:
        return None
    found = _required(_sre_parser.parse(pattern.pattern, pattern.flags))
    if not found:
        return None
    return tuple(sorted(s for s in found if not any(other != s and other in s for other in found)))


class Screened:
    """A compiled pattern and its required literals: `search` and `finditer` give the pattern's own
    results, without running it on a text that holds none of the literals."""

    __slots__ = ("pattern", "literals")

    def __init__(self, pattern: re.Pattern):
        self.pattern = pattern
        self.literals = required_literals(pattern)

    def _may_match(self, text: str) -> bool:
        if self.literals is None:
            return True
        for literal in self.literals:
            if literal in text:
                return True
        return False

    def search(self, text: str) -> re.Match | None:
        return self.pattern.search(text) if self._may_match(text) else None

    def finditer(self, text: str) -> Iterator[re.Match]:
        return self.pattern.finditer(text) if self._may_match(text) else iter(())

    def sub(self, replacement, text: str) -> str:
        return self.pattern.sub(replacement, text) if self._may_match(text) else text

    def __repr__(self) -> str:
        return f"Screened({self.pattern.pattern!r}, literals={self.literals!r})"


def screened(pattern: str, flags: int = 0) -> Screened:
    """re.compile(pattern, flags) behind its screen of required literals (Screened)."""
    return Screened(re.compile(pattern, flags))
