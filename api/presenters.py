"""Turn assistant results into API bodies (kept apart so that the SSE route reuses them)."""

from __future__ import annotations

from api.models import ChatResponse, Citation, ClarificationOut, DoorOut, QuickReply, SearchResult
from assistant.answer import Referral, fit_phrase, format_answer
from assistant.retrieval import OfferHit
from assistant.service import TurnResult, referral_payload


def referral_out(referral: Referral) -> dict:
    """The stored referral payload plus the fields a client needs to draw a compact card with its
    « Prochaine étape » (fit in a few words, the card's entry point, its figures, a status note)."""
    offer = referral.offer
    return {
        **referral_payload(referral),
        "fit": fit_phrase(referral.verdict),
        "entry_point": offer.access.entry_point,
        "figures": [{"label": f.label, "value": f.value, "to_confirm": bool(f.to_confirm)} for f in offer.figures],
        "status_note": offer.status_note,
    }


def cited_offers(result: TurnResult) -> dict[str, tuple[str, str]]:
    """Offer id -> (title, official url) for every offer the answer may cite: the referrals (a
    correction cites its card only when the card is among them: assistant.answer.correction_blocks)."""
    return {r.offer.id: (r.offer.title, r.offer.url) for r in result.referrals}


def chat_response(result: TurnResult, fmt: str = "markdown") -> ChatResponse:
    """ChatResponse body; fmt is the ChatRequest's `format` (see assistant.answer.format_answer)."""
    offers = cited_offers(result)
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
        answer=format_answer(result.answer.text, offers, fmt),
        follow_up=bool(result.context and result.context.concise and result.referrals),
        generator=result.answer.generator,
        fallback_reason=result.answer.fallback_reason,
        referrals=[referral_out(r) for r in result.referrals],
        not_eligible=[referral_out(r) for r in result.ineligible],
        citations=[Citation(offer_id=offer_id, title=title, url=url) for offer_id, (title, url) in offers.items()],
        clarification=clarification,
        profile=result.profile,
        doors=[
            DoorOut(signpost_id=s.id, body=s.body, local=contact.name if contact else None, covers=s.covers,
                    how_to_find=s.how_to_find, url=s.url)
            for s, contact in result.doors
        ],
        catalogue=result.catalogue.payload() if result.catalogue else None,
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


def public_body(body: dict, offers: dict) -> dict:
    """A stored conversation for the widget: each answer with its citations as links on the offers'
    names (markdown), like a live answer. offers: the index's offers by id."""
    known = {offer_id: (o.title, o.url) for offer_id, o in offers.items()}
    for message in body["messages"]:
        message["answer"] = format_answer(message["answer"], known, "markdown")
    return body
