"""Request guards: rate limits on public routes (slowapi's limiter) and console tokens.

Public routes are limited per client IP and, when the request names a conversation, per
conversation too, both at `settings.rate_limit`. Over the limit: 429 with a French message and
Retry-After. Console and export routes need `Authorization: Bearer <token>` (401 otherwise).
"""

from __future__ import annotations

import json
import math
import time

from fastapi import Depends, HTTPException, Request
from limits import parse_many
from slowapi import Limiter
from slowapi.util import get_remote_address

from assistant.auth import Principal, authenticate
from assistant.config import Settings


class RateLimits:
    def __init__(self, settings: Settings):
        self.items = parse_many(settings.rate_limit)
        self.limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", strategy="moving-window")

    def check(self, scope: str, key: str) -> None:
        strategy = self.limiter.limiter
        for item in self.items:
            if not strategy.hit(item, scope, key):
                reset = strategy.get_window_stats(item, scope, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    429,
                    f"Trop de demandes en peu de temps. Patientez {wait} seconde{'s' if wait > 1 else ''} puis réessayez.",
                    headers={"Retry-After": str(wait)},
                )


async def _conversation_of(request: Request) -> str | None:
    if "conversation_id" in request.path_params:
        return str(request.path_params["conversation_id"])
    if request.method != "POST":
        return None
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    value = body.get("conversation_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


async def public_rate_limit(request: Request) -> None:
    """Dependency for public routes: per-IP, then per-conversation limits."""
    limits: RateLimits = request.app.state.rate_limits
    limits.check("ip", get_remote_address(request) or "unknown")
    conversation = await _conversation_of(request)
    if conversation:
        limits.check("conversation", conversation[:64])


UNAUTHORIZED = "Accès réservé aux agents : jeton d'accès manquant, invalide ou révoqué."


def require_agent(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    principal = authenticate(request.app.state.assistant.db, secret.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_admin(principal: Principal = Depends(require_agent)) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "Action réservée aux administrateurs.")
    return principal
