"""Judge notices: outdated premises the message relies on, and quoted programme names that do not exist."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from assistant.schema import Offer, OutdatedPremise
from assistant.offer_names import name_keys
from assistant.text import fold, literal, stem, words

QUOTED = re.compile(r"[«“\"]\s*([^«»“”\"]{3,80}?)\s*[»”\"]")


# Function words skipped when phrases are compared: « transfert de l'eau » is « transfert eau ».
GLUE = frozenset(
    "le la les l de des du d un une au aux a en et y il elle on nous vous ils elles t ce cet cette "
    "son sa ses notre nos votre vos leur leurs mon ma mes".split()
)
# Share of a claim phrase that must be said, as one run of its words in order. Chosen on
# tests/data/premises.yaml and reported on tests/data/premises-heldout.yaml by
# `python -m evals.notices` (the figures are in its docstring).
CLAIM_COVERAGE = 1.0
# Words that may come inside a subject said (« recensement gratuit des ponts » names the census).
SUBJECT_GAP = 1


def phrase_terms(text: str) -> tuple[str, ...]:
    """A text as the sequence of its stemmed, accent-folded words, function words (GLUE) left out."""
    return tuple(stem(w) for w in words(fold(text)) if w not in GLUE)


def _runs(seq: tuple[str, ...], phrase: tuple[str, ...]) -> list[int]:
    """Start positions where `phrase` occurs as a run of `seq`."""
    n = len(phrase)
    return [i for i in range(len(seq) - n + 1) if seq[i:i + n] == phrase] if n else []


def _spans(seq: tuple[str, ...], phrase: tuple[str, ...], gap: int) -> list[tuple[int, int]]:
    """(start, end) of each place where `phrase` is said in `seq`, its words in order with at most
    `gap` other words between two of them."""
    spans = []
    for start in (i for i, term in enumerate(seq) if term == phrase[0]):
        end = start
        for term in phrase[1:]:
            end = next((j for j in range(end + 1, min(end + 2 + gap, len(seq))) if seq[j] == term), -1)
            if end < 0:
                break
        else:
            spans.append((start, end + 1))
    return spans


def coverage(seq: tuple[str, ...], phrase: tuple[str, ...]) -> float:
    """Share of `phrase` found in `seq` as its longest run of consecutive words (0 to 1)."""
    for n in range(len(phrase), 0, -1):
        if any(_runs(seq, phrase[i:i + n]) for i in range(len(phrase) - n + 1)):
            return n / len(phrase)
    return 0.0


@dataclass(frozen=True)
class _Premise:
    offer: Offer
    premise: OutdatedPremise
    subjects: tuple[tuple[str, ...], ...]
    claims: tuple[tuple[str, ...], ...]
    longer: tuple[tuple[str, ...], ...]  # other offers' names holding a subject (« Programme national Ponts – Travaux »)


class PremiseIndex:
    """Each offer's outdated premises, as the phrases that name their subject and say their claim."""

    def __init__(self, offers: dict[str, Offer], claim_coverage: float = CLAIM_COVERAGE):
        self.claim_coverage = claim_coverage
        names = {o.id: {phrase_terms(k) for n in [o.title, *o.aliases] for k in name_keys(n)} for o in offers.values()}
        self.premises = []
        for o in offers.values():
            for p in o.outdated_premises:
                subjects = tuple(t for t in map(phrase_terms, p.subject) if t)
                longer = tuple(
                    name for other, terms in names.items() if other != o.id for name in terms
                    if name not in subjects and any(len(name) > len(s) and _runs(name, s) for s in subjects)
                )
                claims = tuple(t for t in map(phrase_terms, p.claims) if t)
                self.premises.append(_Premise(o, p, subjects, claims, longer))

    def outdated_premises(self, message: str) -> list[tuple[Offer, OutdatedPremise]]:
        """The outdated premise the message asserts, if any: [(offer, premise)] or [].

        A premise is asserted when the message names its subject (one of `subject`, its words in order,
        SUBJECT_GAP other words at most between two of them, not inside a longer name of another offer: « Programme national Ponts Travaux » does
        not name the census programme) and says its claim: CLAIM_COVERAGE of one of `claims`, as a run
        of words in order (« fin des OPAH », not « OPAH-RU … fin 2026 »); a premise without claims is
        asserted by its subject alone (a name that no longer exists: ZRR, SARE, « Habiter facile »).
        Several cards may record the same belief (the water transfer): the best match is corrected
        once. The threshold is calibrated by `python -m evals.notices`.
        """
        seq = phrase_terms(message)
        found = []
        for entry in self.premises:
            hidden = {i for name in entry.longer for start in _runs(seq, name) for i in range(start, start + len(name))}
            said = any(not set(range(*span)) <= hidden for s in entry.subjects for span in _spans(seq, s, SUBJECT_GAP))
            if not said:
                continue
            if not entry.claims:
                found.append((1.0, 0, entry))
                continue
            best = max((coverage(seq, c), len(c)) for c in entry.claims)
            if best[0] >= self.claim_coverage:
                found.append((best[0], round(best[0] * best[1]), entry))
        # The claim said at greater length wins (« plus d'OPAH » over « OPAH »).
        found.sort(key=lambda f: (-f[1], -f[0]))
        return [(entry.offer, entry.premise) for *_, entry in found[:1]]


def unknown_programmes(message: str, offers: dict[str, Offer]) -> str | None:
    """A quoted programme name that matches no card is said to be unknown, never taken as real."""
    unknown = []
    for name in QUOTED.findall(message):
        key = fold(name.strip())
        if len(key) < 4:
            continue
        known = any(
            fuzz.partial_ratio(key, fold(n)) >= 90
            for offer in offers.values()
            for n in [offer.title, *offer.aliases]
            if len(n) >= 4
        )
        if not known:
            unknown.append(name.strip())
    if not unknown:
        return None
    names = ", ".join(f"« {literal(n)} »" for n in unknown)
    return (
        f"Je ne trouve aucun dispositif nommé {names} parmi les offres vérifiées de l'ANCT, de ses partenaires "
        "et de l'État : il n'existe peut-être pas, ou pas sous ce nom. Fiez-vous aux pages officielles ; voici "
        "les offres réelles qui s'en rapprochent."
    )
