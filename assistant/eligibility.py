"""Check an offer's structured eligibility against the asker's profile.

Three outcomes: eligible, not eligible (with the reason in French), unknown (with the missing fact).
Only a *known* fact can make an offer ineligible: a missing population never excludes anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assistant.profile import Profile
from assistant.schema import Offer, PopulationRule

AUDIENCE_OF_TYPE = {"commune": "commune", "epci": "epci", "department": "department", "region": "region"}
FACT_LABELS = {
    "qpv": "un quartier prioritaire de la politique de la ville (QPV)",
    "rural": "une commune rurale",
    "coastal": "une commune littorale",
    "mountain": "une commune de montagne",
    "overseas": "un territoire d'outre-mer",
    "frr": "une commune classée France Ruralités Revitalisation",
    "ort": "une opération de revitalisation de territoire (ORT)",
}
PROGRAMME_LABELS = {
    "petites-villes-de-demain": "Petites villes de demain",
    "action-coeur-de-ville": "Action cœur de ville",
    "villages-d-avenir": "Villages d'avenir",
    "territoires-d-industrie": "Territoires d'industrie",
    "npnru": "NPNRU (renouvellement urbain)",
    "crte": "CRTE",
    "territoire-engage-transition-ecologique": "Territoire engagé transition écologique",
    "adhesion-cerema": "des adhérents du Cerema",
}
TYPE_LABELS = {"commune": "commune", "epci": "intercommunalité", "department": "département", "region": "région"}


@dataclass
class Verdict:
    status: Literal["eligible", "ineligible", "unknown"]
    met: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    free: bool | None = None
    cost_note: str | None = None

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "met": self.met,
            "failed": self.failed,
            "missing": self.missing,
            "free": self.free,
        }


def _fmt(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def describe_rule(rule: PopulationRule) -> str:
    who = {"commune": "communes", "epci": "intercommunalités"}.get(rule.audience, rule.audience)
    if rule.min is None:
        return f"{who} de moins de {_fmt(rule.max + 1)} habitants"
    if rule.max is None:
        return f"{who} d'au moins {_fmt(rule.min)} habitants"
    return f"{who} de {_fmt(rule.min)} à {_fmt(rule.max)} habitants"


def _within(rule: PopulationRule, population: int) -> bool:
    return (rule.min is None or population >= rule.min) and (rule.max is None or population <= rule.max)


def _population_check(rules: list[PopulationRule], profile: Profile) -> tuple[bool | None, str | None]:
    """(holds?, text): None when the audience or population is unknown or no rule applies."""
    audience = AUDIENCE_OF_TYPE.get(profile.collectivity_type or "")
    applicable = [r for r in rules if r.audience == audience]
    if not applicable:
        return None, None
    if profile.population is None:
        return None, "la population de votre collectivité"
    rule = applicable[0]
    return _within(rule, profile.population), describe_rule(rule)


def evaluate(offer: Offer, profile: Profile) -> Verdict:
    verdict = Verdict(status="eligible")
    audience = AUDIENCE_OF_TYPE.get(profile.collectivity_type or "")
    if audience is None:
        verdict.missing.append("le type de collectivité (commune, intercommunalité…)")
    elif audience not in offer.audiences:
        verdict.failed.append(f"offre non ouverte aux collectivités de type {TYPE_LABELS[audience]}")
    else:
        verdict.met.append(f"ouverte aux collectivités de type {TYPE_LABELS[audience]}")

    holds, text = _population_check(offer.eligibility.population, profile)
    if holds is True:
        verdict.met.append(f"réservée aux {text}, vous en avez {_fmt(profile.population)}")
    elif holds is False:
        verdict.failed.append(f"réservée aux {text} (vous : {_fmt(profile.population)} habitants)")
    elif text and "population" in text:
        verdict.missing.append(text)

    for condition in offer.eligibility.territory_all:
        if condition in profile.facts:
            verdict.met.append(f"concerne {FACT_LABELS[condition]}")
        else:
            verdict.missing.append(f"être {FACT_LABELS[condition]}")
    if offer.eligibility.programmes_any:
        if set(offer.eligibility.programmes_any) & set(profile.programmes):
            verdict.met.append("votre collectivité fait partie du programme requis")
        else:
            names = " ou ".join(PROGRAMME_LABELS.get(p, p) for p in offer.eligibility.programmes_any)
            verdict.missing.append(f"faire partie du programme {names}")

    if offer.cost and offer.cost.free_for:
        free, _ = _population_check(offer.cost.free_for, profile)
        verdict.free = free
        verdict.cost_note = offer.cost.note

    if verdict.failed:
        verdict.status = "ineligible"
    elif verdict.missing:
        verdict.status = "unknown"
    return verdict
