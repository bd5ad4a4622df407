"""Judge notices: outdated premises the message relies on, and quoted programme names that do not exist."""

from __future__ import annotations

import re
from collections import Counter

from rapidfuzz import fuzz

from assistant.schema import Offer, OutdatedPremise
from assistant.text import fold, literal, match_terms

QUOTED = re.compile(r"[«“\"]\s*([^«»“”\"]{3,80}?)\s*[»”\"]")


# A word in the names of more than this share of the offers (« fonds », « programme », « aide »)
# names no offer in particular.
COMMON_IN_NAMES = 0.1
# A word in more than this share of the cards (« commune », « projet ») claims nothing on its own.
EVERYWHERE_IN_CARDS = 0.5
ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,}\b")


class PremiseIndex:
    """Each offer's outdated premises with their keywords' terms and the offer's names, and the
    names of active offers."""

    def __init__(self, offers: dict[str, Offer]):
        self.active_names = {fold(n) for o in offers.values() if o.status == "active" for n in [o.title, *o.aliases]}
        in_names = Counter(t for o in offers.values() for t in set(match_terms(" ".join([o.title, *o.aliases]))))
        common = {t for t, n in in_names.items() if n > COMMON_IN_NAMES * len(offers)}
        in_cards = Counter(t for o in offers.values() for t in set(match_terms(" ".join([o.title, o.summary, o.description]))))
        self.everywhere = {t for t, n in in_cards.items() if n > EVERYWHERE_IN_CARDS * len(offers)}
        self.premises = [
            (o, p, [(k, set(match_terms(k))) for k in p.keywords], _names(o, common))
            for o in offers.values()
            for p in o.outdated_premises
        ]

    def outdated_premises(self, message: str) -> list[tuple[Offer, OutdatedPremise]]:
        """Premises the corpus marks as outdated that the message asserts, spotted by their keywords.

        What the premise is about must be said: one of its keywords holding a word of the offer's
        names or an acronym (« NPNRU », « MaPrimeRénov' gelée »), or the offer's own name in the
        message; keywords any question may hold (« date limite », « 2026 ») are never enough. Then
        the claim: two keywords, a keyword of several words holding the subject, or one of several
        words plus another keyword word (three words in all); an acronym keyword that names no
        active offer (ZRR, SARE…) is enough on its own. Calibrated on tests/data/premises.yaml.
        """
        stems = set(match_terms(message))
        found = []
        for offer, premise, keywords, names in self.premises:
            anchored = [(k, ks) for k, ks in keywords if ks and ks <= stems]
            subjects = [(k, ks) for k, ks in anchored if ks & set().union(*names) or ACRONYM.search(k)]
            if not anchored or not (subjects or any(name <= stems for name in names)):
                continue
            matched = stems & set().union(*(ks for _, ks in keywords))
            # A keyword of several words that holds the subject says the claim (« MaPrimeRénov' gelée »),
            # unless its other words are in most cards (« commune MaPrimeRénov' » says nothing yet).
            phrase = any(len(ks) >= 2 and ks - set().union(*names) - self.everywhere for _, ks in subjects) or (
                any(len(ks) >= 2 for _, ks in anchored) and len(matched) >= 3
            )
            lone_acronym = any(k.isupper() and len(k) <= 6 and fold(k) not in self.active_names for k, _ in anchored)
            if len(anchored) >= 2 or phrase or lone_acronym:
                found.append((len(anchored), len(matched), offer, premise))
        # Several cards may record the same belief (the water transfer): correct it once.
        return [(offer, premise) for *_, offer, premise in sorted(found, key=lambda f: (-f[0], -f[1]))[:1]]


def _names(offer: Offer, common: set[str]) -> list[set[str]]:
    """Each name of an offer (title, aliases) as its terms, without the words common to many names."""
    return [terms for n in [offer.title, *offer.aliases] if (terms := set(match_terms(n)) - common)]


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
