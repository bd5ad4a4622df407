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
    doors_named: bool = False  # the preface names the competent bodies beyond the partners
    appendix: str | None = None  # after the answer, whatever the generator: the catalogue's aids (pipeline.catalogue)


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
        for piece in streaming(context):
            if isinstance(piece, GeneratedAnswer) and context.appendix:
                yield "\n\n" + context.appendix
                piece = with_appendix(piece, context)
            yield piece
        return
    answer = with_appendix(generator.generate(context), context)
    for paragraph in re.split(r"(?<=\n\n)", answer.text):
        if paragraph:
            yield paragraph
    yield answer


def with_appendix(answer: GeneratedAnswer, context: AnswerContext) -> GeneratedAnswer:
    """The answer followed by the context's appendix (the catalogue section), when there is one."""
    if context.appendix:
        answer.text = f"{answer.text}\n\n{context.appendix}" if answer.text else context.appendix
    return answer


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
    """Who to contact and how, without any web address (links belong to the cards and citations)."""
    access = referral.offer.access
    if referral.contact:
        text = referral.contact.name
        if referral.contact.phone:
            text += f" (tél. {referral.contact.phone})"
        return f"{text} — {access.entry_point}"
    return access.entry_point


def fit_phrase(verdict: Verdict) -> str:
    """Is it for you, in a few words: the short form of eligibility_line for the answer's first lines."""
    if verdict.status == "eligible":
        return "vous semblez éligible"
    if verdict.status == "ineligible":
        return "non éligible : " + " ; ".join(verdict.failed)
    if verdict.missing:
        return "éligibilité à vérifier : " + ", ".join(verdict.missing)
    return "éligibilité à vérifier auprès de l'interlocuteur"


def next_step_line(referral: Referral) -> str:
    """« Prochaine étape » of an offer in one line: its first step, then whom to ask (no URL)."""
    steps = referral.offer.access.steps
    contact = referral.contact
    who = contact.name + (f" (tél. {contact.phone})" if contact.phone else "") if contact else referral.offer.access.entry_point
    first = steps[0].rstrip(".") + ". " if steps else ""
    return f"{first}Interlocuteur : {who}."


def lead_block(context: AnswerContext) -> str:
    """The answer's first lines: the best door, is it for you, the next step; then the other leads."""
    best = context.referrals[0]
    who = f" pour {literal(context.profile.name)}" if context.profile.name else ""
    lines = [
        f"**Par où commencer**{who} : [{best.offer.id}] ({PARTNER_LABELS[best.offer.partner]}) — {fit_phrase(best.verdict)}.",
        f"**Prochaine étape** : {next_step_line(best)}",
    ]
    others = context.referrals[1:]
    if others:
        lines.append(
            "**Autres pistes** : "
            + " ; ".join(f"[{r.offer.id}] ({PARTNER_LABELS[r.offer.partner]})" for r in others)
            + "."
        )
    return "\n".join(lines)


def _offer_block(number: int, referral: Referral) -> str:
    """The full detail of one offer (folded by the widget under its card): a `### N. [id] — Partner`
    heading, then summary, eligibility, figures, « Prochaine étape », status. The offer's page is the
    link the citation becomes; no raw address in the text."""
    offer = referral.offer
    lines = [f"### {number}. [{offer.id}] — {PARTNER_LABELS[offer.partner]}", "", offer.summary, ""]
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
    lines.append("- **Prochaine étape** : " + " ".join(offer.access.steps))
    lines.append(f"- **Interlocuteur** : {contact_line(referral)}")
    warning = STATUS_WARNINGS.get(offer.status)
    if warning:
        lines.append(f"- **{warning}**" + (f" {offer.status_note}" if offer.status_note else ""))
    elif offer.status_note:
        lines.append(f"- **À savoir** : {offer.status_note}")
    return "\n".join(lines)


# An offer citation in the stored text: [offer-id] (not a markdown link, whose label is followed by "(").
CITATION = re.compile(r"\[([a-z0-9]+(?:-[a-z0-9]+)+)\](?!\()")


def format_answer(text: str, offers: dict[str, tuple[str, str]], fmt: str = "markdown") -> str:
    """The stored answer (citations as `[offer-id]`) in the form a client asked for.

    offers maps offer id -> (title, official url). Formats: ``markdown`` — each citation becomes a
    link on the offer's name, `[Titre](https://…)`; ``text`` — plain text, the offer's name without
    markup (no `**`, no `###`, escapes of user text undone); ``cited`` — unchanged, `[offer-id]` markers to join with the
    `citations` field. An id missing from offers keeps its marker (never a dangling link)."""
    if fmt == "cited":
        return text

    def replace(match: re.Match) -> str:
        known = offers.get(match.group(1))
        if known is None:
            return match.group(0)
        title, url = known
        return f"[{title}]({url})" if fmt == "markdown" else title

    out = CITATION.sub(replace, text)
    if fmt == "text":
        out = re.sub(r"\*\*(.+?)\*\*", r"\1", out)
        out = re.sub(r"^#{1,6}\s+", "", out, flags=re.MULTILINE)
        out = re.sub(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)", r"\1", out)
        out = re.sub(r"\\([\\`*_\[\]<>]|:)", r"\1", out)  # user text: « \X » is X (assistant.text.literal)
    return out


class StreamFormatter:
    """format_answer over a stream of text deltas: a citation split across deltas (``[bdt-ed`` then
    ``urenov]``) is held back until it is complete, so a client never sees a raw id or half a link.
    feed(delta) -> text ready to send; flush() -> the rest at the end."""

    HOLD = 80  # a citation is shorter; an unclosed "[" further back is plain text

    def __init__(self, offers: dict[str, tuple[str, str]], fmt: str = "markdown"):
        self.offers, self.fmt, self.pending = offers, fmt, ""

    def feed(self, delta: str) -> str:
        text = self.pending + delta
        cut = text.rfind("[")
        if cut != -1 and "]" not in text[cut:] and len(text) - cut < self.HOLD:
            text, self.pending = text[:cut], text[cut:]
        else:
            self.pending = ""
        return format_answer(text, self.offers, self.fmt)

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return format_answer(text, self.offers, self.fmt)


def correction_blocks(context: AnswerContext) -> list[str]:
    """« Une précision importante » for each outdated premise, attached to its card: cited `[offer-id]`
    (a link on the card's name) when that card is among the referrals the user sees; otherwise a
    correction with its source, the card's official page, never a link on the name of an offer the
    user does not see (a closed programme the question evoked)."""
    shown = {r.offer.id for r in context.referrals}
    return [
        f"**Une précision importante** : {premise.correction} [{offer.id}]" if offer.id in shown
        else f"**Une précision importante** : {premise.correction} (source : [page officielle]({offer.url}))"
        for offer, premise in context.corrections
    ]


class GroundedGenerator:
    name = "grounded"

    def generate(self, context: AnswerContext) -> GeneratedAnswer:
        blocks: list[str] = []
        if context.preface:
            blocks.append(context.preface)
        asked = [r for r in context.ineligible if "named" in r.hit.adjustments]
        if asked:  # the asker named an offer that is not open to them: that is the answer to give first
            blocks.append("**Réponse à votre question** : " + " ; ".join(
                f"« {r.offer.title} » ne vous est pas ouvert : {', '.join(r.verdict.failed)}" for r in asked) + ".")
        blocks += correction_blocks(context)
        if not context.referrals and context.doors_named:
            return GeneratedAnswer("\n\n".join(blocks), self.name)  # the preface names the door
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
            # A follow-up about the offers already shown: answer it and refer to them, no cards again.
            blocks.append("Offres concernées : " + " ; ".join(f"[{r.offer.id}]" for r in context.referrals) + ".")
            return GeneratedAnswer("\n\n".join(blocks), self.name)
        blocks.append(lead_block(context))
        blocks += [_offer_block(i, r) for i, r in enumerate(context.referrals, start=1)]
        others = [r for r in context.ineligible if r not in asked]
        if others:
            blocks.append(
                "Offres écartées : "
                + " ; ".join(f"{r.offer.title} — {', '.join(r.verdict.failed)}" for r in others)
                + "."
            )
        blocks.append(
            "Les montants et conditions évoluent : faites-les confirmer par l'interlocuteur indiqué avant de "
            "déposer un dossier."
        )
        return GeneratedAnswer("\n\n".join(blocks), self.name)
