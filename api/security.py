"""Request guards: rate limits on public routes (the `limits` library, as slowapi uses it) and
console tokens.

Public routes are limited per client address and, when the request names a conversation, per
conversation too, both at `settings.rate_limit`. Over the limit: 429 with a French message and
Retry-After. Console and export routes need `Authorization: Bearer <token>` (401 otherwise).

Counters live in `settings.rate_limit_storage`: `memory://` (each process its own, the default)
or `redis://host:port/db`, shared by every worker and server. When Redis does not answer, each
process falls back to its own in-memory counters (the service stays up, the limit is then per
worker) and tries Redis again after `REDIS_RETRY_S` seconds — a warning is logged each time.

The client address is the peer of the TCP connection, or, behind a proxy listed in
`settings.trusted_proxies`, the right-most untrusted hop of X-Forwarded-For (uvicorn's
ProxyHeadersMiddleware, installed by api.app).
"""

from __future__ import annotations

import json
import logging
import math
import time

from fastapi import Depends, HTTPException, Request
from limits import parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from assistant.auth import Principal, authenticate
from assistant.config import Settings

log = logging.getLogger("aiguillage.api.limits")
REDIS_RETRY_S = 5.0
REDIS_TIMEOUT_S = 0.5


class SweptMemoryStorage(MemoryStorage):
    """`limits`' in-process storage, its expired counters swept at most once per SWEEP_S in the thread
    that counts a hit, instead of by a timer thread the library starts 10 ms after nearly every hit (a
    thread created and run per request: ≈ 0.2 ms of CPU each). Expiry is checked on every read as
    before (a counter or window past its time is never counted): only the freeing of memory waits."""

    SWEEP_S = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the library's private timer start
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_S
            self._MemoryStorage__expire_events()


def limit_storage(uri: str, **options):
    """The storage of `settings.rate_limit_storage`: SweptMemoryStorage for memory://, else the library's."""
    return SweptMemoryStorage() if uri == "memory://" else storage_from_string(uri, **options)


class RateLimits:
    def __init__(self, settings: Settings):
        self.items = parse_many(settings.rate_limit)
        self.shared = settings.rate_limit_storage != "memory://"
        options = {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S} if self.shared else {}
        self.storage = limit_storage(settings.rate_limit_storage, **options)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.fallback = MovingWindowRateLimiter(SweptMemoryStorage())
        self._shared_down_until = 0.0

    def _strategy(self) -> MovingWindowRateLimiter:
        return self.fallback if time.monotonic() < self._shared_down_until else self.strategy

    def check(self, scope: str, key: str) -> None:
        for item in self.items:
            strategy = self._strategy()
            try:
                allowed = strategy.hit(item, scope, key)
                reset = None if allowed else strategy.get_window_stats(item, scope, key).reset_time
            except Exception as exc:  # Redis down or timing out: per-process counters for a while
                if strategy is self.fallback:
                    raise
                log.warning("rate-limit storage unavailable (%s): in-memory counters for %.0f s", type(exc).__name__, REDIS_RETRY_S)
                self._shared_down_until = time.monotonic() + REDIS_RETRY_S
                allowed = self.fallback.hit(item, scope, key)
                reset = None if allowed else self.fallback.get_window_stats(item, scope, key).reset_time
            if not allowed:
                wait = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    429,
                    f"Trop de demandes en peu de temps. Patientez {wait} seconde{'s' if wait > 1 else ''} puis réessayez.",
                    headers={"Retry-After": str(wait)},
                )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    limits.check("ip", client_address(request))
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
