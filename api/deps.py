"""Shared request plumbing: the assistant instance and French input checks."""

from __future__ import annotations

import re

from fastapi import HTTPException, Request

from assistant.service import Assistant


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


UNKNOWN_CONVERSATION = (
    "Conversation inconnue : l'identifiant est donné par le serveur (champ conversation_id de la première "
    "réponse) ; la conversation a peut-être été supprimée. Envoyez la question sans conversation_id pour en "
    "commencer une nouvelle."
)


def check_conversation(assistant: Assistant, conversation_id: str | None) -> None:
    """Only ids the server issued are accepted: an unknown one is a 404 (never adopted as a new id)."""
    if conversation_id is not None and not assistant.db.conversation_known(conversation_id):
        raise HTTPException(404, UNKNOWN_CONVERSATION)


# A question has at least one visible character: not white space, not a control character, not a BOM.
# The class means the same in Python's `re` and in the ECMA regexes of JSON Schema, so the OpenAPI
# spec (api/openapi.py) states exactly the check made here.
VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f\ufeff]"


def check_message(message: str, limit: int) -> str:
    """The question without surrounding blanks; French 422 when it is blank or longer than `limit` characters."""
    text = message.strip()
    if not re.search(VISIBLE, text):
        raise HTTPException(422, "Le message est vide : posez votre question en quelques mots.")
    if len(text) > limit:
        raise HTTPException(422, f"Le message est trop long ({len(text)} caractères, {limit} au maximum).")
    return text
