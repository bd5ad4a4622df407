"""POST /v1/chat/stream: the same turn as /v1/chat, streamed as Server-Sent Events.

Events, in order: `meta` (referrals, citations, clarification, profile… everything but the text),
`delta` ({"text"}) as many times as the answer has pieces, then `done` (the full ChatResponse body,
whose `answer` is authoritative). On failure: `error` ({"detail"} in French). When the client goes
away the turn stops at the next step and is not stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator

import anyio
from fastapi import APIRouter, Depends, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import check_conversation, check_message, get_assistant
from api.models import ChatRequest
from api.presenters import chat_response, cited_offers
from assistant.answer import GeneratedAnswer, StreamFormatter
from assistant.retrieval import IndexNotReady
from assistant.service import Assistant, TurnResult

log = logging.getLogger("aiguillage.api.stream")
router = APIRouter(prefix="/v1", tags=["chat"])
_END = object()
ERROR_TEXT = "La réponse n'a pas pu être produite. Réessayez dans un instant ; si le problème persiste, signalez-le."


def meta_payload(result: TurnResult) -> dict:
    """The ChatResponse fields known before the answer text is generated."""
    placeholder = dataclasses.replace(result, answer=result.answer or GeneratedAnswer("", "grounded"))
    body = chat_response(placeholder).model_dump(mode="json")
    return {k: v for k, v in body.items() if k not in {"answer", "generator", "fallback_reason"}}


def _event(name: str, payload: dict) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(payload, ensure_ascii=False), event=name)


async def sse_events(
    events: Iterator[tuple[str, object]], request: Request, fmt: str = "markdown"
) -> AsyncIterator[ServerSentEvent]:
    formatter = StreamFormatter({}, fmt)
    try:
        while True:
            if await request.is_disconnected():
                log.info("client left, turn abandoned")
                return
            kind, payload = await anyio.to_thread.run_sync(next, events, (_END, None))
            if kind is _END:
                return
            if kind == "start":
                formatter = StreamFormatter(cited_offers(payload), fmt)
                yield _event("meta", meta_payload(payload))
            elif kind == "delta":
                text = formatter.feed(payload)
                if text:
                    yield _event("delta", {"text": text})
            elif kind == "done":
                rest = formatter.flush()
                if rest:
                    yield _event("delta", {"text": rest})
                yield _event("done", chat_response(payload, fmt).model_dump(mode="json"))
    except IndexNotReady as exc:
        yield _event("error", {"detail": f"Service en cours de préparation : {exc}"})
    except Exception:
        log.exception("streamed turn failed")
        yield _event("error", {"detail": ERROR_TEXT})
    finally:
        events.close()


@router.post(
    "/chat/stream",
    summary="Poser une question et recevoir la réponse au fil de l'eau (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Événements meta, delta…, done (ou error)."}},
)
async def chat_stream(body: ChatRequest, request: Request, assistant: Assistant = Depends(get_assistant)) -> EventSourceResponse:
    message = check_message(body.message, assistant.settings.max_message_chars)
    await anyio.to_thread.run_sync(check_conversation, assistant, body.conversation_id)
    profile, notice = await anyio.to_thread.run_sync(assistant.profile_and_notice, body.profile, body.insee)
    log.info("streamed question (conversation %s): %.300s", body.conversation_id or "new", message)
    events = assistant.chat_stream(message, body.conversation_id, profile, notice)
    return EventSourceResponse(sse_events(events, request, body.format), ping=15, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
