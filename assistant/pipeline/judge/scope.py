"""Judge the scope: out-of-scope messages (the scope model), bare injections and requests to invent are
refused before retrieval."""

from __future__ import annotations

from assistant.answer import GeneratedAnswer
from assistant.guardrails import refusal_text, to
from assistant.pipeline.understand import FOLLOW_UP_MAX_WORDS, Understanding
from assistant.scope.doors import DOORS
from assistant.text import words

INJECTION_PREFACE = (
    "Je ne tiens pas compte des instructions contenues dans votre message ; voici ce que je peux vous dire sur votre projet."
)


INVENT_PREFACE = "Je ne présente que des dispositifs qui existent : voici les offres réelles qui peuvent répondre à votre projet."


def refuses(understanding: Understanding) -> bool:
    """An injection inside a real project question is ignored, and so is a request to invent beside
    an in-scope request (rule « invent:with-project »); alone, both are refused."""
    decision = understanding.decision
    if decision.rule == "invent:with-project":
        return False
    return decision.refuses and (decision.kind != "injection" or not understanding.said.themes)


def refusal(understanding: Understanding) -> GeneratedAnswer:
    return GeneratedAnswer(refusal_text(understanding.decision), "grounded")


def injection_preface(understanding: Understanding) -> str | None:
    """The sentence that opens an answer given despite an injection or a request to invent."""
    return {"injection": INJECTION_PREFACE, "invent": INVENT_PREFACE}.get(understanding.decision.kind)


LAST_DOORS = "last_doors"  # dialogue state key: the doors the previous turn named


def remember_doors(understanding: Understanding, signpost_ids: list[str], state: dict, refused: bool) -> None:
    """Keep in the dialogue state the doors this turn named, for a follow-up « et qui je contacte ? »:
    `door`, the door id of a scope refusal (GuardDecision.door_id, a key of assistant.scope.doors.DOORS),
    `signposts`, the signpost cards (corpus/signposts/) shown, `refused`.
    A turn that names no door (an injection refused, offers alone) forgets the earlier ones."""
    door = understanding.decision.door_id if refused else None
    if door in DOORS or signpost_ids:
        state[LAST_DOORS] = {"door": door if door in DOORS else None, "signposts": list(signpost_ids), "refused": refused}
    else:
        state.pop(LAST_DOORS, None)


def follow_up_doors(understanding: Understanding, state: dict) -> dict | None:
    """The previous turn's doors ({"door", "signposts", "refused"}, see remember_doors) when this message
    only asks whom to contact (focus « contact », no theme of its own, at most FOLLOW_UP_MAX_WORDS words:
    « Et qui je contacte ? ») and they, not offers, answer it: the previous turn was a refusal, or this
    follow-up would be refused (a door's question read again with « contacter » may leave the scope).
    None otherwise."""
    remembered = state.get(LAST_DOORS)
    if not remembered or understanding.focus != "contact" or understanding.said.themes \
            or len(words(understanding.message)) > FOLLOW_UP_MAX_WORDS:
        return None
    return remembered if remembered["refused"] or refuses(understanding) else None


def follow_up_doors_text(remembered: dict, door_lines: list[str], bodies: list[str]) -> str:
    """The short answer to « et qui je contacte ? » from the previous turn's doors, in French: a refusal's
    door again (« adressez-vous plutôt au centre de gestion… »), or the bodies the answer named, then each
    signpost card's line (local office when the territory is known, how to find it)."""
    if remembered["door"]:
        head = f"Pour votre question précédente, adressez-vous plutôt {to(DOORS[remembered['door']])}."
    else:
        head = "Pour votre question précédente, l'organisme compétent est " + " ou ".join(f"**{b}**" for b in bodies) + "."
    return "\n".join([head, *door_lines])
