"""Stage 1, normalise: the message as every later stage reads it."""

from __future__ import annotations


def normalise(message: str) -> str:
    """The message every stage reads (str -> str)."""
    return message
