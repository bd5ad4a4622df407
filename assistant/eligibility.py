"""Check an offer's structured eligibility against the asker's profile, in three states.

- eligible: EVERY condition the card states was checked against a known fact and holds. The
  conditions a card states are (assistant/schema.py): its audiences, every field of `eligibility`
  (population, territory, programmes, works amount, physical measures, triggering event, free-text
  conditions, beneficiaries), its `status` (a closed or historic offer needs an edition open today)
  and what its `status_note` or `cost.note` leaves « à confirmer » / « à vérifier » (the corpus's
  marks of the ⚠ items of offers-facts.md). So a card whose only stated condition is the audience
  is « éligible » for a matching audience, and for nothing else: a historic card, or one whose
  note leaves its availability or access conditions to confirm, stays « à vérifier »;
- ineligible: a known fact breaks a rule (`failed` names it, in French);
- unknown (shown « à vérifier »): otherwise; `missing` names each condition that could not be checked.
  Free-text conditions of a card cannot be checked by a program: they always land here.

Only a *known* fact can make an offer ineligible: a missing population or amount never excludes
anyone. An offer whose beneficiaries are residents (MaPrimeAdapt', MaPrimeRénov'…) is never eligible
for the collectivity: it is presented « pour vos habitants » (`Verdict.for_residents`).
Rules come from the cards (corpus/offers, schema in assistant/schema.py), figures from offers-facts.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from assistant.contacts import of_place
from assistant.profile import Profile
from assistant.schema import AmountRule, Offer, PhysicalRule, PopulationRule

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
    "ort": "une ORT (opération de revitalisation de territoire)",
    "qpv": "un quartier prioritaire (QPV)",
    "frr": "France Ruralités Revitalisation (FRR)",
}
# Programmes that are also territory facts: the profile may know them either way.
MEMBERSHIP_FACTS = {"ort", "qpv", "frr"}
TYPE_LABELS = {"commune": "commune", "epci": "intercommunalité", "department": "département", "region": "région"}
STRUCTURE_LABELS = {"bridge": "un pont", "wall": "un mur de soutènement"}
MEASURE_LABELS = {"opening_m": "l'ouverture de l'ouvrage"}
# A sum said without « HT » may include VAT at the standard French rate (20 %, code général des
# impôts art. 278): it is then only known to lie between amount / 1.2 and amount.
VAT_FACTOR = 1.2
TO_CONFIRM = " (seuil à confirmer)"
# How a card's notes mark what its sources leave open (offers-facts.md: ⚠ items « à confirmer »).
OPEN_MARKS = ("à confirmer", "à vérifier")
EDITION_NEEDED = {
    "closed": "qu'une nouvelle édition soit ouverte (dispositif clos)",
    "historic": "qu'une édition soit ouverte aujourd'hui (dispositif historique)",
}


@dataclass
class Verdict:
    status: Literal["eligible", "ineligible", "unknown"]
    met: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    free: bool | None = None
    cost_note: str | None = None
    for_residents: bool = False

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "met": self.met,
            "failed": self.failed,
            "missing": self.missing,
            "free": self.free,
            "for_residents": self.for_residents,
        }


def _fmt(n: float) -> str:
    if isinstance(n, float) and not n.is_integer():
        return f"{n:.2f}".rstrip("0").replace(".", ",")
    return f"{int(n):,}".replace(",", "\u202f")


def _who(rule: PopulationRule) -> str:
    return {"commune": "communes", "epci": "intercommunalités"}.get(rule.audience, rule.audience)


def describe_rule(rule: PopulationRule, overseas: bool = False) -> str:
    """'communes de moins de 3 500 habitants'; the bound that applies overseas when `overseas` (the
    asker's territory) and the rule sets one (« communes d'outre-mer de 35 000 habitants au plus »);
    « en population DGF » for a rule on that population."""
    high = rule.max_for(overseas)
    where = " d'outre-mer" if overseas and rule.overseas_max is not None else ""
    basis = " en population DGF" if rule.basis == "dgf" else ""
    if rule.min is None:
        # « n'excède pas 20 000 » reads as such; « < 3 500 » (max 3499) as « moins de 3 500 ».
        upto = f"de moins de {_fmt(high + 1)} habitants" if (high + 1) % 100 == 0 else f"de {_fmt(high)} habitants au plus"
        return f"{_who(rule)}{where} {upto}{basis}"
    if high is None:
        return f"{_who(rule)}{where} d'au moins {_fmt(rule.min)} habitants{basis}"
    return f"{_who(rule)}{where} de {_fmt(rule.min)} à {_fmt(high)} habitants{basis}"


def _describe_bounds(subject: str, low, high, unit: str, rule: AmountRule | PhysicalRule) -> str:
    bounds = [f"d'au {word} {_fmt(value)} {unit}" for word, value in (("moins", low), ("plus", high)) if value is not None]
    where = f" pour {STRUCTURE_LABELS[rule.structure]}" if rule.structure else ""
    return f"{subject} {' et '.join(bounds)}{where}" + (TO_CONFIRM if rule.to_confirm else "")


def describe_amount(rule: AmountRule) -> str:
    """'travaux d'au moins 40 000 € HT pour un pont (seuil à confirmer)'."""
    return _describe_bounds("travaux", rule.min_eur, rule.max_eur, "€ HT", rule)


def describe_physical(rule: PhysicalRule) -> str:
    """'l'ouverture de l'ouvrage d'au moins 2 m pour un pont'."""
    return _describe_bounds(MEASURE_LABELS[rule.measure], rule.min, rule.max, "m", rule)


def size_can_decide(rule: PopulationRule) -> bool:
    """Whether learning the asker's population settles this bound for most askers, i.e. is worth a
    question (assistant.pipeline.judge.clarify). Not a ceiling on the population DGF (the DETR's): the
    population an asker gives proves it broken only for the largest towns (474 of the 34,969 communes
    of corpus/territoires are above 20 000 inhabitants, 35 000 overseas) and never proves it held, so
    every other answer stays « à vérifier » whatever they say."""
    return not (rule.basis == "dgf" and rule.min is None)


def _population_check(rules: list[PopulationRule], profile: Profile) -> tuple[bool | None, str | None]:
    """(holds?, the French phrase for the verdict): (None, None) when the audience is unknown or no rule
    applies to it; holds None when the facts cannot decide, the phrase then naming what is to check.

    A bound is checked against the asker's population and territory (overseas: assistant.profile);
    an exemption we cannot see (`unless`) or a population we only know from below (`basis: dgf`)
    leaves the answer « à vérifier » instead of « oui » or « non » (schema.PopulationRule)."""
    audience = AUDIENCE_OF_TYPE.get(profile.collectivity_type or "")
    applicable = [r for r in rules if r.audience == audience]
    if not applicable:
        return None, None
    rule, overseas = applicable[0], "overseas" in profile.facts
    if overseas and rule.overseas_exempt:
        return True, f"sans condition de taille pour les {_who(rule)} d'outre-mer"
    if profile.population is None:
        return None, "la population de votre collectivité"
    population, bound = profile.population, describe_rule(rule, overseas)
    high = rule.max_for(overseas)
    reached, under = rule.min is None or population >= rule.min, high is None or population <= high
    if reached and under:
        if rule.basis == "dgf" and high is not None:
            return None, (f"réservée aux {bound} (vous : {_fmt(population)} habitants ; "
                          "la population DGF, qui compte aussi les résidences secondaires, est à vérifier)")
        return True, f"réservée aux {bound}, vous en avez {_fmt(population)}"
    if rule.unless or (rule.basis == "dgf" and under):  # an unseen exemption; a DGF population above ours
        unless = f", sauf {rule.unless}" if rule.unless else ""
        return None, f"réservée aux {bound}{unless} (vous : {_fmt(population)} habitants)"
    return False, f"réservée aux {bound} (vous : {_fmt(population)} habitants)"


def _applies(rule: AmountRule | PhysicalRule, profile: Profile) -> bool | None:
    """Does a structure-specific rule concern this project? None when the structure is unknown."""
    if rule.structure is None:
        return True
    if profile.structure_kind is None:
        return None
    return rule.structure == profile.structure_kind


def _amount_holds(rule: AmountRule, profile: Profile) -> bool | None:
    """Against the works amount in € HT; a sum without « HT » is only known within [amount / 1.2, amount]."""
    amount = profile.works_amount_eur
    if amount is None:
        return None
    low = amount if profile.works_amount_ht else amount / VAT_FACTOR
    results = []
    if rule.min_eur is not None:
        results.append(True if low >= rule.min_eur else False if amount < rule.min_eur else None)
    if rule.max_eur is not None:
        results.append(True if amount <= rule.max_eur else False if low > rule.max_eur else None)
    if False in results:
        return False
    return None if None in results else True


def _check_amounts(offer: Offer, profile: Profile, verdict: Verdict) -> None:
    applicable = [r for r in offer.eligibility.works_amount if _applies(r, profile) is not False]
    if not applicable:
        return
    said = f"montant indiqué {_fmt(profile.works_amount_eur)} €" if profile.works_amount_eur is not None else ""
    if any(_applies(r, profile) is None for r in applicable):
        # The structure is unknown: the sum decides only if it meets, or fails, every variant.
        results = {_amount_holds(r, profile) for r in applicable}
        text = " ; ".join(describe_amount(r) for r in applicable)
        if results == {False}:
            verdict.failed.append(f"{text} : {said}")
        elif results == {True}:
            verdict.met.append(f"{text} : {said}")
        else:
            verdict.missing.append(f"le type d'ouvrage et le montant hors taxes des travaux ({text})")
        return
    for rule in applicable:
        text, holds = describe_amount(rule), _amount_holds(rule, profile)
        if holds is True:
            verdict.met.append(f"{text} : {said}")
        elif holds is False:
            verdict.failed.append(f"{text} : {said}")
        elif profile.works_amount_eur is None:
            verdict.missing.append(f"le montant des travaux ({text})")
        else:
            verdict.missing.append(f"le montant hors taxes des travaux ({text} ; {said})")


def _check_physical(offer: Offer, profile: Profile, verdict: Verdict) -> None:
    for rule in offer.eligibility.physical:
        if _applies(rule, profile) is False:
            continue
        text, value = describe_physical(rule), getattr(profile, rule.measure)
        if value is None:
            verdict.missing.append(text)
            continue
        holds = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
        (verdict.met if holds else verdict.failed).append(f"{text} : {_fmt(value)} m indiqués")


def part_of(label: str) -> str:
    """« faire partie » + label in correct French: « d'Action cœur de ville », « d'une ORT… », « des
    adhérents du Cerema », « de Petites villes de demain » (PROGRAMME_LABELS)."""
    return label if label.startswith("des ") else of_place(label)


def _known_member(programme: str, profile: Profile) -> bool:
    return programme in profile.programmes or (programme in MEMBERSHIP_FACTS and programme in profile.facts)


def unshown_condition(offer: Offer, profile: Profile) -> str | None:
    """The event that triggers `offer` (eligibility.event: storm damage for the DSEC) when the
    question does not show it — none of the event's themes among the question's themes — else None.
    Territory and programme conditions are not used here: the gold set asks « comment entrer dans
    Territoires d'industrie » or « la falaise recule » without the fact the profile would need."""
    event = offer.eligibility.event
    if event and not set(event.themes) & set(profile.themes):
        return event.label
    return None


def open_points(offer: Offer) -> list[str]:
    """The clauses of the card's `status_note` and `cost.note` (split at « ; » and sentence ends)
    that leave something « à confirmer » or « à vérifier », without their final period: conditions
    the card states and nobody checked (« sa disponibilité actuelle et ses conditions d'accès sont à
    confirmer avec la direction régionale de la Banque des Territoires »). [] when there is none."""
    notes = [offer.status_note, offer.cost.note if offer.cost else None]
    return [c for note in notes if note for c in _open_clauses(note)]


CLAUSE_BREAK = re.compile(r";|(?<=\.)\s")


@lru_cache(maxsize=4096)
def _open_clauses(note: str) -> tuple[str, ...]:
    """open_points of one note, memoised by its text: a card's notes are read on every turn that
    evaluates the card (a dozen cards a turn)."""
    clauses = (c.strip().rstrip(".") for c in CLAUSE_BREAK.split(note))
    return tuple(c for c in clauses if any(mark in c for mark in OPEN_MARKS))


def evaluate(offer: Offer, profile: Profile) -> Verdict:
    """Verdict of `offer` for the asker `profile`; see the module docstring for the three states."""
    verdict = Verdict(status="eligible")
    rules = offer.eligibility
    if rules.beneficiaries == "residents":
        verdict.for_residents = True
        verdict.met.append("aide destinée à vos habitants, la collectivité informe et oriente")
        verdict.missing.append("l'éligibilité de chaque ménage (l'aide est versée aux habitants, pas à la collectivité)")
    audience = AUDIENCE_OF_TYPE.get(profile.collectivity_type or "")
    if verdict.for_residents:
        pass  # the collectivity relays the aid; its own type does not decide anything
    elif audience is None:
        verdict.missing.append("le type de collectivité (commune, intercommunalité…)")
    elif audience not in offer.audiences:
        verdict.failed.append(f"offre non ouverte aux collectivités de type {TYPE_LABELS[audience]}")
    else:
        verdict.met.append(f"ouverte aux collectivités de type {TYPE_LABELS[audience]}")

    holds, text = _population_check(rules.population, profile)
    if text:
        {True: verdict.met, False: verdict.failed, None: verdict.missing}[holds].append(text)

    for condition in rules.territory_all:
        if condition in profile.facts:
            verdict.met.append(f"concerne {FACT_LABELS[condition]}")
        else:
            verdict.missing.append(f"être {FACT_LABELS[condition]}")
    if rules.programmes_any:
        known = [p for p in rules.programmes_any if _known_member(p, profile)]
        if known:
            verdict.met.append(f"votre collectivité fait partie {part_of(PROGRAMME_LABELS.get(known[0], known[0]))}")
        else:
            names = " ou ".join(part_of(PROGRAMME_LABELS.get(p, p)) for p in rules.programmes_any)
            # Memberships are designated lists (the 234 Action cœur de ville towns…) that no table of
            # corpus/territoires holds: not known to be a member is « à vérifier », never « non ».
            verdict.missing.append(f"faire partie {names}")
    _check_amounts(offer, profile, verdict)
    _check_physical(offer, profile, verdict)
    if rules.event:  # what the question says is not a checked fact (see unshown_condition)
        verdict.missing.append(rules.event.label)
    verdict.missing += [condition.rstrip(" .") for condition in rules.conditions]
    if offer.status in EDITION_NEEDED:
        verdict.missing.append(EDITION_NEEDED[offer.status])
    verdict.missing += [point for point in open_points(offer) if point not in verdict.missing]

    if offer.cost and offer.cost.free_for:
        free, _ = _population_check(offer.cost.free_for, profile)
        verdict.free = free
        verdict.cost_note = offer.cost.note

    if verdict.failed:
        verdict.status = "ineligible"
    elif verdict.missing:
        verdict.status = "unknown"
    return verdict
