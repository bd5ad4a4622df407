"""Referral console API for ANCT agents: every route needs a valid token (401 otherwise)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_assistant
from api.models import CONVERSATION_ID, MessageId
from api.security import require_admin, require_agent
from assistant import console
from assistant.auth import Principal
from assistant.service import Assistant

router = APIRouter(prefix="/v1", tags=["console"], dependencies=[Depends(require_agent)])
MAX_OFFSET = 10_000_000


DATE = r"^\d{4}-\d{2}-\d{2}$"


def _day(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"Requête invalide — {name} : date inexistante ({value}), attendu AAAA-MM-JJ.") from None


def filters(
    assistant: Assistant = Depends(get_assistant),
    date_from: str | None = Query(None, pattern=DATE, description="Depuis ce jour (AAAA-MM-JJ).", json_schema_extra={"format": "date"}),
    date_to: str | None = Query(None, pattern=DATE, description="Jusqu'à ce jour inclus.", json_schema_extra={"format": "date"}),
    departement: str | None = Query(None, min_length=1, max_length=60, description="Code (15, 2A) ou nom (Cantal) du département."),
    region: str | None = Query(None, pattern=r"^\d{2}$", description="Code de la région."),
    partner: str | None = Query(None, description="Partenaire d'une offre proposée (anct, ademe…)."),
    theme: str | None = Query(None, description="Thème détecté (voir corpus/themes.yaml)."),
    feedback: Literal["up", "down", "none", "any"] | None = Query(None, description="Avis des usagers."),
    review: Literal["pending", "validated", "corrected"] | None = Query(None, description="Statut de relecture."),
    q: str | None = Query(None, max_length=200, description="Texte cherché dans les messages ou le nom de la collectivité."),
    unmet: bool | None = Query(None, description="Seulement les besoins non couverts (aucune offre ou 👎)."),
) -> console.Filters:
    if departement is not None:
        try:
            departement = console.departement_code(departement, assistant.territories.departements)
        except console.Invalid as exc:  # a well-formed filter naming nothing known: like an unknown id
            raise HTTPException(404, str(exc)) from None
    return console.Filters(_day(date_from, "date_from"), _day(date_to, "date_to"), departement, region, partner, theme, feedback, review, q or None, unmet)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: MessageId | None = Field(None, description="Réponse relue ; la dernière réponse par défaut.")
    status: Literal["validated", "corrected"]
    primary: list[str] | None = Field(None, max_length=2, description="Offres principales (1 ou 2) ; celles proposées si validé.")
    acceptable: list[str] | None = Field(None, max_length=4, description="Offres également acceptables (4 au plus).")
    note: str | None = Field(None, max_length=2000)


@router.get("/me", summary="Le titulaire du jeton")
def me(principal: Principal = Depends(require_agent)) -> dict:
    return {"name": principal.name, "role": principal.role}


@router.get("/conversations", summary="Conversations et orientations (filtres, pagination)")
def list_conversations(
    found: console.Filters = Depends(filters),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(25, ge=1, le=200),
    assistant: Assistant = Depends(get_assistant),
) -> dict:
    return console.list_conversations(assistant.db, found, offset, limit)


@router.get("/conversations/{conversation_id}", summary="Une conversation : profil, offres retenues, scores, avis")
def conversation(conversation_id: str = Path(pattern=CONVERSATION_ID), assistant: Assistant = Depends(get_assistant)) -> dict:
    try:
        return console.conversation_detail(assistant.db, conversation_id)
    except console.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/conversations/{conversation_id}/reviews", status_code=201, summary="Valider ou corriger une orientation")
def review(
    body: ReviewRequest,
    conversation_id: str = Path(pattern=CONVERSATION_ID),
    principal: Principal = Depends(require_agent),
    assistant: Assistant = Depends(get_assistant),
) -> dict:
    try:
        return console.add_review(
            assistant.db, conversation_id, body.message_id, body.status, body.primary, body.acceptable, body.note,
            principal.name, assistant.offers,
        )
    except console.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except console.Invalid as exc:
        raise HTTPException(422, str(exc)) from None


@router.delete("/conversations/{conversation_id}", status_code=204, summary="Effacer une conversation (administrateurs)")
def erase(
    conversation_id: str = Path(pattern=CONVERSATION_ID),
    _: Principal = Depends(require_admin),
    assistant: Assistant = Depends(get_assistant),
) -> Response:
    try:
        console.delete_conversation(assistant.db, conversation_id)
    except console.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.get(
    "/exports/conversations.csv", summary="Export CSV de la liste filtrée", response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV (séparateur ;, UTF-8 avec BOM)."}},
)
def export_csv(found: console.Filters = Depends(filters), assistant: Assistant = Depends(get_assistant)) -> Response:
    name = f"aiguillage-conversations-{dt.date.today().isoformat()}.csv"
    return Response(
        console.csv_export(assistant.db, found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/exports/gold.jsonl", summary="Relectures au format du jeu d'évaluation (JSONL)", response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "description": "Un cas JSON par ligne."}},
)
def export_gold(assistant: Assistant = Depends(get_assistant)) -> Response:
    cases = console.gold_cases(assistant.db, assistant.offers)
    text = "".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases)
    return Response(
        text, media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="aiguillage-relectures.jsonl"'},
    )


@router.get("/stats", summary="Orientations par partenaire, thème et département, dans le temps")
def stats(
    found: console.Filters = Depends(filters),
    granularity: Literal["day", "week", "month"] = Query("week"),
    assistant: Assistant = Depends(get_assistant),
) -> dict:
    return console.statistics(assistant.db, found, assistant.theme_labels, granularity)


@router.get("/unmet-needs", summary="Besoins non couverts : aucune offre éligible ou avis négatif")
def unmet_needs(found: console.Filters = Depends(filters), assistant: Assistant = Depends(get_assistant)) -> dict:
    return console.unmet_needs(assistant.db, found, assistant.theme_labels)


@router.get("/themes", summary="Le vocabulaire des thèmes (pour les filtres)")
def themes(assistant: Assistant = Depends(get_assistant)) -> list[dict]:
    return [{"id": k, "label": v} for k, v in sorted(assistant.theme_labels.items(), key=lambda kv: kv[1])]
