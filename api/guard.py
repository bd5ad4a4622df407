"""The outermost application middleware: body size limit, text that cannot be stored, security
headers, and unexpected errors turned into a French 500 that keeps the connection alive.

- A body larger than `max_body_bytes` (by Content-Length, or counted while it arrives) gets 413
  before anything parses it.
- A JSON body holding a lone UTF-16 surrogate (`"\\ud800"`), which no UTF-8 database or log can
  store, gets 422 instead of failing later with a 500.
- Every response carries `X-Content-Type-Options: nosniff`; the app's pages set their own CSP.
- An exception escaping a route is logged (masked by the privacy filter) and answered here with
  the French 500 body; unlike Starlette's outer error middleware, nothing is re-raised to the
  server, so a keep-alive connection stays usable.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import INTERNAL

log = logging.getLogger("aiguillage.api")
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
REPEATED = "Requête invalide — paramètre répété dans l'adresse : {name} (une seule valeur attendue)."
TOO_LARGE = "Requête trop volumineuse : {size} octets au plus. Raccourcissez le message."
LONE_SURROGATE = (
    "Requête invalide — le texte contient un caractère invalide (demi-paire UTF-16 isolée, ex. \\ud800) : "
    "retirez-le puis renvoyez la question."
)


def has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


class Guard:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        refusal = _repeated_parameter(scope)
        if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body, refusal = await self._read_body(scope, receive)
            receive = _replay(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if not started:
                await JSONResponse({"detail": INTERNAL}, status_code=500)(scope, receive, send_with_headers)

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, JSONResponse | None]:
        too_large = JSONResponse({"detail": TOO_LARGE.format(size=self.max_body_bytes)}, status_code=413)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return b"", too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if SURROGATE_ESCAPE.search(body):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # invalid JSON: FastAPI answers 422
            if has_lone_surrogate(parsed):
                return body, JSONResponse({"detail": LONE_SURROGATE}, status_code=422)
        return body, None


def _repeated_parameter(scope: Scope) -> JSONResponse | None:
    """A 422 when a query parameter is given twice: every parameter of the API takes one value, and
    the framework would silently keep the last (schemathesis: `?offset=true&offset=0.0` answered 200)."""
    seen: set[str] = set()
    for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return JSONResponse({"detail": REPEATED.format(name=name[:40])}, status_code=422)
        seen.add(name)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the buffered body to the app once, then the real channel (so disconnects are seen)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
