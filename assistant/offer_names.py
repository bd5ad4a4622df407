"""Which offers a question names, found in one pass over the message whatever the catalogue's size.

One Aho-Corasick automaton (pyahocorasick) per index generation holds every offer's folded title
and aliases; a turn walks the folded message once and keeps the matches that stand as whole words
(not inside a longer word or a hyphenated compound: "PVD" yes, "PVDx" and "OPAH-RU" for "OPAH" no).
Same rule as a regex per name, `(?<![\\w-])name(?![\\w-])`, without compiling one per offer per turn.
Two more rules, so that a question names what its asker typed:
- a name is also matched without its spaced dashes (« Programme national Ponts – Travaux » typed
  « Programme national Ponts Travaux »);
- a match lying inside a longer match of another name does not count: « Programme national Ponts
  Travaux » names the works programme, not the census programme whose alias is « Programme national
  Ponts » (longest match, as in named-entity recognition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import ahocorasick

from assistant.schema import Offer
from assistant.text import fold

MIN_NAME_CHARS = 3  # shorter folded names ("PC") would match too much
SPACED_DASH = re.compile(r"\s+[-\u2010-\u2015]\s+|\s*[\u2013\u2014]\s*")


def name_keys(name: str) -> set[str]:
    """The folded forms a name is found under: as written, and without its spaced dashes."""
    key = fold(name)
    return {k for k in (key, SPACED_DASH.sub(" ", key)) if len(k) >= MIN_NAME_CHARS}


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_-"


@dataclass(frozen=True)
class Named:
    """Offer ids named in one message: by their title, and by their title or an alias."""

    by_title: frozenset[str]
    by_any_name: frozenset[str]

    def names(self, offer_id: str, titles_only: bool = False) -> bool:
        return offer_id in (self.by_title if titles_only else self.by_any_name)


NameKeys = tuple[tuple[str, bool], ...]  # an offer's (folded key, is its title) pairs


def offer_keys(names: list[str]) -> NameKeys:
    """The keys an offer is found under: [title, *aliases] -> ((key, is_title), ...)."""
    return tuple((key, position == 0) for position, name in enumerate(names) for key in sorted(name_keys(name)))


class OfferNames:
    """Prebuilt name index over a set of offers; `find` costs O(len(message) + matches).

    `keys` (offer id -> offer_keys) is kept with the automaton, so that the index of a catalogue where
    a few cards changed folds only their names again (from_cards with `known`)."""

    def __init__(self, offers: Iterable[Offer]):
        self._build({offer.id: offer_keys([offer.title, *offer.aliases]) for offer in offers})

    @classmethod
    def from_cards(cls, cards: Iterable[dict], known: Mapping[str, NameKeys] | None = None) -> OfferNames:
        """The same index from cards in their JSON form (an index generation's snapshot); known: the
        keys of cards whose names did not change (an earlier index's `keys`), not folded again."""
        known = known or {}
        names = cls.__new__(cls)
        names._build({card["id"]: known[card["id"]] if card["id"] in known else offer_keys([card["title"], *card.get("aliases", [])])
                      for card in cards})
        return names

    def _build(self, keys: dict[str, NameKeys]) -> None:
        owners: dict[str, list[tuple[str, bool]]] = {}
        for offer_id, pairs in keys.items():
            for key, is_title in pairs:
                owners.setdefault(key, []).append((offer_id, is_title))
        self.keys = keys
        self._automaton = ahocorasick.Automaton()
        for key, found in owners.items():
            self._automaton.add_word(key, (len(key), tuple(found)))
        if owners:
            self._automaton.make_automaton()
        self._empty = not owners

    def find(self, folded_message: str) -> Named:
        """folded_message: the question through assistant.text.fold. The last answer is kept: a turn asks
        for its message twice (the scope decision, then ranking)."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] == folded_message:
            return last[1]
        by_title: set[str] = set()
        by_any: set[str] = set()
        matches = [] if self._empty else [
            (end - length + 1, end, found) for end, (length, found) in self._automaton.iter(folded_message)
            if not (end - length >= 0 and _is_word_char(folded_message[end - length]))
            and not (end + 1 < len(folded_message) and _is_word_char(folded_message[end + 1]))
        ]
        for start, end, found in matches:
            if any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in matches):
                continue  # inside a longer name the message says
            for offer_id, is_title in found:
                by_any.add(offer_id)
                if is_title:
                    by_title.add(offer_id)
        named = Named(frozenset(by_title), frozenset(by_any))
        self._last = (folded_message, named)  # one tuple, replaced at once: safe across threads
        return named
