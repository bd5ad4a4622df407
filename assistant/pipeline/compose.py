"""Stage 6, compose: referrals with their reasons and concrete contact, the answer context, the answer.

Input: the judged candidates, notices and understanding. Output: a `TurnResult` (its answer is
generated here, or streamed by the caller from `result.context`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.answer import (
    AnswerContext,
    AnswerGenerator,
    Contact,
    GeneratedAnswer,
    GroundedGenerator,
    Referral,
    contact_line,
    with_appendix,
)
from assistant.contacts import ContactDirectory
from assistant.eligibility import Verdict
from assistant.pipeline.judge.clarify import Clarification
from assistant.profile import Profile
from assistant.retrieval import OfferHit
from assistant.schema import Offer, OutdatedPremise, Signpost
from assistant.text import literal

if TYPE_CHECKING:
    from assistant.pipeline.catalogue import CatalogueFindings


@dataclass
class TurnResult:
    conversation_id: str
    message_id: int
    kind: str  # answer, clarification, refusal, no_match
    answer: GeneratedAnswer | None  # None until generated (chat) or streamed (chat_stream)
    referrals: list[Referral]
    ineligible: list[Referral]
    profile: Profile
    clarification: Clarification | None = None
    corrections: list[tuple[Offer, OutdatedPremise]] = field(default_factory=list)
    candidates: list[OfferHit] = field(default_factory=list)
    seconds: float = 0.0
    context: AnswerContext | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # per candidate offer id
    doors: list[tuple[Signpost, Contact | None]] = field(default_factory=list)  # bodies beyond the partners
    catalogue: CatalogueFindings | None = None  # imported aids shown after the curated offers, twins hidden


def contact_for(contacts: ContactDirectory, profile: Profile, offer: Offer | None = None) -> Contact | None:
    """The concrete door for the asker's territory: the offer's own (ContactDirectory.for_offer:
    service page for online offers, sous-préfecture beside the préfecture…), else the State's office."""
    if offer is None:
        found = contacts.state_office(profile.insee, profile.departement_code)
    else:
        found = contacts.for_offer(offer, profile.departement_code, profile.region_code, profile.insee)
    return Contact(found.name, found.url, found.note, found.phone) if found else None


def signpost_door(contacts: ContactDirectory, signpost: Signpost, profile: Profile) -> Contact | None:
    """The local body behind a signpost card for the asker's territory (None when the territory is unknown)."""
    found = contacts.signpost_door(signpost, profile.departement_code, profile.region_code, profile.insee)
    return Contact(found.name, found.url, found.note, found.phone) if found else None


NOT_OURS = "Ce n'est pas dans les offres de nos partenaires"


def door_lines(doors: list[tuple[Signpost, Contact | None]]) -> list[str]:
    """One Markdown line per door: the local body (or the card's), what it covers, how to find it."""
    return [f"- **{literal(contact.name if contact else signpost.body)}** : {signpost.covers} "
            f"Comment le trouver : {signpost.how_to_find}" for signpost, contact in doors]


def doors_text(doors: list[tuple[Signpost, Contact | None]], leads: bool, with_offers: bool,
               refused: bool = False) -> str | None:
    """The doors beyond the partners, in French: who is competent, what it covers, how to find it.

    leads and no offer: « Ce n'est pas dans les offres de nos partenaires : … » (nothing fits);
    leads with offers: the door first, the offers as complements; otherwise a line after the offers'
    preface naming the door for the part of the project that is its own; `refused`: after a scope
    refusal, the body competent for the need (« Pour ce besoin précis, l'organisme compétent est … »).
    """
    if not doors:
        return None
    lines = door_lines(doors)
    names = " ou ".join(f"**{literal(s.body)}**" for s, _ in doors)
    if refused:
        head = f"Pour ce besoin précis, l'organisme compétent est {names}."
    elif leads and not with_offers:
        head = f"{NOT_OURS} : l'interlocuteur compétent est {names}."
    elif leads:
        head = (f"Pour l'essentiel de votre demande, l'interlocuteur compétent est {names} ; les offres ci-dessous "
                "peuvent compléter son appui.")
    else:
        head = f"Pour une partie de votre projet, l'interlocuteur compétent est aussi {names}."
    return head + "\n" + "\n".join(lines)


def referral(hit: OfferHit, verdict: Verdict, profile: Profile, theme_labels: dict[str, str], contacts: ContactDirectory) -> Referral:
    """An offer as recommended to this asker: why it fits (French reasons) and whom to contact."""
    offer = hit.offer
    reasons = []
    matched = [theme_labels[t] for t in offer.themes if t in profile.themes]
    if matched:
        reasons.append("thème " + ", ".join(f"« {m} »" for m in matched))
    else:
        reasons.append("proche de votre demande : « " + theme_labels.get(offer.themes[0], offer.themes[0]) + " »")
    reasons += [m for m in verdict.met if m.startswith("réservée")]
    if verdict.free:
        reasons.append("gratuite pour votre collectivité")
    if profile.stage == "travaux" and "op" in offer.project_steps or profile.stage in {"idee", "etudes"} and "preop" in offer.project_steps:
        reasons.append("adaptée à l'étape de votre projet")
    return Referral(hit, verdict, reasons, contact_for(contacts, profile, offer))


def focus_text(focus: str | None, referrals: list[Referral]) -> str | None:
    """The short answer to a follow-up that asks only the cost or the contact of the offers shown."""
    if not focus or not referrals:
        return None
    if focus == "contact":
        lines = [f"- {r.offer.title} : {contact_line(r)}" for r in referrals]
    else:
        lines = [f"- {r.offer.title} : {cost_sentence(r)}" for r in referrals]
    title = "Qui contacter :" if focus == "contact" else "Ce que cela coûte :"
    return title + "\n" + "\n".join(lines)


def cost_sentence(referral: Referral) -> str:
    offer, verdict = referral.offer, referral.verdict
    if verdict.free is True:
        return "gratuit pour votre collectivité"
    if verdict.free is False:
        return "pas gratuit pour votre collectivité" + (f" — {offer.cost.note}" if offer.cost and offer.cost.note else "")
    if offer.cost and offer.cost.free_for:
        return "gratuit sous condition de taille (" + (offer.cost.note or "à vérifier") + ")"
    kinds = set(offer.support_types)
    if kinds & {"loan", "recoverable_advance"}:
        return "c'est un financement remboursable (prêt ou avance)"
    if "grant" in kinds:
        return "c'est une aide financière (subvention) ; un reste à charge demeure en général"
    if kinds & {"tool", "network", "training"}:
        return "outil, réseau ou formation mis à disposition ; les conditions sont précisées sur la page officielle"
    return "les conditions financières sont à confirmer auprès de l'interlocuteur indiqué"


def join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "\n\n".join(kept) if kept else None


def generate(generator: AnswerGenerator, grounded: GroundedGenerator, context: AnswerContext) -> GeneratedAnswer:
    """The configured generator's answer; the grounded one when there is nothing to recommend."""
    if generator is grounded or not context.referrals:
        return with_appendix(grounded.generate(context), context)
    return with_appendix(generator.generate(context), context)
