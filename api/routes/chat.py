from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.deps import check_conversation, check_message, get_assistant
from api.models import ChatRequest, ChatResponse
from api.presenters import chat_response
from assistant.service import Assistant

router = APIRouter(prefix="/v1", tags=["chat"])


@router.post("/chat", response_model=ChatResponse, summary="Poser une question et recevoir une orientation")
def chat(body: ChatRequest, assistant: Assistant = Depends(get_assistant)) -> Response:
    message = check_message(body.message, assistant.settings.max_message_chars)
    check_conversation(assistant, body.conversation_id)
    profile, notice = assistant.profile_and_notice(body.profile, body.insee)
    result = chat_response(assistant.chat(message, body.conversation_id, profile, notice), body.format)
    # The body is a ChatResponse built and validated once (api.presenters): serialised as is, without
    # FastAPI's second validation against response_model (which stays the schema of /openapi.json).
    return Response(result.model_dump_json(), media_type="application/json")
