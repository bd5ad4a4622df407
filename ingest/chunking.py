"""Cut an offer into passages: one card passage (who, what, for whom) and one per description section.

Each section passage repeats the offer title so that it still makes sense when retrieved alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.schema import Offer, Theme

CHUNKER_VERSION = "2"
AUDIENCE_LABELS = {
    "commune": "communes", "epci": "intercommunalités (EPCI)", "department": "départements",
    "region": "régions", "special": "syndicats et groupements", "social_landlord": "bailleurs sociaux",
    "epl": "entreprises publiques locales (SEM, SPL)", "public_body": "établissements publics",
    "association": "associations", "company": "entreprises", "coownership": "copropriétés",
    "household": "particuliers",
}
SECTION = re.compile(r"^##\s+(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Passage:
    id: str
    offer_id: str
    kind: str  # "card" or "section"
    text: str

    def metadata(self, offer: Offer, offer_hash: str) -> dict[str, str]:
        return {
            "offer_id": self.offer_id,
            "kind": self.kind,
            "partner": offer.partner,
            "status": offer.status,
            "offer_hash": offer_hash,
        }


def card_text(offer: Offer, themes: dict[str, Theme]) -> str:
    theme_labels = ", ".join(themes[t].label for t in offer.themes if t in themes)
    audiences = ", ".join(AUDIENCE_LABELS.get(a, a) for a in offer.audiences)
    parts = [offer.title]
    if offer.aliases:
        parts.append("Aussi appelé : " + ", ".join(offer.aliases) + ".")
    parts += [offer.summary, f"Thèmes : {theme_labels}.", f"Pour : {audiences}."]
    parts += offer.eligibility.conditions
    return " ".join(parts)


def sections(description: str) -> list[tuple[str, str]]:
    """(heading, body) pairs; text before the first heading gets an empty heading."""
    marks = list(SECTION.finditer(description))
    if not marks:
        return [("", description.strip())]
    found = []
    head = description[: marks[0].start()].strip()
    if head:
        found.append(("", head))
    for mark, following in zip(marks, marks[1:] + [None]):
        body = description[mark.end() : following.start() if following else len(description)].strip()
        if body:
            found.append((mark.group(1).strip(), body))
    return found


def chunk_offer(offer: Offer, themes: dict[str, Theme]) -> list[Passage]:
    passages = [Passage(f"{offer.id}#card", offer.id, "card", card_text(offer, themes))]
    for number, (heading, body) in enumerate(sections(offer.description), start=1):
        title = f"{offer.title} — {heading}" if heading else offer.title
        passages.append(Passage(f"{offer.id}#s{number}", offer.id, "section", f"{title}. {body}"))
    return passages
