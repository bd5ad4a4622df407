"""What a turn derives from an index generation's cards, persisted beside it so that a server does
not rebuild it at start-up: the spelling lexicon (with the counts it is made of), the offer-name
automaton, each offer's names as phrases (what the premise table looks subjects up in), what ranking
and the doors read of every card without its full form (CardView: themes, facets, names) and where
each card's JSON lies in the snapshot file (spans), so that a server parses a card when a turn first
needs it instead of the whole snapshot (≈ 0.7 s of CPU at 10,600 cards). At 10,000 cards, rebuilding
them took ≈ 2.8 s of CPU before « ready »; reading them ≈ 0.05 s.

File: DATA_DIR/index/<generation>.derived.pkl, written by the indexer with the generation (our own
cache, read by this code only, like the tokens cache), holding DERIVED_VERSION, the generation and the
digest of the snapshot it was built from. A missing, stale (other generation, other snapshot, other
format) or unreadable artefact is never used: it is rebuilt from the snapshot, with a French warning
in the log, and written again (best effort: a read-only data directory only costs the rebuild).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.offer_names import NameKeys, OfferNames, name_keys
from assistant.pipeline.judge.notices import phrase_terms
from assistant.text import Lexicon, spelling_counts

DERIVED_VERSION = "3"
log = logging.getLogger("aiguillage.index")


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while a generation's structures are read or built: they are hundreds
    of thousands of new containers, and each full collection they trigger walks every object of the
    process again (reading this artefact: ≈ 0.18 s of CPU with it, 0.02 s without, at 10,600 cards).
    Memory is freed by reference counting meanwhile, cyclic garbage once the collector is back on."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


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


def encode_snapshot(cards: Mapping[str, dict], unchanged: Mapping[str, bytes] | None = None) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The snapshot file of these cards (id -> JSON form, in order) and each card's span in it.

    Bytes: exactly json.dumps(cards, ensure_ascii=False, separators=(",", ":")) in UTF-8 (so its
    digest does not depend on how it was written; tests/test_derived.py). Spans: id -> (start, end),
    the byte range of the card's JSON object. unchanged: id -> the card's JSON bytes already encoded
    (a slice of the previous snapshot), for cards whose JSON form is the same: not encoded again."""
    unchanged = unchanged or {}
    parts, spans, offset = [b"{"], {}, 1
    for position, (offer_id, card) in enumerate(cards.items()):
        key = (b"," if position else b"") + json.dumps(offer_id, ensure_ascii=False).encode("utf-8") + b":"
        value = unchanged.get(offer_id)
        if value is None:
            value = json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        offset += len(key)
        spans[offer_id] = (offset, offset + len(value))
        offset += len(value)
        parts += (key, value)
    parts.append(b"}")
    return b"".join(parts), spans


OfferFacets = tuple[str, frozenset[str], bool]  # status, support types, can the asker's profile add TARGET_BONUS


def card_facets(card: dict) -> OfferFacets:
    """What ranking needs of an offer it has not retrieved, from its JSON form (no validation):
    equal to (status, set(support_types), pipeline.rank.can_target(offer)) (tests/test_derived.py)."""
    eligibility, cost = card.get("eligibility") or {}, card.get("cost") or {}
    targetable = bool(eligibility.get("population") or eligibility.get("territory_all") or cost.get("free_for"))
    return card["status"], frozenset(card.get("support_types", ())), targetable


@dataclass
class CardView:
    """What a generation reads of every card without its full form (assistant.retrieval.LoadedIndex)."""

    by_theme: dict[str, list[str]]  # theme -> offer ids, in snapshot order
    facets: dict[str, OfferFacets]
    active_themes: set[str]  # themes of the active offers
    name_lists: dict[str, list[str]]  # offer id -> [title, *aliases]
    premise_offers: list[str]  # offers with outdated premises, in snapshot order

    @classmethod
    def of(cls, cards: Mapping[str, dict]) -> CardView:
        by_theme: dict[str, list[str]] = {}
        for offer_id, card in cards.items():
            for theme in card.get("themes", ()):
                by_theme.setdefault(theme, []).append(offer_id)
        return cls(
            by_theme,
            {offer_id: card_facets(card) for offer_id, card in cards.items()},
            {t for card in cards.values() if card.get("status") == "active" for t in card.get("themes", ())},
            {offer_id: [card["title"], *card.get("aliases", [])] for offer_id, card in cards.items()},
            [offer_id for offer_id, card in cards.items() if card.get("outdated_premises")],
        )


def name_phrases(card: dict) -> frozenset[tuple[str, ...]]:
    """A card's names (title, aliases, with and without spaced dashes) as phrases (notices.phrase_terms)."""
    return frozenset(phrase_terms(k) for n in [card["title"], *card.get("aliases", [])] for k in name_keys(n))


@dataclass
class Derived:
    counts: dict[str, int]  # spelling -> occurrences over every card (text.spelling_counts)
    lexicon: Lexicon
    names: OfferNames
    phrases: dict[str, frozenset[tuple[str, ...]]]  # offer id -> name_phrases
    view: CardView
    spans: dict[str, tuple[int, int]] | None  # offer id -> its JSON's byte range in the snapshot (encode_snapshot)


def build_derived(cards: Mapping[str, dict], counts: Mapping[str, int] | None = None,
                  phrases: Mapping[str, frozenset[tuple[str, ...]]] | None = None,
                  spans: Mapping[str, tuple[int, int]] | None = None,
                  name_keys: Mapping[str, NameKeys] | None = None) -> Derived:
    """From the cards' JSON forms (id -> card); counts: their spelling counts when already known;
    phrases and name_keys: name phrases and name keys (OfferNames.keys) already known for some of
    them (unchanged cards); spans: where each card lies in the snapshot file (encode_snapshot), when
    it was written by it."""
    if counts is None:
        total = Counter()
        for card in cards.values():
            total.update(card_counts(card))
        counts = total
    counts = {word: n for word, n in counts.items() if n > 0}
    phrases = phrases or {}
    return Derived(counts, Lexicon.from_counts(counts), OfferNames.from_cards(cards.values(), name_keys),
                   {i: phrases[i] if i in phrases else name_phrases(card) for i, card in cards.items()},
                   CardView.of(cards), dict(spans) if spans is not None else None)


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
               "phrases": derived.phrases, "view": derived.view, "spans": derived.spans}
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
    names, view = payload["names"], payload.get("view")
    if (not isinstance(names, OfferNames) or not isinstance(getattr(names, "keys", None), dict)
            or not isinstance(lexicon.spelling, dict) or not isinstance(view, CardView)):
        raise DerivedUnusable("artefact d'un autre format")
    return Derived(payload["counts"], lexicon, names, payload["phrases"], view, payload.get("spans"))


def load_derived(path: Path, generation: str, raw: bytes, digest: str) -> tuple[Derived, dict[str, dict] | None]:
    """The generation's derived structures and, when they had to be rebuilt, the cards parsed for it.

    raw: the snapshot file's bytes, digest: snapshot_digest(raw). Read from `path`, or rebuilt from
    the snapshot's cards (and written again) when the artefact is missing, stale or corrupt — the
    rebuilt ones are exactly those the indexer writes (tests/test_derived.py); their spans only when
    the file is as encode_snapshot writes it."""
    try:
        return read_derived(path, generation, digest), None
    except DerivedUnusable as exc:
        log.warning("Index %s : %s ; lexique et noms d'offres reconstruits à partir de l'instantané des fiches.",
                    generation, exc)
    cards = json.loads(raw)
    encoded, spans = encode_snapshot(cards)
    derived = build_derived(cards, spans=spans if encoded == raw else None)
    try:
        write_derived(path, derived, generation, digest)
    except OSError:
        pass  # read-only data directory: rebuilt again at the next start
    return derived, cards
