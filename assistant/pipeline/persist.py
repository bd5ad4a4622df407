"""Stage 7, persist: the conversation's state and profile before a turn, the turn's record after it.

Also the JSON payloads stored with each turn (and returned by the API).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from assistant.answer import Referral
from assistant.eligibility import Verdict
from assistant.pipeline.compose import TurnResult
from assistant.pipeline.judge.clarify import Clarification
from assistant.profile import Profile
from assistant.retrieval import OfferHit
from assistant.store import Conversation, Database, Turn


@dataclass
class Loaded:
    state: dict  # dialogue state, mutated by the stages and saved back
    known: Profile  # the asker's profile so far
    turns: int  # turns already recorded


def load(db: Database, conversation_id: str | None) -> Loaded:
    """The conversation's state, profile and number of turns (a new conversation: empty, 0); only
    those columns are read, not the turns' records."""
    if not conversation_id:
        return Loaded({}, Profile(), 0)
    with db.session() as session:
        row = session.execute(
            select(Conversation.state, Conversation.profile).where(Conversation.id == conversation_id)
        ).first()
        if row is None:
            return Loaded({}, Profile(), 0)
        turns = session.scalar(select(func.count()).select_from(Turn).where(Turn.conversation_id == conversation_id))
        return Loaded(dict(row.state or {}), Profile.model_validate(row.profile or {}), turns)


def history(db: Database, conversation_id: str) -> list[tuple[str, str]]:
    """[(role, text)] of the conversation so far, "user" and "assistant" alternating."""
    with db.session() as session:
        turns = session.execute(
            select(Turn.message, Turn.answer).where(Turn.conversation_id == conversation_id).order_by(Turn.number)
        )
        return [item for t in turns for item in (("user", t.message), ("assistant", t.answer))]


def save(db: Database, message: str, result: TurnResult, state: dict) -> None:
    """Record the turn; its number is given inside the write transaction (Database.save_turn), so
    concurrent turns on one conversation never share one. When the database refuses the write, the
    turn is spooled and written later: result.message_id keeps its provisional number."""
    profile = result.profile.model_dump()  # the conversation's and the turn's
    number = db.save_turn(
        result.conversation_id,
        {
            "profile": profile,
            "state": state,
            "departement_code": result.profile.departement_code,
            "region_code": result.profile.region_code,
        },
        {
            "message": message,
            "answer": result.answer.text,
            "kind": result.kind,
            "generator": result.answer.generator,
            "referrals": [referral_payload(r) for r in result.referrals],
            "retrieved": [candidate_payload(h, result.verdicts[h.offer.id]) for h in result.candidates],
            "profile": profile,
            "themes": result.profile.themes,
            "usage": result.answer.usage,
            "clarification": clarification_payload(result.clarification),
            "catalogue": result.catalogue.payload() if result.catalogue else None,
        },
    )
    if number is not None:
        result.message_id = number


def referral_payload(referral: Referral) -> dict:
    offer = referral.offer
    return {
        "offer_id": offer.id,
        "partner": offer.partner,
        "title": offer.title,
        "score": round(referral.hit.score, 6),
        "reasons": referral.reasons,
        "url": offer.url,
        "status": offer.status,
        "eligibility": referral.verdict.as_dict(),
        "how_to_start": offer.access.steps,
        "contact": (
            {"name": referral.contact.name, "url": referral.contact.url, "phone": referral.contact.phone}
            if referral.contact
            else {"name": offer.access.entry_point, "url": None}
        ),
        "summary": offer.summary,
    }


def clarification_payload(clarification: Clarification | None) -> dict | None:
    if clarification is None:
        return None
    return {
        "question": clarification.question,
        "options": [{"label": label, "value": value} for label, value in clarification.options],
    }


def candidate_payload(hit: OfferHit, verdict: Verdict) -> dict:
    return {
        "offer_id": hit.offer.id,
        "partner": hit.offer.partner,
        "title": hit.offer.title,
        **hit.breakdown(),
        "eligibility": verdict.as_dict(),
    }
