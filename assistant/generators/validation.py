"""Check a generated answer against its context before anyone sees it.

validate(text, context) returns machine-readable problems (English, no French), empty when the
answer may be shown:
  - "no citation"                  the answer cites no [offer-id] although offers were retrieved
  - "unknown citation <id>"        a cited id is not an offer of the context
  - "ineligible offer <id>"        a cited offer is one the asker is not eligible for
  - "unsupported figure <figure>"  an amount, rate, date or number absent from every cited card
  - "prompt leak"                  the answer reproduces the system prompt
Figures are compared with the cited cards (title, summary, description, figures, conditions, access,
status note, outdated premises), the eligibility lines and contacts computed for them, and the asker's
own profile numbers (population, codes).
"""

from __future__ import annotations

import re

from assistant.answer import AnswerContext, Referral, contact_line, eligibility_line
from assistant.eligibility import describe_rule
from assistant.generators.figures import URL, FigureSet, extract
from assistant.schema import Offer
from assistant.text import fold

CITED = re.compile(r"\[([^\[\]\s]{1,80})\](?!\()")
LEAK_WINDOW = 48


def cited_ids(text: str) -> list[str]:
    """Bracketed tokens, in order, without duplicates; markdown links "[texte](url)" are not citations."""
    return list(dict.fromkeys(m.group(1) for m in CITED.finditer(URL.sub(" ", text))))


def offer_texts(offer: Offer) -> list[str]:
    texts = [offer.title, *offer.aliases, offer.summary, offer.description, offer.territorial_scope]
    texts += [f"{f.label} : {f.value}" for f in offer.figures]
    texts += offer.eligibility.conditions + [describe_rule(r) for r in offer.eligibility.population]
    if offer.cost:
        texts += [describe_rule(r) for r in offer.cost.free_for] + ([offer.cost.note] if offer.cost.note else [])
    texts += [offer.access.entry_point, *offer.access.steps]
    texts += [t for t in (offer.status_note, offer.period.start, offer.period.end) if t]
    texts += [p.correction for p in offer.outdated_premises]
    return texts


def _referral_texts(referral: Referral) -> list[str]:
    texts = offer_texts(referral.offer) + referral.reasons + [eligibility_line(referral.verdict), contact_line(referral)]
    if referral.contact:
        texts += [t for t in (referral.contact.note, referral.contact.phone) if t]
    return texts


def _profile_numbers(context: AnswerContext) -> list[int]:
    profile = context.profile
    raw = [profile.population, profile.insee, profile.departement_code, profile.region_code, profile.epci_siren]
    return [int(v) for v in raw if v is not None and str(v).isdigit()]


def _fragments(text: str) -> list[str]:
    """Folded windows of the system prompt's longer lines, to spot it being reproduced."""
    lines = [re.sub(r"\s+", " ", fold(line)).strip() for line in text.splitlines()]
    return [line[i : i + LEAK_WINDOW] for line in lines if len(line) >= LEAK_WINDOW for i in (0, len(line) - LEAK_WINDOW)]


def validate(text: str, context: AnswerContext, system_prompt: str | None = None) -> list[str]:
    problems: list[str] = []
    if system_prompt:
        folded = re.sub(r"\s+", " ", fold(text))
        if any(fragment in folded for fragment in _fragments(system_prompt)):
            problems.append("prompt leak")

    referrals = {r.offer.id: r for r in context.referrals}
    excluded = {r.offer.id for r in context.ineligible} | {
        r.offer.id for r in context.referrals if r.verdict.status == "ineligible"
    }
    cited = cited_ids(text)
    for offer_id in cited:
        if offer_id in excluded:
            problems.append(f"ineligible offer {offer_id}")
        elif offer_id not in referrals:  # a correction's card not shown is no citation (answer.correction_blocks)
            problems.append(f"unknown citation {offer_id}")
    known = [i for i in cited if i in referrals]
    if context.referrals and not any(i in referrals for i in cited):
        problems.append("no citation")

    sources = FigureSet([], _profile_numbers(context))
    for offer_id in known:
        for source in _referral_texts(referrals[offer_id]):
            sources.add(source)
    for figure in extract(text):
        if not sources.supports(figure):
            problems.append(f"unsupported figure {figure.canonical}")
    return list(dict.fromkeys(problems))


def fallback_reason(problems: list[str]) -> str:
    shown = "; ".join(problems[:3])
    return "validation: " + shown + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
