"""Coverage tables of the corpus, as markdown so they paste into issues and notes."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from assistant.schema import Offer
from ingest.corpus import TO_CONFIRM, Corpus, uncovered_themes


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


AGE_BUCKETS = [(90, "moins de 3 mois"), (182, "3 à 6 mois"), (365, "6 à 12 mois"), (None, "plus de 12 mois")]


def _age_bucket(days: int) -> str:
    return next(label for limit, label in AGE_BUCKETS if limit is None or days < limit)


def items_to_confirm(offer: Offer) -> int:
    """How many fields of a card carry « à confirmer » (figures flagged to_confirm count once each)."""
    texts = [offer.summary, offer.description, offer.status_note or "", offer.cost.note if offer.cost else "",
             *offer.eligibility.conditions, *(f.value for f in offer.figures), *(f.label for f in offer.figures)]
    flagged = sum(TO_CONFIRM in text.lower() for text in texts)
    return flagged + sum(f.to_confirm and TO_CONFIRM not in f.value.lower() for f in offer.figures)


def freshness_tables(corpus: Corpus, today: dt.date | None = None) -> str:
    """Cards by age of verification, active offers whose period ended, cards with « à confirmer » items."""
    today = today or dt.date.today()
    ages: Counter = Counter()
    for offer in corpus.offers.values():
        ages[(_age_bucket((today - offer.last_verified).days), "offres")] += 1
    for signpost in corpus.signposts.values():
        ages[(_age_bucket((today - signpost.last_verified).days), "portes")] += 1
    lines = [_table([label for _, label in AGE_BUCKETS], ["offres", "portes"], ages, "dernière vérification"), ""]
    lines.append("| offre active dont la période est terminée | fin | vérifiée le |")
    lines.append("|---|---|---|")
    for offer_id, end in sorted(corpus.ended.items(), key=lambda item: item[1]):
        lines.append(f"| {offer_id} | {end} | {corpus.offers[offer_id].last_verified} |")
    if not corpus.ended:
        lines.append("| (aucune) | | |")
    lines += ["", "| fiche avec des éléments « à confirmer » | éléments |", "|---|---|"]
    flagged = {o.id: n for o in corpus.offers.values() if (n := items_to_confirm(o))}
    for offer_id, count in sorted(flagged.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"| {offer_id} | {count} |")
    lines.append(f"| total : {len(flagged)} fiches sur {len(corpus.offers)} | {sum(flagged.values())} |")
    return "\n".join(lines)


def coverage_gaps(corpus: Corpus) -> str:
    """Needs the corpus cannot serve: themes with no offer and no signpost (kept empty)."""
    gaps = uncovered_themes(corpus)
    labels = corpus.themes.by_id()
    if not gaps:
        return "Besoins sans offre ni porte d'entrée : aucun."
    return "Besoins sans offre ni porte d'entrée :\n" + "\n".join(f"- {labels[t].label} (`{t}`)" for t in gaps)


def signpost_table(corpus: Corpus) -> str:
    lines = ["| porte d'entrée | organisme | trouver le bon interlocuteur | thèmes |", "|---|---|---|---|"]
    for signpost in sorted(corpus.signposts.values(), key=lambda s: s.id):
        lines.append(f"| {signpost.id} | {signpost.body} | {signpost.locate} | {', '.join(signpost.themes)} |")
    return "\n".join(lines)
