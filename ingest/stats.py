"""Coverage tables of the corpus, as markdown so they paste into issues and notes."""

from __future__ import annotations

from collections import Counter

from ingest.corpus import Corpus


def _table(rows: list[str], columns: list[str], counts: Counter, title: str) -> str:
    header = f"| {title} | " + " | ".join(columns) + " | total |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        cells = [counts.get((row, column), 0) for column in columns]
        lines.append(f"| {row} | " + " | ".join(str(c or "·") for c in cells) + f" | {sum(cells)} |")
    return "\n".join(lines)


def coverage_tables(corpus: Corpus) -> str:
    partners = sorted({o.partner for o in corpus.offers.values()})
    by_support: Counter = Counter()
    by_theme: Counter = Counter()
    for offer in corpus.offers.values():
        for support in offer.support_types:
            by_support[(offer.partner, support)] += 1
        for theme in offer.themes:
            by_theme[(theme, offer.partner)] += 1
    supports = sorted({s for _, s in by_support})
    themes = [t.id for t in corpus.themes.themes]
    return (
        _table(partners, supports, by_support, "partenaire × type d'aide")
        + "\n\n"
        + _table(themes, partners, by_theme, "thème × partenaire")
    )
