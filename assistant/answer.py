"""Answer context and the grounded generator: a deterministic French answer built only from the cards.

Every sentence about an offer is taken from its card (summary, figures, access) or from the
eligibility verdict, so the answer cannot state a fact the corpus does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from assistant.eligibility import Verdict
from assistant.profile import Profile
from assistant.retrieval import OfferHit
from assistant.schema import OutdatedPremise, Offer
from assistant.text import literal

PARTNER_NAMES = {
    "anct": "l'ANCT",
    "ademe": "l'ADEME",
    "cerema": "le Cerema",
    "anru": "l'ANRU",
    "anah": "l'Anah",
    "banque-des-territoires": "la Banque des Territoires",
    "etat": "l'État",
}
PARTNER_LABELS = {
    "anct": "ANCT", "ademe": "ADEME", "cerema": "Cerema", "anru": "ANRU", "anah": "Anah",
    "banque-des-territoires": "Banque des Territoires", "etat": "État",
}
STATUS_WARNINGS = {
    "closed": "Attention : cette offre est close, on ne peut plus y candidater.",
    "historic": "Attention : ce programme est terminé ; il n'est cité que pour mémoire.",
}
NO_MATCH = (
    "Je n'ai pas trouvé, dans les offres de l'ANCT et de ses partenaires que je connais, de dispositif qui "
    "corresponde clairement à votre demande."
)


@dataclass
class Contact:
    name: str
    url: str | None = None
    note: str | None = None
    phone: str | None = None


@dataclass
class Referral:
    hit: OfferHit
    verdict: Verdict
    reasons: list[str]
    contact: Contact | None = None

    @property
    def offer(self) -> Offer:
        return self.hit.offer


@dataclass
class AnswerContext:
    question: str
    profile: Profile
    referrals: list[Referral]
    ineligible: list[Referral] = field(default_factory=list)
    corrections: list[tuple[Offer, OutdatedPremise]] = field(default_factory=list)
    preface: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    prefecture: Contact | None = None
    concise: bool = False  # a short follow-up ("c'est gratuit ?"): answer it, do not repeat the cards


@dataclass
class GeneratedAnswer:
    text: str
    generator: str  # "grounded" or "llm"
    fallback_reason: str | None = None
    usage: dict = field(default_factory=dict)


class AnswerGenerator(Protocol):
    """generate() returns the whole answer; stream(), when a backend has it, yields text deltas and
    finally the GeneratedAnswer (whose text wins over the deltas, e.g. after a fallback)."""

    name: str

    def generate(self, context: AnswerContext) -> GeneratedAnswer: ...


def stream_answer(generator: AnswerGenerator, context: AnswerContext) -> Iterator[str | GeneratedAnswer]:
    streaming = getattr(generator, "stream", None)
    if streaming is not None:
        yield from streaming(context)
        return
    answer = generator.generate(context)
    for paragraph in re.split(r"(?<=\n\n)", answer.text):
        if paragraph:
            yield paragraph
    yield answer


def eligibility_line(verdict: Verdict) -> str:
    """One French sentence: what is met, what is free, what remains to check."""
    if verdict.status == "ineligible":
        return "Non éligible : " + " ; ".join(verdict.failed) + "."
    parts = []
    if verdict.for_residents:
        parts.append("pour vos habitants, pas pour la collectivité : la commune informe et oriente les ménages")
    elif verdict.status == "eligible":  # every rule of the card was checked against a known fact
        parts.append(f"Vous semblez éligible ({', '.join(verdict.met)})")
    elif verdict.met:
        parts.append(f"Conditions vérifiées ({', '.join(verdict.met)})")
    if verdict.free is True:
        parts.append("gratuit pour votre collectivité")
    elif verdict.free is False:
        parts.append("pas gratuit pour votre collectivité" + (f" : {verdict.cost_note}" if verdict.cost_note else ""))
    if verdict.missing:
        parts.append("à vérifier : " + " ; ".join(verdict.missing))
    if not parts:
        return ""
    text = " ; ".join(parts)
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def contact_line(referral: Referral) -> str:
    access = referral.offer.access
    if referral.contact:
        text = referral.contact.name
        details = [d for d in (referral.contact.url, f"tél. {referral.contact.phone}" if referral.contact.phone else None) if d]
        if details:
            text += f" ({', '.join(details)})"
        return f"{text} — {access.entry_point}"
    return access.entry_point


def _offer_block(number: int, referral: Referral) -> str:
    offer = referral.offer
    lines = [f"### {number}. {offer.title} — {PARTNER_LABELS[offer.partner]}", "", offer.summary, ""]
    if referral.reasons:
        lines.append("- **Pourquoi elle vous correspond** : " + " ; ".join(referral.reasons) + ".")
    eligibility = eligibility_line(referral.verdict)
    if eligibility:
        lines.append(f"- **Éligibilité** : {eligibility}")
    figures = [
        f"{f.label} : {f.value}" + (" (à confirmer)" if f.to_confirm and "confirmer" not in f.value else "")
        for f in offer.figures[:3]
    ]
    if figures:
        lines.append("- **Repères** : " + " ; ".join(figures) + ".")
    lines.append("- **Pour démarrer** : " + " ".join(offer.access.steps))
    lines.append(f"- **Contact** : {contact_line(referral)}")
    warning = STATUS_WARNINGS.get(offer.status)
    if warning:
        lines.append(f"- **{warning}**" + (f" {offer.status_note}" if offer.status_note else ""))
    elif offer.status_note:
        lines.append(f"- **À savoir** : {offer.status_note}")
    lines.append(f"- **Source** : [{offer.id}] {offer.url}")
    return "\n".join(lines)


class GroundedGenerator:
    name = "grounded"

    def generate(self, context: AnswerContext) -> GeneratedAnswer:
        blocks: list[str] = []
        if context.preface:
            blocks.append(context.preface)
        for offer, premise in context.corrections:
            blocks.append(f"**Une précision importante** : {premise.correction} [{offer.id}]")
        if not context.referrals:
            blocks.append(NO_MATCH)
            door = context.prefecture.name if context.prefecture else "la préfecture de votre département"
            blocks.append(
                f"Pour un projet de collectivité, la bonne porte d'entrée est {door} : le préfet est le délégué "
                "territorial de l'ANCT et peut mobiliser l'ingénierie disponible localement. Vous pouvez aussi "
                "préciser votre projet (thème, étape, taille de la collectivité) pour que je cherche à nouveau."
            )
            return GeneratedAnswer("\n\n".join(blocks), self.name)
        if context.concise:
            blocks.append("Sources : " + " ; ".join(f"[{r.offer.id}] {r.offer.url}" for r in context.referrals))
            return GeneratedAnswer("\n\n".join(blocks), self.name)
        partners = list(dict.fromkeys(PARTNER_NAMES[r.offer.partner] for r in context.referrals))
        who = literal(context.profile.name) if context.profile.name else "votre collectivité"
        blocks.append(
            f"Pour {who}, je vous recommande de vous tourner vers {' et '.join(partners[:2])}"
            + (f" (et {', '.join(partners[2:])})" if len(partners) > 2 else "")
            + ". Voici les offres les plus adaptées :"
        )
        blocks += [_offer_block(i, r) for i, r in enumerate(context.referrals, start=1)]
        if context.ineligible:
            blocks.append(
                "Offres écartées : "
                + " ; ".join(f"{r.offer.title} — {', '.join(r.verdict.failed)}" for r in context.ineligible)
                + "."
            )
        blocks.append(
            "Les montants et conditions évoluent : faites-les confirmer par l'interlocuteur indiqué avant de "
            "déposer un dossier."
        )
        return GeneratedAnswer("\n\n".join(blocks), self.name)
