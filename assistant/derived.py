"""What a turn derives from an index generation's cards, persisted beside it so that a server does
not rebuild it at start-up: the spelling lexicon (with the counts it is made of), the offer-name
automaton and each offer's names as phrases (what the premise table looks subjects up in). At 10,000
cards, rebuilding them took ≈ 2.8 s of CPU before « ready »; reading them ≈ 0.05 s.

File: DATA_DIR/index/<generation>.derived.pkl, written by the indexer with the generation (our own
cache, read by this code only, like the tokens cache), holding DERIVED_VERSION, the generation and the
digest of the snapshot it was built from. A missing, stale (other generation, other snapshot, other
format) or unreadable artefact is never used: it is rebuilt from the snapshot, with a French warning
in the log, and written again (best effort: a read-only data directory only costs the rebuild).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant.offer_names import OfferNames, name_keys
from assistant.pipeline.judge.notices import phrase_terms
from assistant.text import Lexicon, spelling_counts

DERIVED_VERSION = "2"
log = logging.getLogger("aiguillage.index")


class DerivedUnusable(Exception):
    """Why a derived artefact cannot be used (French, for the log)."""


def card_text(value) -> str:
    """Every string inside a card's JSON form, joined by spaces: the text the lexicon reads."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = value.values()
    return " ".join(card_text(v) for v in value) if isinstance(value, (list, tuple, type({}.values()))) else ""


def card_counts(card: dict) -> Counter:
    """Spelling counts of one card in its JSON form (its share of the lexicon)."""
    return spelling_counts(card_text(card))


def snapshot_digest(raw: bytes) -> str:
    """Digest of a snapshot file's bytes, recorded in the manifest and in the derived artefact."""
    return hashlib.sha256(raw).hexdigest()[:32]


def name_phrases(card: dict) -> frozenset[tuple[str, ...]]:
    """A card's names (title, aliases, with and without spaced dashes) as phrases (notices.phrase_terms)."""
    return frozenset(phrase_terms(k) for n in [card["title"], *card.get("aliases", [])] for k in name_keys(n))


@dataclass
class Derived:
    counts: dict[str, int]  # spelling -> occurrences over every card (text.spelling_counts)
    lexicon: Lexicon
    names: OfferNames
    phrases: dict[str, frozenset[tuple[str, ...]]]  # offer id -> name_phrases


def build_derived(cards: Mapping[str, dict], counts: Mapping[str, int] | None = None,
                  phrases: Mapping[str, frozenset[tuple[str, ...]]] | None = None) -> Derived:
    """From the cards' JSON forms (id -> card); counts: their spelling counts when already known;
    phrases: name phrases already known for some of them (unchanged cards)."""
    if counts is None:
        total = Counter()
        for card in cards.values():
            total.update(card_counts(card))
        counts = total
    counts = {word: n for word, n in counts.items() if n > 0}
    phrases = phrases or {}
    return Derived(counts, Lexicon.from_counts(counts), OfferNames.from_cards(cards.values()),
                   {i: phrases[i] if i in phrases else name_phrases(card) for i, card in cards.items()})


def updated_counts(counts: Mapping[str, int], removed: Iterable[dict], added: Iterable[dict]) -> dict[str, int]:
    """Spelling counts after replacing the cards `removed` (old JSON forms) by `added`: the lexicon of
    a generation where one card changed costs that card, not the catalogue."""
    total = Counter(counts)
    for card in removed:
        total.subtract(card_counts(card))
    for card in added:
        total.update(card_counts(card))
    return {word: n for word, n in total.items() if n > 0}


def write_derived(path: Path, derived: Derived, generation: str, digest: str) -> None:
    payload = {"version": DERIVED_VERSION, "generation": generation, "snapshot": digest,
               "counts": derived.counts, "spelling": derived.lexicon.spelling, "names": derived.names,
               "phrases": derived.phrases}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)


def read_derived(path: Path, generation: str, digest: str) -> Derived:
    """The artefact at `path` if it belongs to this generation and snapshot; DerivedUnusable otherwise."""
    try:
        payload = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        raise DerivedUnusable("artefact absent") from None
    except Exception as exc:  # truncated or overwritten file: any unpickling error
        raise DerivedUnusable(f"artefact illisible ({exc.__class__.__name__}), fichier corrompu") from None
    if not isinstance(payload, dict) or payload.get("version") != DERIVED_VERSION:
        raise DerivedUnusable("artefact d'un autre format")
    if payload.get("generation") != generation or payload.get("snapshot") != digest:
        raise DerivedUnusable("artefact périmé : il ne correspond pas à l'instantané des fiches de cette génération")
    lexicon = Lexicon.__new__(Lexicon)
    lexicon.spelling = payload["spelling"]
    names = payload["names"]
    if not isinstance(names, OfferNames) or not isinstance(lexicon.spelling, dict):
        raise DerivedUnusable("artefact d'un autre format")
    return Derived(payload["counts"], lexicon, names, payload["phrases"])


def load_derived(path: Path, generation: str, digest: str, cards: Mapping[str, dict]) -> Derived:
    """The generation's derived structures: read from `path`, or rebuilt from `cards` (and written
    again) when the artefact is missing, stale or corrupt — the rebuilt ones are exactly those the
    indexer writes (tests/test_derived.py)."""
    try:
        return read_derived(path, generation, digest)
    except DerivedUnusable as exc:
        log.warning("Index %s : %s ; lexique et noms d'offres reconstruits à partir de l'instantané des fiches.",
                    generation, exc)
    derived = build_derived(cards)
    try:
        write_derived(path, derived, generation, digest)
    except OSError:
        pass  # read-only data directory: rebuilt again at the next start
    return derived
