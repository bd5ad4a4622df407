from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from api.deps import check_message, get_assistant
from api.models import SearchRequest, SearchResponse
from api.presenters import search_result
from assistant.retrieval import SearchFilters
from assistant.service import Assistant

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchResponse, summary="Rechercher des offres, avec le détail du score")
def search(body: SearchRequest, assistant: Assistant = Depends(get_assistant)) -> SearchResponse:
    query = check_message(body.query, assistant.settings.max_message_chars)
    unknown = sorted(set(body.filters.theme) - set(assistant.theme_labels))
    if unknown:
        raise HTTPException(422, f"Thème(s) inconnu(s) : {', '.join(unknown)}. Voir corpus/themes.yaml.")
    filters = SearchFilters(
        partners=tuple(body.filters.partner),
        themes=tuple(body.filters.theme),
        audiences=tuple(body.filters.audience),
        statuses=tuple(body.filters.status),
    )
    hits = assistant.search(query, filters, body.limit)
    texts = assistant.handle.current().passage_texts([h.passages[0] for h in hits if h.passages])
    return SearchResponse(results=[search_result(h, texts.get(h.passages[0]) if h.passages else None) for h in hits])
