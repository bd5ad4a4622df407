"""Judge whether to ask: one short question when the best offers hinge on a fact the asker did not give."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.eligibility import size_can_decide
from assistant.offer_names import Named
from assistant.profile import Profile
from assistant.retrieval import OfferHit
from assistant.schema import Offer
from assistant.text import fold, words

MAX_CLARIFICATIONS_IN_ROW = 2
VAGUE_MAX_WORDS = 10
LOCAL_CONTACTS = {"prefecture", "anah-delegation-locale"}  # départemental offices
ELIGIBILITY_QUESTION = re.compile(
    r"eligib|beneficier|gratuit|combien|cout|payant|a droit|avons droit|quel programme|dans quel|pour nous\s*\?"
)
COST_QUESTION = re.compile(r"gratuit|combien|\bcout|payant|\bprix\b|tarif")
RIGHTS_QUESTION = re.compile(r"eligib|a droit|avons droit|beneficier")
POPULATION_OPTIONS = [
    ("Moins de 3 500 habitants", "Nous avons moins de 3 500 habitants"),
    ("De 3 500 à 9 999 habitants", "Nous avons entre 3 500 et 9 999 habitants"),
    ("De 10 000 à 19 999 habitants", "Nous avons entre 10 000 et 19 999 habitants"),
    ("20 000 habitants ou plus", "Nous avons plus de 20 000 habitants"),
]
WHO_OPTIONS = [
    ("Commune de moins de 3 500 habitants", "Nous sommes une commune de moins de 3 500 habitants"),
    ("Commune de 3 500 à 19 999 habitants", "Nous sommes une commune de 10 000 habitants environ"),
    ("Commune de 20 000 habitants ou plus", "Nous sommes une commune de plus de 20 000 habitants"),
    ("Intercommunalité", "Je représente une intercommunalité (EPCI)"),
    ("Département", "Je représente un conseil départemental"),
    ("Région", "Je représente un conseil régional"),
]


# Questions asked beside the offers instead of in their place: the offers can already be shown (the
# type of collectivity is known), only their eligibility waits on the answer (« à vérifier : » names
# the population condition, assistant/eligibility.py). A place or an unknown asker changes the offers
# themselves: those questions are asked alone.
BESIDE_OFFERS = {"population"}


@dataclass
class Clarification:
    key: str  # "place", "who", "population"
    question: str
    options: list[tuple[str, str]]  # (button label, message sent when clicked)
    codes: list[str] = field(default_factory=list)  # "place": INSEE code of each option, same order
    focus: str | None = None  # the follow-up it interrupts ("contact"): the reply is answered the same way


def clarify(
    message: str, profile: Profile, recommended: list[OfferHit], state: dict, named: Named
) -> Clarification | None:
    """One short question when the best offers hinge on who is asking and the asker did not say.

    Asked only if (a) a place is ambiguous, or (b) the answer changes with the fact: one of the two
    best offers has population or cost rules (for a question about cost, only a cost that depends on
    the collectivity), the collectivity or its size is unknown, and the question is about eligibility
    or cost or too vague to answer well. Never twice the same, never more than two in a row.
    """
    if not recommended or state.get("clarifications_in_row", 0) >= MAX_CLARIFICATIONS_IN_ROW:
        return None
    asked = set(state.get("asked", []))
    local_contact = recommended[0].offer.access.contact in LOCAL_CONTACTS
    place_matters = not profile.region_code or (local_contact and not profile.departement_code)
    if profile.ambiguous_places and not profile.insee and place_matters and "place" not in asked:
        return _which_place(profile)
    folded = fold(message)
    if named.names(recommended[0].offer.id):
        recommended = recommended[:1]  # the asker named the offer: only its own rules matter

    about_cost = bool(COST_QUESTION.search(folded)) and not RIGHTS_QUESTION.search(folded)

    def has_rules(hit: OfferHit) -> bool:
        """Whether the answer changes with who is asking: for a question about cost, only a cost that
        depends on the collectivity (free for some) does; otherwise population bounds too, those that
        a size can settle (eligibility.size_can_decide: not the DETR's ceiling on the population DGF)."""
        free_for = bool(hit.offer.cost and hit.offer.cost.free_for)
        sized = any(size_can_decide(rule) for rule in hit.offer.eligibility.population)
        return free_for if about_cost else sized or free_for

    about_rights = bool(ELIGIBILITY_QUESTION.search(folded))
    vague = len(words(message)) <= VAGUE_MAX_WORDS
    depends = has_rules(recommended[0]) or (about_rights and any(has_rules(h) for h in recommended[1:2]))
    if not depends or not (about_rights or vague):
        return None
    if profile.collectivity_type is None and "who" not in asked:
        return Clarification("who", "Pour vous répondre précisément : quelle collectivité représentez-vous, et de quelle taille ?", WHO_OPTIONS)
    if profile.population is None and profile.collectivity_type in {"commune", "epci"} and "population" not in asked:
        return Clarification(
            "population",
            "Combien d'habitants compte votre collectivité ? Cela change les offres accessibles (et leur gratuité).",
            POPULATION_OPTIONS,
        )
    return None


def _which_place(profile: Profile, focus: str | None = None) -> Clarification:
    options = [(p, f"C'est {p}") for p in profile.ambiguous_places]
    codes = profile.ambiguous_codes if len(profile.ambiguous_codes) == len(options) else []
    return Clarification("place", "Plusieurs communes portent ce nom : laquelle est la vôtre ?", options, codes, focus)


def clarify_contact(
    profile: Profile, shown: list[OfferHit], state: dict, door_unknown: Callable[[Offer], bool]
) -> Clarification | None:
    """For a follow-up asking whom to contact about the offers shown (« et qui je contacte ? »): only
    the territory changes that answer (who is asking and their size do not), so the one question is
    where, and only when an offer shown has a local door that the territory known so far does not
    give (door_unknown(offer): no concrete contact for it yet, as assistant.contacts.ContactDirectory.for_offer
    says). The reply is answered as the contact follow-up it interrupted (Clarification.focus).
    """
    if state.get("clarifications_in_row", 0) >= MAX_CLARIFICATIONS_IN_ROW or profile.insee:
        return None
    if not any(door_unknown(hit.offer) for hit in shown):
        return None
    asked = set(state.get("asked", []))
    if profile.ambiguous_places and "place" not in asked:
        return _which_place(profile, "contact")
    if "territory" in asked:
        return None
    return Clarification(
        "territory",
        "Pour vous indiquer le bon interlocuteur : dans quelle commune (ou quel département) êtes-vous ?",
        [],
        focus="contact",
    )


def beside_offers(clarification: Clarification | None) -> bool:
    """Whether the question is asked in the same turn as the offers (see BESIDE_OFFERS)."""
    return clarification is not None and clarification.key in BESIDE_OFFERS


def beside_text(clarification: Clarification) -> str:
    """The question as the answer's first lines, when asked beside the offers (French)."""
    return (f"**Pour vérifier votre éligibilité** : {clarification.question} En attendant votre réponse, voici "
            "les offres possibles ; quand une offre dépend de la taille, son éligibilité reste à vérifier.")


def record(clarification: Clarification | None, query: str, state: dict) -> None:
    """Remember in the dialogue state what was asked (or that the turn answered).

    A question asked stays pending until the next turn: state["pending"] = {"key", "options":
    [[label, value]…], "codes": [INSEE…]} and state["pending_query"], the query it interrupted, which
    the reply completes (assistant.pipeline.understand.choice, query_for).
    """
    if clarification is not None:
        state["clarifications_in_row"] = state.get("clarifications_in_row", 0) + 1
        state.setdefault("asked", []).append(clarification.key)
        state["pending_query"] = query
        state["pending"] = {
            "key": clarification.key,
            "options": [list(option) for option in clarification.options],
            "codes": list(clarification.codes),
            "focus": clarification.focus,
        }
    else:
        state["clarifications_in_row"] = 0
        state.pop("pending_query", None)
        state.pop("pending", None)
