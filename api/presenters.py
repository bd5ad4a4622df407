"""Turn assistant results into API bodies (kept apart so that the SSE route reuses them)."""

from __future__ import annotations

from api.models import ChatResponse, Citation, ClarificationOut, QuickReply, SearchResult
from assistant.retrieval import OfferHit
from assistant.service import TurnResult, referral_payload


def chat_response(result: TurnResult) -> ChatResponse:
    cited = {r.offer.id: r.offer for r in result.referrals}
    for offer, _ in result.corrections:
        cited.setdefault(offer.id, offer)
    clarification = None
    if result.clarification:
        clarification = ClarificationOut(
            question=result.clarification.question,
            options=[QuickReply(label=label, value=value) for label, value in result.clarification.options],
        )
    return ChatResponse(
        conversation_id=result.conversation_id,
        message_id=result.message_id,
        kind=result.kind,
        answer=result.answer.text,
        generator=result.answer.generator,
        fallback_reason=result.answer.fallback_reason,
        referrals=[referral_payload(r) for r in result.referrals],
        not_eligible=[referral_payload(r) for r in result.ineligible],
        citations=[Citation(offer_id=o.id, title=o.title, url=o.url) for o in cited.values()],
        clarification=clarification,
        profile=result.profile,
    )


def search_result(hit: OfferHit, passage_text: str | None) -> SearchResult:
    return SearchResult(
        offer_id=hit.offer.id,
        partner=hit.offer.partner,
        title=hit.offer.title,
        summary=hit.offer.summary,
        status=hit.offer.status,
        url=hit.offer.url,
        best_passage=passage_text,
        **{k: v for k, v in hit.breakdown().items() if k != "fused_score"},
        score=round(hit.score, 6),
    )
