"""Judge eligibility: which ranked candidates may be recommended, which are listed apart.

An offer the asker is known to be ineligible for is never recommended; it is cited apart, with the
reason (verdicts come from `assistant.eligibility.evaluate`, computed once in the rank stage).
"""

from __future__ import annotations

from assistant.eligibility import Verdict
from assistant.retrieval import OfferHit


def split(ranked: list[OfferHit], verdicts: dict[str, Verdict], max_referrals: int) -> tuple[list[OfferHit], list[OfferHit]]:
    """(recommended: at most max_referrals not ineligible, excluded: the ineligible among the first max_referrals + 2)."""
    recommended = [h for h in ranked if verdicts[h.offer.id].status != "ineligible"][:max_referrals]
    excluded = [h for h in ranked[: max_referrals + 2] if verdicts[h.offer.id].status == "ineligible"]
    return recommended, excluded
