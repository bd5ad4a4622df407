"""Judge notices: outdated premises the message relies on, and quoted programme names that do not exist."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from assistant.schema import Offer, OutdatedPremise
from assistant.text import fold, literal, match_terms

QUOTED = re.compile(r"[«“\"]\s*([^«»“”\"]{3,80}?)\s*[»”\"]")


class PremiseIndex:
    """Each offer's outdated premises with their keywords' stems, and the names of active offers."""

    def __init__(self, offers: dict[str, Offer]):
        self.active_names = {fold(n) for o in offers.values() if o.status == "active" for n in [o.title, *o.aliases]}
        self.premises = [
            (o, p, [(k, set(match_terms(k))) for k in p.keywords]) for o in offers.values() for p in o.outdated_premises
        ]

    def outdated_premises(self, message: str) -> list[tuple[Offer, OutdatedPremise]]:
        """Premises the corpus marks as outdated, spotted by their keywords.

        Raised when two of its keywords are present, or one keyword of several words plus another
        keyword word (three words in all); an acronym keyword that names no active offer (ZRR,
        SARE…) is enough on its own. A lone common word ("2026") never is.
        """
        stems = set(match_terms(message))
        found = []
        for offer, premise, keywords in self.premises:
            anchored = [(k, ks) for k, ks in keywords if ks and ks <= stems]
            if not anchored:
                continue
            matched = stems & set().union(*(ks for _, ks in keywords))
            phrase = any(len(ks) >= 2 for _, ks in anchored) and len(matched) >= 3
            lone_acronym = any(k.isupper() and len(k) <= 6 and fold(k) not in self.active_names for k, _ in anchored)
            if len(anchored) >= 2 or phrase or lone_acronym:
                found.append((len(anchored), len(matched), offer, premise))
        # Several cards may record the same belief (the water transfer): correct it once.
        return [(offer, premise) for *_, offer, premise in sorted(found, key=lambda f: (-f[0], -f[1]))[:1]]


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
