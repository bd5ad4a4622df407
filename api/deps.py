"""Shared request plumbing: the assistant instance and French input checks."""

from __future__ import annotations

from fastapi import HTTPException, Request

from assistant.service import Assistant


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


def check_message(message: str, limit: int) -> str:
    text = message.strip()
    if not text:
        raise HTTPException(422, "Le message est vide : posez votre question en quelques mots.")
    if len(text) > limit:
        raise HTTPException(422, f"Le message est trop long ({len(text)} caractères, {limit} au maximum).")
    return text
