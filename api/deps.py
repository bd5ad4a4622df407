"""Shared request plumbing: the assistant instance and French input checks."""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.models import InvalidMessage, message_text
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


def check_message(message: str, limit: int) -> str:
    """The question without surrounding blanks (api.models.message_text); French 422 when it is blank
    or longer than `limit` characters."""
    try:
        return message_text(message, limit)
    except InvalidMessage as exc:
        raise HTTPException(422, str(exc)) from None
