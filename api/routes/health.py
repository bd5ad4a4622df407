from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.deps import get_assistant
from assistant.service import Assistant

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Le processus répond")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="L'index est chargé et à jour avec le corpus")
def readyz(assistant: Assistant = Depends(get_assistant)) -> JSONResponse:
    report = assistant.readiness()
    return JSONResponse(report, status_code=200 if report["ready"] else 503)
