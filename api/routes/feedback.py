"""Public conversation routes used by the widget: feedback on an answer, and restoring a
conversation after a page reload (the conversation id is the capability)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_assistant
from api.models import CONVERSATION_ID, MessageId
from api.presenters import public_body
from assistant import console
from assistant.service import Assistant

router = APIRouter(prefix="/v1", tags=["conversation"])

Reason = Literal["offre-expiree", "mauvais-territoire", "mauvais-theme", "mauvais-partenaire", "autre"]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str = Field(pattern=CONVERSATION_ID)
    message_id: MessageId = Field(description="Numéro de la réponse dans la conversation (message_id de /v1/chat).")
    rating: Literal["up", "down"]
    reason: Reason | None = Field(None, description="Pour un avis négatif : pourquoi.")
    comment: str | None = Field(None, max_length=1000)


class FeedbackResponse(BaseModel):
    feedback_id: int
    message: str


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, summary="Donner son avis sur une réponse")
def feedback(body: FeedbackRequest, assistant: Assistant = Depends(get_assistant)) -> FeedbackResponse:
    try:
        feedback_id = console.record_feedback(
            assistant.db, body.conversation_id, body.message_id, body.rating, body.reason, body.comment
        )
    except console.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except console.Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    return FeedbackResponse(feedback_id=feedback_id, message="Merci pour votre retour.")


@router.get("/conversations/{conversation_id}/public", summary="Reprendre sa conversation (widget)")
def public_conversation(
    conversation_id: str = Path(pattern=CONVERSATION_ID), assistant: Assistant = Depends(get_assistant)
) -> dict:
    try:
        body = console.public_conversation(assistant.db, conversation_id)
    except console.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return public_body(body, assistant.handle.current().offers)
