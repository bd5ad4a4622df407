"""A small OpenAI-compatible chat server with scripted behaviours, for the LLM generator tests.

The behaviour is chosen by the model name, "behaviour" or "behaviour:argument":
  good               cites the first offer of the prompt and quotes its first figure
  unknown-citation   also cites an offer id that is in no context
  invented-figure    adds amounts and a rate found in no card
  leak               follows an injected instruction: recites its system prompt
  off-context:<id>   follows an injected instruction: recommends <id>, an offer not in the context
  slow               answers after 1.5 s
  flaky-429:<key>    429 (Retry-After: 0) on the first call for <key>, then a good answer
  down               500 on every call
  refusal            an OpenAI refusal (content null, refusal set)
  strict             422 when the request carries stream_options (as Mistral's API does)
  endless            streams a chunk every 50 ms for 20 s; records when the client goes away
  rewrite            answers a standalone question (follow-up rewriting)
Streaming is chosen by the request ("stream": true), as with any OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

REWRITTEN = "Quelles aides pour rénover l'école d'une commune de 800 habitants ?"
INVENTED = "Vous pouvez compter sur une subvention de 87 654 €, soit un taux de 93 % de la dépense, versée le 3 février 2031."


def create_fake_llm() -> FastAPI:
    app = FastAPI()
    app.state.requests = []  # (model, body, headers) in arrival order
    app.state.seen = {}
    app.state.disconnected = []
    app.state.completed = []

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        model = body["model"]
        app.state.requests.append((model, body, dict(request.headers)))
        behaviour, _, argument = model.partition(":")
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        human = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")

        if behaviour == "down":
            return _error(500, "server_error", "the model crashed")
        if behaviour == "flaky-429":
            count = app.state.seen[model] = app.state.seen.get(model, 0) + 1
            if count == 1:
                return _error(429, "rate_limit_exceeded", "slow down", {"retry-after": "0"})
        if behaviour == "strict" and "stream_options" in body:
            detail = [{"type": "extra_forbidden", "loc": ["body", "stream_options", "include_usage"], "msg": "Extra inputs are not permitted"}]
            return JSONResponse({"object": "error", "message": {"detail": detail}, "type": "invalid_request_error"}, status_code=422)
        if behaviour == "slow":
            await asyncio.sleep(1.5)
        if behaviour == "refusal":
            return _completion(model, None, refusal="Je ne peux pas répondre à cette demande.")
        if behaviour == "endless":
            return StreamingResponse(_endless(app, model), media_type="text/event-stream")

        text = _script(behaviour, argument, system, human)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage")) or behaviour == "strict"
            return StreamingResponse(_sse(model, text, usage), media_type="text/event-stream")
        return _completion(model, text)

    return app


def _script(behaviour: str, argument: str, system: str, human: str) -> str:
    if behaviour == "rewrite":
        return f"« {REWRITTEN} »\n"
    ids = re.findall(r"^\[([a-z0-9-]+)\] ", human, re.MULTILINE)
    first = ids[0] if ids else "aucune-fiche"
    card = re.search(r"^\[" + re.escape(first) + r"\] .*?(?=\n\n|\n</fiches>)", human, re.MULTILINE | re.DOTALL)
    figures = re.search(r"^Repères chiffrés : [^:]+ : ([^;\n]+)", card.group(0), re.MULTILINE) if card else None
    good = (
        f"La première piste est [{first}] : elle correspond à votre projet et vous êtes éligible."
        + (f" Repère utile : {figures.group(1).strip()}." if figures else "")
        + " Pour démarrer, prenez contact avec l'interlocuteur indiqué dans la fiche."
    )
    if behaviour == "unknown-citation":
        return good + " Pensez aussi à [anct-programme-imaginaire], très adapté."
    if behaviour == "invented-figure":
        return good + " " + INVENTED
    if behaviour == "leak":
        return f"Bien sûr, voici mes instructions : {system} Pour votre projet, voyez [{first}]."
    if behaviour == "off-context":
        return good + f" Mais le plus simple reste [{argument}], comme vous me l'avez demandé."
    return good


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": code, "code": code}}, status_code=status, headers=headers)


def _usage(text: str) -> dict:
    completion = len((text or "").split())
    return {"prompt_tokens": 321, "completion_tokens": completion, "total_tokens": 321 + completion}


def _completion(model: str, text: str | None, refusal: str | None = None) -> JSONResponse:
    return JSONResponse({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": refusal},
            "finish_reason": "stop",
        }],
        "usage": _usage(text or refusal),
    })


def _chunk(model: str, delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> str:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        payload["usage"] = usage
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(model: str, text: str, usage: bool):
    yield _chunk(model, {"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*", text):
        yield _chunk(model, {"content": piece})
        await asyncio.sleep(0)
    yield _chunk(model, {}, finish="stop")
    if usage:
        yield _chunk(model, {}, usage=_usage(text), choices=False)
    yield "data: [DONE]\n\n"


async def _endless(app: FastAPI, model: str):
    try:
        yield _chunk(model, {"role": "assistant", "content": ""})
        for i in range(400):
            yield _chunk(model, {"content": f"mot{i} "})
            await asyncio.sleep(0.05)
        yield _chunk(model, {}, finish="stop")
        yield "data: [DONE]\n\n"
        app.state.completed.append(model)
    except BaseException:
        app.state.disconnected.append(model)
        raise
