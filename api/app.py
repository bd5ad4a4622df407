"""FastAPI application: thin routers over the assistant, French error bodies, no stack trace leaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.routes import chat, console, feedback, health, offers, search, stream
from api.security import RateLimits, public_rate_limit
from api.web import STATIC_DIR, router as web_router
from assistant.config import Settings, get_settings
from assistant.privacy import install_log_redaction, purge_daily
from assistant.retrieval import IndexNotReady
from assistant.service import Assistant

log = logging.getLogger("aiguillage.api")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p != "body")
        parts.append(f"{where or 'corps'} : {error['msg']}")
    return "Requête invalide — " + " ; ".join(parts)


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_log_redaction()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Purge conversations past the retention period now, then once a day.
        purger = asyncio.create_task(purge_daily(app.state.assistant.db, settings.conversation_retention_days))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger

    app = FastAPI(
        title="Aiguillage",
        version="0.1.0",
        description="Orienter les collectivités vers l'offre de l'ANCT et de ses partenaires.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.assistant = assistant or Assistant(settings)
    app.state.rate_limits = RateLimits(settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["Retry-After"],
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(IndexNotReady)
    async def not_ready(_: Request, exc: IndexNotReady) -> JSONResponse:
        return JSONResponse({"detail": f"Service en cours de préparation : {exc}"}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(
            {"detail": "Erreur interne du service. Réessayez dans un instant ; si elle persiste, signalez-la."},
            status_code=500,
        )

    limited = [Depends(public_rate_limit)]
    for module in (chat, stream, feedback, search):
        app.include_router(module.router, dependencies=limited)
    for module in (offers, health, console):
        app.include_router(module.router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
