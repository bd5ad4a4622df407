"""Figures in French text, normalised so that "45 000 €", "45 k€" and "45000 euros" compare equal.

A figure is an amount (€, k€, M€, Md€, "millions d'euros"), a percentage, a full date ("19 mai 2025",
"1er janvier 2025", "2025-05-19"), a month ("juin 2023") or any other number ("2025", "18 mois",
"3 500 habitants", "1,1 million"). Small bare integers (≤ 10 without a unit: "3 offres") and list
markers are not figures. Numbers inside URLs and [offer-id] citations are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MONTHS = {
    "janvier": 1, "fevrier": 2, "février": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "aout": 8, "août": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12, "décembre": 12,
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_SPACE = "[ \u00a0\u202f]"
# Thousands grouped by spaces ("45 000") or dots ("45.000"), else a plain number with decimals.
_NUMBER = rf"\d{{1,3}}(?:{_SPACE}\d{{3}})+(?:,\d+)?(?!\d)|\d{{1,3}}(?:\.\d{{3}})+(?![\d,])|\d+(?:[.,]\d+)?"
_SCALE_WORD = r"milliards?|millions?|mille"
_SCALE_ABBR = r"Mds?|Mrds?|M|k|K"  # only before a currency sign: "30 M€", "45 k€"
_CURRENCY = r"(?:d['’]\s*|de\s+)?(?:€|euros?\b|EUR\b)"
_PERCENT = r"%|pour\s?cent\b"
_UNIT = (
    r"habitants?|ans?|années?|mois|jours?|semaines?|heures?|logements?|lots?|communes?|territoires?|"
    r"km|kilomètres?|m²|m2|m³|ha|hectares?|étoiles?|places?|postes?|projets?|lauréats?|sites?|"
    r"kwh|mwh|gwh|kw|mw|tonnes?|t\b|points?|fois|collectivités?|services?|conseillers?|personnes?"
)

FIGURE = re.compile(
    rf"(?<![\w.,])(?P<number>{_NUMBER})"
    rf"(?:{_SPACE}?(?P<scale_word>{_SCALE_WORD})\b|{_SPACE}?(?P<scale_abbr>{_SCALE_ABBR})(?=\s*€))?"
    rf"(?:\s*(?P<currency>{_CURRENCY})|\s*(?P<percent>{_PERCENT})|\s+(?P<unit>{_UNIT})(?![\w]))?",
    re.IGNORECASE,
)
DATE = re.compile(rf"(?<!\w)(?P<day>\d{{1,2}})(?:er)?{_SPACE}+(?P<month>{_MONTH}){_SPACE}+(?P<year>\d{{4}})(?!\d)", re.IGNORECASE)
MONTH_YEAR = re.compile(rf"(?<!\w)(?P<month>{_MONTH}){_SPACE}+(?P<year>\d{{4}})(?!\d)", re.IGNORECASE)
ISO_DATE = re.compile(r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?(?!\d)")
URL = re.compile(r"https?://\S+|www\.\S+")
CITATION = re.compile(r"\[[^\[\]\s]{1,80}\]")
LIST_MARKER = re.compile(r"^(\s*(?:#+\s*)?)\d{1,2}[.)](?=\s)", re.MULTILINE)
SCALES = {"k": 10**3, "mille": 10**3, "m": 10**6, "million": 10**6, "millions": 10**6,
          "md": 10**9, "mds": 10**9, "mrd": 10**9, "mrds": 10**9, "milliard": 10**9, "milliards": 10**9}


@dataclass(frozen=True)
class Figure:
    kind: str  # money, percent, date, month, number
    value: tuple  # (Decimal,) or (year, month[, day])
    text: str

    @property
    def canonical(self) -> str:
        """Language-neutral spelling for machine reasons: 45000 EUR, 50%, 2025-05-19, 3500."""
        if self.kind in {"date", "month"}:
            return "-".join(f"{part:02d}" for part in self.value)
        number = format(self.value[0].normalize(), "f")
        return {"money": f"{number} EUR", "percent": f"{number}%"}.get(self.kind, number)


def parse_number(raw: str) -> Decimal | None:
    compact = re.sub(_SPACE, "", raw)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", compact):
        compact = compact.replace(".", "")
    try:
        return Decimal(compact.replace(",", "."))
    except InvalidOperation:
        return None


def _blank(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def extract(text: str) -> list[Figure]:
    """Every figure in the text, in order of kind (dates first, then numbers)."""
    text = _blank(_blank(text, URL), CITATION)
    text = LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
    found: list[Figure] = []
    for pattern in (DATE, ISO_DATE, MONTH_YEAR):
        for m in pattern.finditer(text):
            month = MONTHS.get(m.group("month").lower()) or int(m.group("month"))
            day = m.groupdict().get("day")
            if not 1 <= month <= 12:
                continue
            if day:
                found.append(Figure("date", (int(m.group("year")), month, int(day)), m.group(0)))
            else:
                found.append(Figure("month", (int(m.group("year")), month), m.group(0)))
        text = _blank(text, pattern)
    for m in FIGURE.finditer(text):
        value = parse_number(m.group("number"))
        if value is None:
            continue
        end = m.end()
        if end < len(text) and (text[end].isalpha() and not m.group("currency")):
            continue  # ordinals and codes: "2e", "1er", "A4"
        scale = (m.group("scale_word") or m.group("scale_abbr") or "").lower()
        if scale:
            value *= SCALES[scale]
        if m.group("currency"):
            kind = "money"
        elif m.group("percent"):
            kind = "percent"
        else:
            kind = "number"
            if not scale and not m.group("unit") and value == value.to_integral_value() and value <= 10:
                continue
        found.append(Figure(kind, (value,), m.group(0).strip()))
    return found


class FigureSet:
    """The figures a source text supports; a number matches any value the sources hold."""

    def __init__(self, texts: list[str], numbers: list[int | float] = ()):
        self.keys: set[tuple] = set()
        self.values: set[Decimal] = set()
        for number in numbers:
            self.values.add(Decimal(str(number)))
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        for figure in extract(text):
            self.keys.add((figure.kind, figure.value))
            if figure.kind == "date":
                year, month, day = figure.value
                self.keys.add(("month", (year, month)))
                self.values.update({Decimal(year), Decimal(day)})
            elif figure.kind == "month":
                self.values.add(Decimal(figure.value[0]))
            else:
                self.values.add(figure.value[0])
        # Raw numbers too: "30 M€" also supports "30", "3 500" in "moins de 3 500" supports 3500.
        for m in re.finditer(_NUMBER, _blank(text, URL)):
            value = parse_number(m.group(0))
            if value is not None:
                self.values.add(value)

    def supports(self, figure: Figure) -> bool:
        if figure.kind in {"date", "month", "money", "percent"}:
            return (figure.kind, figure.value) in self.keys
        return figure.value[0] in self.values
