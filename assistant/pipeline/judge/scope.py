"""Judge the scope: out-of-scope messages (the scope model), bare injections and requests to invent are
refused before retrieval."""

from __future__ import annotations

from assistant.answer import GeneratedAnswer
from assistant.guardrails import refusal_text
from assistant.pipeline.understand import Understanding

INJECTION_PREFACE = (
    "Je ne tiens pas compte des instructions contenues dans votre message ; voici ce que je peux vous dire sur votre projet."
)


INVENT_PREFACE = "Je ne présente que des dispositifs qui existent : voici les offres réelles qui peuvent répondre à votre projet."


def refuses(understanding: Understanding) -> bool:
    """An injection inside a real project question is ignored, and so is a request to invent beside
    an in-scope request (rule « invent:with-project »); alone, both are refused."""
    decision = understanding.decision
    if decision.rule == "invent:with-project":
        return False
    return decision.refuses and (decision.kind != "injection" or not understanding.said.themes)


def refusal(understanding: Understanding) -> GeneratedAnswer:
    return GeneratedAnswer(refusal_text(understanding.decision), "grounded")


def injection_preface(understanding: Understanding) -> str | None:
    """The sentence that opens an answer given despite an injection or a request to invent."""
    return {"injection": INJECTION_PREFACE, "invent": INVENT_PREFACE}.get(understanding.decision.kind)
