from __future__ import annotations

import threading

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.deps import get_assistant
from api.models import OfferPage
from api.security import public_rate_limit
from assistant.schema import Audience, Partner, Status
from assistant.service import Assistant
from ingest.corpus import resolve_offer

router = APIRouter(prefix="/v1", tags=["offers"])
PARTNERS_PATH = "/v1/partners"


class PartnerCache:
    """The partner cards read once per index generation (not the whole corpus on every call)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._cards: list[dict] = []

    def get(self, assistant: Assistant) -> list[dict]:
        generation = assistant.handle.current().generation
        with self._lock:
            if generation != self._generation:
                self._cards = [p.model_dump(mode="json") for p in assistant.partners()]
                self._generation = generation
            return self._cards



@router.get("/offers", response_model=OfferPage, summary="Lister les offres (filtres, pagination)")
def list_offers(
    partner: Partner | None = None,
    theme: str | None = None,
    audience: Audience | None = None,
    status: Status | None = None,
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(20, ge=1, le=200),
    assistant: Assistant = Depends(get_assistant),
) -> OfferPage:
    if theme is not None and theme not in assistant.theme_labels:
        raise HTTPException(422, f"Thème inconnu : {theme}. Voir corpus/themes.yaml.")
    offers = [
        o
        for o in sorted(assistant.offers.values(), key=lambda o: o.id)
        if (partner is None or o.partner == partner)
        and (theme is None or theme in o.themes)
        and (audience is None or audience in o.audiences)
        and (status is None or o.status == status)
    ]
    items = [o.model_dump(mode="json") for o in offers[offset : offset + limit]]
    return OfferPage(total=len(offers), offset=offset, limit=limit, items=items)


@router.get("/offers/{offer_id}", summary="Une fiche d'offre complète")
def get_offer(offer_id: str, assistant: Assistant = Depends(get_assistant)) -> dict:
    offer = resolve_offer(assistant.offers, offer_id)  # a merged card's old id still leads to it
    if offer is None:
        raise HTTPException(404, f"Offre inconnue : {offer_id}")
    return offer.model_dump(mode="json")


@router.get(PARTNERS_PATH.removeprefix("/v1"), summary="Les partenaires et la façon de les joindre", dependencies=[Depends(public_rate_limit)])
def partners(request: Request, assistant: Assistant = Depends(get_assistant)) -> list[dict]:
    return request.app.state.partners.get(assistant)
