"""Stage 4, rank: the documented final score of each candidate, with its eligibility verdict.

Ranking of candidate offers (explicit, so agents can explain it; kept in each hit's breakdown;
the table in README « Le classement, explicite » mirrors these constants):
  final score = fused RRF score (hybrid retrieval)
              + NAMED_BONUS   if the question names the offer by its title (ALIAS_BONUS: by an alias)
              + THEME_BONUS   if the offer carries a theme detected in the question
              + NEED_BONUS    if its support type fits the need said (ingénierie / financement)
              + TARGET_BONUS  if it is reserved to a population or territory the asker is known to fit
              + INFORMATION_PENALTY (negative) for tools, labels, networks and trainings, unless a tool is asked
              + PLACE_ONLY (negative) if its themes meet the question only through the place of the works
                (profile.place_themes: « l'école » in « la voirie devant l'école »), none of its objects
Closed or historic offers are kept only when the question names them (to say they are closed).
"""

from __future__ import annotations

from collections.abc import Mapping

from assistant.eligibility import Verdict, evaluate
from assistant.offer_names import Named
from assistant.profile import Profile
from assistant.retrieval import OfferFacets, OfferHit
from assistant.schema import Offer

NAMED_BONUS = 0.02
ALIAS_BONUS = 0.012
THEME_BONUS = 0.008
NEED_BONUS = 0.004
TARGET_BONUS = 0.003
NEED_SUPPORTS = {
    "ingenierie": {"technical_engineering", "financial_engineering", "legal_engineering"},
    "financement": {"grant", "loan", "recoverable_advance", "tax_relief"},
    "les-deux": {"technical_engineering", "financial_engineering", "grant", "loan"},
    "outil": {"tool"},
}
INFORMATION_ONLY = {"tool", "other", "network", "training", "label"}
INFORMATION_PENALTY = -0.004
# An offer matched by the place of the works only, not by their object: after the offers and grants that
# answer the object (evals/place_themes.py chooses it on the Fonds vert 2023 titles).
PLACE_ONLY = -0.05
CANDIDATES = 12


def can_target(offer: Offer) -> bool:
    """Whether TARGET_BONUS is possible at all for this offer, whatever the asker (see `targets`)."""
    return bool(offer.eligibility.population or offer.eligibility.territory_all or (offer.cost and offer.cost.free_for))


def themed_pool(themed: list[str], facets: Mapping[str, OfferFacets], need: str | None, named: Named) -> list[str]:
    """The offers, among `themed` (carrying a theme of the question, seen by neither retriever,
    sorted by id), that can be among `rank`'s CANDIDATES: the others are left out before any hit is
    built, so a turn costs the same with 100 or 10,000 offers per theme. Exact, not a heuristic.

    Such an offer has no fused score: its final score is its adjustments. Those that `targets` cannot
    change (not `can_target`, not named) fall into a few classes of equal score (need met or not,
    information only or not), ordered by id inside a class; any of them in the top CANDIDATES (before
    or after TARGET_BONUS, which only moves others up) is among the first CANDIDATES of its class.
    Named and targetable offers are all kept; inactive unnamed ones are dropped, as `rank` drops them.
    facets: offer id -> (status, support types, can_target) (LoadedIndex.facets)."""
    pool: list[str] = []
    taken: dict[tuple[bool, bool], int] = {}
    for offer_id in themed:
        if named.names(offer_id):
            pool.append(offer_id)
            continue
        status, supports, targetable = facets[offer_id]
        if status != "active":
            continue
        if targetable:
            pool.append(offer_id)
            continue
        key = (bool(need and supports & NEED_SUPPORTS[need]), need != "outil" and supports <= INFORMATION_ONLY)
        if taken.get(key, 0) < CANDIDATES:
            taken[key] = taken.get(key, 0) + 1
            pool.append(offer_id)
    return pool


def rank(hits: list[OfferHit], profile: Profile, named: Named) -> tuple[list[OfferHit], dict[str, Verdict]]:
    """The best CANDIDATES hits by final score (ties by offer id) and their verdicts.

    named: the offers the message names (assistant.offer_names). Eligibility, the costly part, is
    evaluated only for hits that can still reach the top CANDIDATES: every other adjustment is
    computed first, and TARGET_BONUS is the only one that depends on the verdict, so a hit whose
    score plus TARGET_BONUS stays under the CANDIDATES-th best score cannot enter (exact, not a
    heuristic: with thousands of themed catalogue entries, a turn evaluates a few dozen). Among
    those, only offers that `can_target` are evaluated before the cut; the others after it, if kept.
    """
    kept = [h for h in hits if h.offer.status == "active" or named.names(h.offer.id)]
    themes, places = set(profile.themes), set(profile.place_themes)
    needed = NEED_SUPPORTS[profile.need] if profile.need else None
    for hit in kept:
        offer, adjustments = hit.offer, {}
        if named.names(offer.id, titles_only=True):
            adjustments["named"] = NAMED_BONUS
        elif named.names(offer.id):
            adjustments["named"] = ALIAS_BONUS
        if not themes.isdisjoint(offer.themes):
            adjustments["theme"] = THEME_BONUS
        elif not places.isdisjoint(offer.themes) and "named" not in adjustments:
            adjustments["place_only"] = PLACE_ONLY
        if needed and not needed.isdisjoint(offer.support_types):
            adjustments["need"] = NEED_BONUS
        if profile.need != "outil" and INFORMATION_ONLY.issuperset(offer.support_types):
            adjustments["information_only"] = INFORMATION_PENALTY
        hit.adjustments = adjustments
    # (final score, hit), best first: each hit's score summed once, again only when TARGET_BONUS joins it.
    scored = sorted(((h.final_score, h) for h in kept), key=lambda pair: (-pair[0], pair[1].offer.id))
    floor = scored[CANDIDATES - 1][0] if len(scored) >= CANDIDATES else float("-inf")
    contenders = [(final, h) for final, h in scored if final + TARGET_BONUS >= floor]
    verdicts = {h.offer.id: evaluate(h.offer, profile) for _, h in contenders if can_target(h.offer)}
    for position, (_, hit) in enumerate(contenders):
        verdict = verdicts.get(hit.offer.id)
        if verdict is not None and targets(hit.offer, verdict):
            hit.adjustments["targeted"] = TARGET_BONUS
            contenders[position] = (hit.final_score, hit)
    ranked = [h for _, h in sorted(contenders, key=lambda pair: (-pair[0], pair[1].offer.id))[:CANDIDATES]]
    return ranked, {h.offer.id: verdicts.get(h.offer.id) or evaluate(h.offer, profile) for h in ranked}


def targets(offer: Offer, verdict: Verdict) -> bool:
    """An offer reserved to (or free for) a size or territory the asker is known to fit is more specific to them."""
    restricted = bool(offer.eligibility.population or offer.eligibility.territory_all)
    return (restricted and verdict.status == "eligible") or verdict.free is True
