"""FastAPI application: thin routers over the assistant, French error bodies, no stack trace leaks.

`create_app()` with no argument reads the settings (that is how `aiguillage serve --workers N`
starts each worker: `uvicorn api.app:create_app --factory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.errors import french_detail, validation_message
from api.openapi import describe_inputs, document_errors
from api.guard import Guard
from api.routes import chat, console, feedback, health, offers, search, stream
from api.security import RateLimits, public_rate_limit
from api.web import STATIC_DIR, router as web_router
from assistant.config import Settings, get_settings
from assistant.privacy import install_log_redaction, purge_daily
from assistant.retrieval import IndexNotReady
from assistant.service import Assistant
from assistant.store import Database, DatabaseUnavailable, refused_by_database

log = logging.getLogger("aiguillage.api")
SPOOL_RETRY_S = 30.0
DB_UNAVAILABLE = "Base de données momentanément indisponible. Réessayez dans un instant."


async def flush_spool_regularly(db: Database, every: float = SPOOL_RETRY_S) -> None:
    """Background task: write turns spooled while the database refused writes, until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(db.flush_pending)
        except Exception:
            log.exception("spooled turns could not be written yet")


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every documented method on this path (routes sharing a path are separate in the router)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in operations}
    return methods


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_log_redaction()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load the index and what a turn derives from it before accepting requests (each worker would
        # otherwise pay it on its first question); purge conversations past the retention period now,
        # then daily; retry spooled turns.
        with contextlib.suppress(IndexNotReady):
            await asyncio.to_thread(app.state.assistant.warm_up)
        # The synchronous handlers (a chat turn…) run in anyio's worker threads, 40 by default: at 16
        # concurrent chats, 16 threads took turns at the interpreter lock and each turn lasted longer;
        # as many threads as the worker has cores keep them as busy with less switching (see
        # Settings.handler_threads for the figures).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.handler_threads()
        db = app.state.assistant.db
        tasks = [
            asyncio.create_task(purge_daily(db, settings.conversation_retention_days)),
            asyncio.create_task(flush_spool_regularly(db)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Aiguillage",
        version="0.1.0",
        description="Orienter les collectivités vers l'offre de l'ANCT et de ses partenaires.",
        lifespan=lifespan,
        docs_url=None,  # served by api.web with local Swagger UI assets (no CDN)
        redoc_url=None,
    )
    # No redirect built from the Host header (/static → http://<host>/static/): unknown paths are 404.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.assistant = assistant or Assistant(settings)
    app.state.rate_limits = RateLimits(settings)
    app.state.partners = offers.PartnerCache()

    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["Retry-After"],
        )
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of every route on this path, not only the first route's
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.url.path) or headers.get("Allow", "").split(", ")))
        return JSONResponse({"detail": french_detail(exc.status_code, exc.detail)}, status_code=exc.status_code,
                            headers=headers or None)

    @app.exception_handler(IndexNotReady)
    async def not_ready(_: Request, exc: IndexNotReady) -> JSONResponse:
        return JSONResponse({"detail": f"Service en cours de préparation : {exc}"}, status_code=503)

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(DBAPIError)
    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        """The database refused a read or a write (locked, read-only, full, unreachable): a French 503,
        not a 500 — a chat turn never gets here (it is spooled), a 👍/👎 or a review is to be retried.
        Any other database error is a defect: re-raised, it becomes the French 500 (api/guard.py)."""
        if isinstance(exc, DBAPIError):
            if not refused_by_database(exc):
                raise exc
            log.warning("database unavailable (%s)", type(exc.orig).__name__)
        return JSONResponse({"detail": DB_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})

    limited = [Depends(public_rate_limit)]
    for module in (chat, stream, feedback, search):
        app.include_router(module.router, dependencies=limited)
    for module in (offers, health, console):
        app.include_router(module.router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    limited_paths = {route.path for module in (chat, stream, feedback, search) for route in module.router.routes}
    limited_paths |= {offers.PARTNERS_PATH}

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document_errors(schema, limited_paths, {r.path for r in console.router.routes})
            served = app.state.assistant
            app.openapi_schema = describe_inputs(
                schema, settings.max_message_chars, sorted(served.theme_labels), sorted(served.offers)
            )
        return app.openapi_schema

    app.openapi = openapi
    return app
