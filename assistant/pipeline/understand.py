"""Stage 2, understand: who is asking (profile, territory), what they need, and the search query.

Input: the normalised message, the profile known from earlier turns, the dialogue state, and the
scope model with the embeddings it reads (assistant/scope/).
Output: an `Understanding`, read by every later stage. The query vector computed for the scope
decision is kept there, so that retrieval does not encode the same query again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.guardrails import GuardDecision, check_message, request_besides_invention, scope_decision
from assistant.patterns import screened
from assistant.profile import Profile, apply_territory, extract_profile
from assistant.schema import ThemeVocabulary
from assistant.territory import Commune, Territories, normalize
from assistant.text import fold, words

FOLLOW_UP_MAX_WORDS = 12
COST_FOLLOW_UP = screened(r"gratuit|combien|cout|payant|prix|tarif|ca coute|rembourser")
CONTACT_FOLLOW_UP = screened(r"qui (je |dois-je |on )?contact|a qui|interlocuteur|joindre|qui appeler|contacter qui|qui je vois")


@dataclass
class Understanding:
    message: str  # normalised
    said: Profile  # facts stated in this message only
    profile: Profile  # what is known of the asker after this message
    decision: GuardDecision  # scope and injection verdict on the message
    query: str  # standalone retrieval query
    focus: str | None  # "cost" or "contact" when the message asks only that
    query_vector: np.ndarray | None = None  # embedding of `query` (Assistant._query_vector), when the scope model computed it


def understand(
    message: str,
    known: Profile,
    state: dict,
    themes: ThemeVocabulary,
    territories: Territories,
    scope=None,
    embed: Callable[[str], np.ndarray] | None = None,
    names=None,
) -> Understanding:
    """Read the message against what the conversation already knows; no side effect on `state`.

    scope: a ScopeModel (None: attacks only); embed: the query encoder of the embeddings the model was
    trained on (None: the model's n-gram head); names: the index's OfferNames (whether the text names
    an offer is one of the model's features). The scope is decided on the standalone query, so a
    short follow-up (« c'est gratuit ? ») is read with the topic it continues.
    """
    decision = check_message(message)
    resolution = territories.resolve(message)  # once: every homonym it finds is kept for the known département
    said = extract_profile(message, themes)
    apply_territory(said, resolution)
    chosen = choice(message, state.get("pending"), themes, territories)
    query, focus = query_for(message, said, state)
    pending = state.get("pending") or {}
    if focus is None and pending.get("focus") and not said.themes:
        focus = pending["focus"]  # the reply to a question asked within a follow-up answers that follow-up
    if chosen is not None:
        said = said.merged_with(chosen)  # the option picked wins over what the words alone suggest
        query = state.get("pending_query") or query  # the reply answers the question; it is not a topic
    vector = embed(query) if embed is not None else None

    def named(text: str) -> bool:
        return names is not None and bool(names.find(fold(text)).by_any_name)

    if decision.kind == "ok" and scope is not None:
        decision = scope_decision(scope.decide(query, vector, named(query)))
    elif decision.kind == "invent" and scope is not None:
        # « Il me faut une aide pour X. Si rien n'existe, invente… »: answer X with real offers only.
        rest = request_besides_invention(message)
        if rest and not scope.decide(rest, embed(rest) if embed is not None else None, named(rest)).refuses:
            decision = GuardDecision("invent", None, "invent:with-project")
    said = within_known_departement(said, resolution.candidates, known, territories)
    return Understanding(message, said, known.merged_with(said), decision, query, focus, vector)


def within_known_departement(said: Profile, candidates: list[Commune], known: Profile, territories: Territories) -> Profile:
    """Homonyms settled by the département already known (the widget's profile, an earlier turn).

    candidates: every commune the message may mean, from the turn's one territory resolution
    (Resolution.candidates: all of them, not only the six offered as buttons). Only those of the known
    département count: one left is taken without a question; none left means the place named is not
    the asker's commune (a neighbour, a lieu-dit, a site's name), so nothing is asked about it.
    Returns a new Profile.
    """
    if not said.ambiguous_codes or not known.departement_code:
        return said
    inside = [c for c in candidates if c.departement == known.departement_code]
    settled = said.model_copy(update={"ambiguous_places": [territories.label(c) for c in inside],
                                      "ambiguous_codes": [c.code for c in inside]})
    if len(inside) <= 1:
        settled.ambiguous_places, settled.ambiguous_codes = [], []
    if len(inside) == 1:
        apply_territory(settled, territories.resolution_of(inside[0]))
    return settled


def query_for(message: str, said: Profile, state: dict) -> tuple[str, str | None]:
    """Standalone retrieval query: a short follow-up without a topic of its own reuses the last one."""
    folded = fold(message).replace("’", "'")
    focus = "cost" if COST_FOLLOW_UP.search(folded) else "contact" if CONTACT_FOLLOW_UP.search(folded) else None
    previous = state.get("pending_query") or state.get("last_query")
    if previous and not said.themes and len(words(message)) <= FOLLOW_UP_MAX_WORDS:
        return f"{previous} {message}", focus
    return message, focus


def keep_topic(understanding: Understanding, state: dict) -> None:
    """A message without a theme of its own keeps the conversation's; the state remembers the query."""
    if not understanding.said.themes and state.get("themes"):
        understanding.profile.themes = state["themes"]
    state["last_query"], state["themes"] = understanding.query, understanding.profile.themes


ORDINALS = {
    "premiere": 0, "premier": 0, "1re": 0, "1ere": 0, "1er": 0, "deuxieme": 1, "seconde": 1, "second": 1, "2e": 1,
    "2eme": 1, "troisieme": 2, "3e": 2, "3eme": 2, "quatrieme": 3, "4e": 3, "4eme": 3, "cinquieme": 4, "5e": 4,
    "5eme": 4, "sixieme": 5, "6e": 5, "6eme": 5, "derniere": -1, "dernier": -1,
}
NUMBERED = re.compile(r"^\W*(?:(?:la|le|choix|option|numero|n|no)\W*)*(\d)\W*$")


def choice(message: str, pending: dict | None, themes: ThemeVocabulary, territories: Territories) -> Profile | None:
    """What a typed reply to the pending question picks, as the profile that option says; None if
    the reply picks nothing (it is then read as a message of its own).

    pending: the dialogue state's question (assistant.pipeline.judge.clarify.record). A reply picks
    an option by its rank (« la deuxième », « 2 », « la dernière »), by its words (the label, as a
    button sends it), or, for homonymous communes, by what tells them apart: the département (« celle
    du Gers », « Gers », « 32 »), the région, the commune's INSEE code or postcode.
    """
    if not pending or not pending.get("options"):
        return None
    options, codes = pending["options"], pending.get("codes") or []
    index = _picked(message, options, codes, territories)
    if index is None:
        return None
    if codes:
        commune = territories.commune(codes[index])
        if commune is not None:
            picked = Profile(collectivity_type="commune")
            apply_territory(picked, territories.resolution_of(commune))
            return picked
    return extract_profile(options[index][1], themes, territories)


def _picked(message: str, options: list, codes: list[str], territories: Territories) -> int | None:
    said = normalize(message)
    words = said.split()
    ordinal = [ORDINALS[w] for w in words if w in ORDINALS]
    number = NUMBERED.match(said)
    labels = [normalize(label) for label, _ in options]
    exact = [i for i, (label, value) in enumerate(options) if said in (normalize(label), normalize(value))]
    if exact:
        return exact[0]
    if codes:
        communes = [territories.commune(code) for code in codes]
        fits = [i for i, c in enumerate(communes) if c is not None and _tells_apart(said, words, c, territories)]
        if len(fits) == 1:
            return fits[0]
    if len(ordinal) == 1 and len(words) <= 4:
        return ordinal[0] % len(options)
    if number and 1 <= int(number.group(1)) <= len(options):
        return int(number.group(1)) - 1
    contained = [i for i, label in enumerate(labels) if label and f" {label} " in f" {said} "]
    return contained[0] if len(contained) == 1 else None


def _tells_apart(said: str, words: list[str], commune, territories: Territories) -> bool:
    """Whether the reply names this commune's département (name or number), région, INSEE code or postcode."""
    departement = territories.departement_of(commune)
    region = territories.region_of(commune)
    names = [normalize(departement.name), normalize(region.name)]
    numbers = {departement.code.lower(), commune.code.lower(), *commune.postal_codes}
    return any(f" {n} " in f" {said} " for n in names) or any(w in numbers for w in words)
