"""A screened pattern answers as the bare pattern (assistant/patterns.py).

Generated from the patterns themselves: every Screened pattern a turn runs (who is asking, facts, stage,
need, project facts, guardrails, follow-ups, the signpost cards' names, addresses and département codes in
the territory's reading) against the texts a turn reads — the evaluation's questions and the real project
titles of evals/datasets, as typed and folded as the stages fold them, and a few addresses —
gives the bare pattern's matches, and every match holds one of the pattern's required literals (what makes
skipping a text without them exact).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

import assistant.facts
import assistant.guardrails
import assistant.pipeline.understand
import assistant.profile
import assistant.territory
from assistant.everyday import SignpostFinder
from assistant.patterns import Screened, required_literals, screened
from assistant.text import fold
from ingest.corpus import load_corpus, load_signposts, load_themes

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "evals" / "datasets"
# Every question of the evaluation sets; one title in 8 of the two project-title files (≈ 4,000).
QUESTION_FILES = ["questions-projets.csv", "questions-parlementaires.csv", "hors-champ-particuliers.csv",
                  "hors-champ-collectivites.csv", "portes.csv", "portes-tenus.csv", "portes-entrainement.csv",
                  "portes-entrainement-courant.csv"]
TITLE_FILES = {"dotations-2018-projets.csv": "titre", "fonds-vert-2023-projets.csv": "nom_du_projet"}


def _rows(name: str) -> list[dict]:
    with open(DATASETS / name, encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def _texts() -> list[str]:
    texts = [r["question"] for name in QUESTION_FILES for r in _rows(name)]
    texts += [t for line in (DATASETS / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
              for t in json.loads(line)["turns"]]
    texts += [r[column] for name, column in TITLE_FILES.items() for r in _rows(name)[::8]]
    texts += EXTRA
    # As the stages read them: folded, typographic apostrophes as ASCII (most patterns), or as typed (territory).
    return sorted({fold(t).replace("’", "'") for t in texts if t} | set(texts))


# Addresses, mails and département codes, which the questions above seldom hold.
EXTRA = ["Voir https://www.ecologie.gouv.fr/fonds-vert et www.banquedesterritoires.fr", "Écrire à contact@mairie-aurillac.fr",
         "Le site aides-territoires.beta.gouv.fr/aides/ recense", "Une commune de Corse (2A), Ajaccio 2A ou 2B ?",
         "Notre village (15) près de Saint-Flour", "le guichet sur demarches.net, puis l'ADEME.eu", "département 2A"]


TEXTS = _texts()


def _screened(value, found: dict[str, Screened], where: str) -> None:
    if isinstance(value, Screened):
        found[where] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _screened(item, found, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _screened(item, found, f"{where}[{i}]")


def _every_screened() -> dict[str, Screened]:
    found: dict[str, Screened] = {}
    for module in (assistant.profile, assistant.facts, assistant.guardrails, assistant.pipeline.understand, assistant.territory):
        for name, value in vars(module).items():
            _screened(value, found, f"{module.__name__}.{name}")
    themes = load_themes(ROOT / "corpus")
    cards = load_signposts(ROOT / "corpus", themes, set(load_corpus(ROOT / "corpus").offers))
    finder = SignpostFinder(list(cards.values()), themes, set(), embeddings=None)
    _screened(finder._names, found, "SignpostFinder._names")
    return found


SCREENED = _every_screened()


def test_the_patterns_of_a_turn_are_screened():
    assert len(TEXTS) > 3000
    assert len(SCREENED) >= 50
    # Most have literals to screen on: otherwise the screen would cost without sparing anything.
    assert sum(s.literals is not None for s in SCREENED.values()) >= 0.9 * len(SCREENED)


@pytest.mark.parametrize("where", sorted(SCREENED))
def test_a_screened_pattern_finds_what_the_bare_pattern_finds(where):
    screen = SCREENED[where]
    matched = 0
    for text in TEXTS:
        bare = [m.span() for m in screen.pattern.finditer(text)]
        assert [m.span() for m in screen.finditer(text)] == bare, text
        first = screen.search(text)
        assert (first.span() if first else None) == (bare[0] if bare else None), text
        for start, end in bare:
            matched += 1
            if screen.literals is not None:  # every match holds a required literal
                assert any(literal in text[start:end] for literal in screen.literals), (text, start, end)
    assert screen.literals is None or all(literal for literal in screen.literals)


@pytest.mark.parametrize("pattern, literals", [
    (r"\bqpv\b|quartiers? prioritaires?|politique de la ville", (" prioritaire", "politique de la ville", "qpv")),
    (r"montagne|\bstation de ski|massif", ("massif", "montagne", "station de ski")),
    (r"(notre|ma) (commune|ville)", ("ma commune", "ma ville", "notre commune", "notre ville")),  # alternatives of literals multiply
    (r"petites? villes? de demain", (" de demain",)),
    (r"(?<!je )\b(invente|imagine)z?\b", ("imagine", "invente")),
    (r"\S+\.(?:gouv|fr|com)(?:/\S*)?\b", (".com", ".fr", ".gouv")),  # the dot and each ending
    (r"(?=.*pont)\w+", ("pont",)),  # a lookahead's text is in the string
    (r"maire|maire de|adjointe? au maire", ("maire",)),  # « maire de » holds « maire »
])
def test_required_literals_are_read_from_the_pattern(pattern, literals):
    assert required_literals(re.compile(pattern)) == literals


@pytest.mark.parametrize("pattern", [
    r"\d+\s*\w",  # character classes only
    r"(le |la )?commune|\w+",  # an alternative without a literal
    r"(abc)?",  # optional
    r"(?i)commune",  # case-insensitive: « Commune » holds no « commune »
    r"x{0,3}y?",
])
def test_a_pattern_that_requires_no_literal_is_not_screened(pattern):
    screen = screened(pattern)
    assert screen.literals is None
    for text in ["Commune de 3 €", "", "xx", "abc commune"]:
        assert [m.span() for m in screen.finditer(text)] == [m.span() for m in re.finditer(pattern, text)]
