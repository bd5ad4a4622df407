"""Judge the scope: out-of-scope messages and bare injections are refused before retrieval."""

from __future__ import annotations

from assistant.answer import GeneratedAnswer
from assistant.guardrails import refusal_text
from assistant.pipeline.understand import Understanding

INJECTION_PREFACE = (
    "Je ne tiens pas compte des instructions contenues dans votre message ; voici ce que je peux vous dire sur votre projet."
)


def refuses(understanding: Understanding) -> bool:
    """An injection inside a real project question is ignored; an injection alone is refused."""
    decision = understanding.decision
    return decision.refuses and (decision.kind != "injection" or not understanding.said.themes)


def refusal(understanding: Understanding) -> GeneratedAnswer:
    return GeneratedAnswer(refusal_text(understanding.decision), "grounded")


def injection_preface(understanding: Understanding) -> str | None:
    return INJECTION_PREFACE if understanding.decision.kind == "injection" else None
