"""Stage 2, understand: who is asking (profile, territory), what they need, and the search query.

Input: the normalised message, the profile known from earlier turns, the dialogue state.
Output: an `Understanding`, read by every later stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.guardrails import GuardDecision, check_message
from assistant.profile import Profile, extract_profile
from assistant.schema import ThemeVocabulary
from assistant.territory import Territories
from assistant.text import fold, words

FOLLOW_UP_MAX_WORDS = 12
COST_FOLLOW_UP = re.compile(r"gratuit|combien|cout|payant|prix|tarif|ca coute|rembourser")
CONTACT_FOLLOW_UP = re.compile(r"qui (je |dois-je |on )?contact|a qui|interlocuteur|joindre|qui appeler|contacter qui|qui je vois")


@dataclass
class Understanding:
    message: str  # normalised
    said: Profile  # facts stated in this message only
    profile: Profile  # what is known of the asker after this message
    decision: GuardDecision  # scope and injection verdict on the message
    query: str  # standalone retrieval query
    focus: str | None  # "cost" or "contact" when the message asks only that


def understand(
    message: str, known: Profile, state: dict, themes: ThemeVocabulary, territories: Territories
) -> Understanding:
    """Read the message against what the conversation already knows; no side effect on `state`."""
    decision = check_message(message)
    said = extract_profile(message, themes, territories)
    query, focus = query_for(message, said, state)
    return Understanding(message, said, known.merged_with(said), decision, query, focus)


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
