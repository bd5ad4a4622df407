"""Project facts said in a message that eligibility rules need: works amount, opening, structure.

Input is the folded message (lower case, no accents, see assistant.text.fold). Recognised forms:
« 45 000 € », « 45 000 euros HT », « 45 k€ », « 1,2 M€ », « 1,5 million d'euros » → an amount in €;
« il manque 500 k€ », « reste à financer : 80 000 € » → what is still to be financed (not the works);
« 1,80 m d'ouverture », « une ouverture de 3 m », « 1 m 80 d'ouverture » → the opening in metres;
« pont », « passerelle » → a bridge; « mur de soutènement » → a retaining wall.
An amount said next to « budget », « subvention », « aide », « dotation », « prêt » is not the works'.
"""

from __future__ import annotations

import re

from assistant.patterns import screened

# 45 000 / 45.000 / 45000 / 1,2 / 1.5 followed by a unit (k€, M€, €, euros, million(s) d'euros).
AMOUNT = screened(
    r"(?<![\d,.])(\d{1,3}(?:[ .]\d{3})+|\d+(?:[,.]\d+)?)\s*"
    r"(k\s*€|k\s*euros?|keur|m\s*€|m\s*euros?|meur|millions? d'euros|millions? €|mille euros|€|euros?|eur\b)"
    r"(\s*(ht|hors taxes?|ttc))?"
)
MULTIPLIERS = {"k": 1_000, "mille": 1_000, "m": 1_000_000, "million": 1_000_000}
GAP_CUE = screened(r"(il (nous )?manque|manquent|reste a financer|reste a charge|reste a trouver|besoin de trouver)\D{0,25}$")
NOT_WORKS_CUE = screened(r"(budget|subvention|aide|dotation|pret|emprunt|enveloppe|fonds|epargne)\D{0,20}$")
OPENING = screened(
    r"(\d+(?:[,.]\d+)?)\s*(?:m|metres?)(?:\s*(\d{1,2}))?\s*(?:d'|de )\s*(?:ouverture|portee)"
    r"|(?:ouverture|portee)\s*(?:de|d'environ|:|fait|est de|mesure)?\s*(\d+(?:[,.]\d+)?)\s*(?:m|metres?)(?:\s*(\d{1,2}))?\b"
)
WALL = screened(r"\bmurs? de soutenement\b|\bmur\b")
BRIDGE = screened(r"\bponts?\b|\bpasserelles?\b|\bponceaux?\b|\bouvrages? d'art\b")


def _euros(number: str, unit: str) -> int:
    if re.search(r"[ .]\d{3}$", number):
        value = float(re.sub(r"[ .]", "", number))
    else:
        value = float(number.replace(",", "."))
    for word, factor in MULTIPLIERS.items():
        if unit.startswith(word):
            return int(round(value * factor))
    return int(round(value))


def _metres(whole: str, centimetres: str | None) -> float:
    value = float(whole.replace(",", "."))
    if centimetres:  # « 1 m 80 »
        value += int(centimetres) / (10 if len(centimetres) == 1 else 100)
    return value


def extract_project_facts(folded: str, profile) -> None:
    """Set works_amount_eur/works_amount_ht, funding_gap_eur, opening_m and structure_kind on `profile`."""
    text = folded.replace("\u00a0", " ").replace("\u202f", " ")
    for match in AMOUNT.finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        euros = _euros(match.group(1), match.group(2).replace(" ", ""))
        if GAP_CUE.search(before):
            profile.funding_gap_eur = profile.funding_gap_eur or euros
        elif not NOT_WORKS_CUE.search(before) and profile.works_amount_eur is None:
            profile.works_amount_eur = euros
            profile.works_amount_ht = (match.group(4) or "").strip() in {"ht", "hors taxe", "hors taxes"}
    if (opening := OPENING.search(text)) is not None:
        if opening.group(1):
            profile.opening_m = _metres(opening.group(1), opening.group(2))
        else:
            profile.opening_m = _metres(opening.group(3), opening.group(4))
    wall, bridge = WALL.search(text), BRIDGE.search(text)
    if wall and (not bridge or wall.start() < bridge.start()):
        profile.structure_kind = "wall"
    elif bridge or profile.opening_m is not None:
        profile.structure_kind = "bridge"
