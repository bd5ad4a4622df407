"""Answer generators beyond the grounded one, and the builder that picks one from the settings."""

from __future__ import annotations

from assistant.answer import AnswerGenerator, GroundedGenerator
from assistant.config import Settings


def build_generator(settings: Settings) -> AnswerGenerator:
    """The grounded generator unless an LLM endpoint is configured (AIGUILLAGE_LLM_BASE_URL)."""
    if not settings.llm_base_url:
        return GroundedGenerator()
    if not settings.llm_model:
        raise ValueError("AIGUILLAGE_LLM_MODEL est requis quand AIGUILLAGE_LLM_BASE_URL est défini")
    from assistant.generators.llm import LLMGenerator  # langchain-openai is only imported when used

    return LLMGenerator(settings, grounded=GroundedGenerator())


__all__ = ["build_generator"]
