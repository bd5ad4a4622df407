"""Stage 5a, door: the everyday grants, the evidence floor and the doors beyond the partners.

Input: the ranked candidates and their verdicts (rank stage), the message, the profile, the loaded
index, the calibrated models (assistant.everyday). Output: a `Door` — the offers to recommend, the
ineligible ones to cite apart, and the signpost doors to name (the former judge.eligibility split, with the doors).

Rules (constants mirrored in README « Le classement, explicite »):
- evidence floor: a candidate whose evidence (EverydayModel.evidence) is under the calibrated floor
  only shares a word with the question: it gets WEAK_EVIDENCE in its score breakdown, ranks after
  every evidenced offer and after the everyday grants, and is not recommended when the everyday door
  is open or when a door beyond the partners answers the question.
- everyday door: when the message is an investment project of a commune, an EPCI or an unknown
  asker — EverydayModel.is_investment says so, or the message names a grant for works (a card with
  `support_types` grant and `project_steps` op) that the asker is known not to qualify for: the
  question is then about funding works, and the general grants are the next door — DETR and DSIL are candidates (DSID for a département), with
  EVERYDAY_DOOR in their breakdown; they rank by their own score among the evidenced offers, never
  evict an evidenced offer from the first max_referrals places (the first grant then takes one
  dedicated extra place), and are cited apart when the asker is known to be ineligible.
- grants first: beside the everyday grants, when the offer that would lead is neither named nor vouched for
  and is a household's aid (eligibility.beneficiaries residents), a tax relief alone (support_types tax_relief:
  France Ruralités Revitalisation exempts businesses, it funds no works) or carries no theme of the question with an
  evidence under the calibrated `evidence_before_grants` or a dense similarity under `dense_before_grants`
  (it meets the question by wording alone: « refaire la voirie » and the Denormandie tax relief), the grants
  lead: every such offer gets AFTER_GRANTS (`for_residents` / `tax_relief` / `wording_only` in its breakdown), and a household's
  aid sharing no theme with the question is not recommended (`after_grants`).
- households' aids beside the question: whoever leads, a household's aid (eligibility.beneficiaries residents)
  the question does not name and that shares no theme with it is not recommended when the question is a
  collectivity's works: the everyday door is open, or the question carries a theme of the general grants' cards
  (DETR, DSIL, DSID: accessibility, public buildings…) (`beside_the_question`). « Rendre la mairie accessible aux
  personnes handicapées » is no resident's home to adapt, and MaPrimeAdapt' met it by its words. It gets
  AFTER_GRANTS (`for_residents`). Otherwise whether the works are a resident's home is not known (« nos personnes
  âgées veulent adapter leur salle de bain », « rénovations d'ampleur des particuliers »): the aid stays, « pour
  vos habitants » (eligibility.evaluate), as does an aid sharing a theme (« logements communaux »).
- triggering event: beside the everyday grants, an offer that serves only after an event
  (eligibility.event: storm or flood damage for the DSEC) that the question does not show
  (eligibility.unshown_condition) and that the question does not name gets CONDITION_UNSHOWN: it
  ranks after the grants (still shown), since it only shares a word with an ordinary project
  (« mur du pont » is not storm damage).
- doors beyond the partners: the best signpost card whose score passes the calibrated floor (and the
  second when within the margin), among the cards whose population bounds do not exclude the asker
  (Signpost.excludes: a fund for communes under 2,000 inhabitants is never named to a known 4,600). It leads the answer when no offer is evidenced (« ce n'est pas dans
  les offres de nos partenaires »), when the question carries a theme only a door serves (a listed
  church: the DRAC first, DETR/DSIL as complements), or when its score exceeds the best offer's
  dense similarity by the calibrated lead gap and passes the calibrated lead floor; in an investment
  project, neither the door-only theme nor the gap puts the door first when an evidenced offer carries
  a theme of the question the door does not carry (when calibration keeps that guard: « éclairage
  public du stade » is the lighting offer's, the sports door is named beside it); beside a leading door, only the everyday grants, the
  door's complements (its card's `complements`, added like the grants, DOOR_COMPLEMENT in their
  breakdown), offers whose evidence passes `evidence_beside_door` and evidenced offers closer to the
  question (dense similarity) than every door card are shown; every complement the
  asker is not known to be ineligible for is recommended, after the first max_referrals. A named door is
  followed by the cards reached through it (`beside`) whose population bounds admit the asker.
- « éligible » means open to the asker *and* about the question: a recommended offer (not a grant nor
  a leading door's complement) whose evidence is under `evidence_beside_door` while a signpost card
  is closer to the question than the offer (dense similarity) is « à vérifier », RELEVANCE_TO_CHECK
  named (with the named door's body, when the answer names one), even when every rule of its card is met.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from assistant.eligibility import Verdict, evaluate, unshown_condition
from assistant.everyday import EverydayModel, SignpostFinder
from assistant.profile import Profile
from assistant.retrieval import LoadedIndex, OfferHit
from assistant.schema import Signpost
from assistant.text import fold

WEAK_EVIDENCE = -0.05  # under the evidence floor: after every evidenced offer and the grants
EVERYDAY_DOOR = 0.004  # a general-purpose grant of an investment project
CONDITION_UNSHOWN = -0.05  # beside the everyday grants, an offer whose triggering event the question does not show
AFTER_GRANTS = -0.05  # beside the everyday grants, a household's aid or an offer reached by wording alone (after_grants)
DOOR_COMPLEMENT = 0.0  # an offer a leading door's card names as its complement: shown, not moved
GRANTS = {"commune": ("etat-detr", "etat-dsil"), "epci": ("etat-detr", "etat-dsil"), None: ("etat-detr", "etat-dsil"),
          "department": ("etat-dsid",)}
ALL_GRANTS = {i for ids in GRANTS.values() for i in ids}
# Supports that fund no works of the collectivity (after_grants): a tax relief goes to businesses or households.
NO_WORKS_FUNDING = {"tax_relief"}
MAX_DOORS = 2
# The condition named when an offer the asker qualifies for is not marked « éligible »: a door card is
# closer to the question than the offer, and its evidence is under the strong-evidence floor.
RELEVANCE_TO_CHECK = "le rapport de l'offre avec votre besoin"


def relevance_condition(signposts: list[Signpost]) -> str:
    """RELEVANCE_TO_CHECK, with the body that may cover the need better when the answer names its door
    (never a body the answer does not name)."""
    return f"{RELEVANCE_TO_CHECK}, que {signposts[0].body} couvre peut-être mieux" if signposts else RELEVANCE_TO_CHECK


def names_works_grant(hit: OfferHit) -> bool:
    """The message names this offer, a grant for works (the operational step of a project)."""
    offer = hit.offer
    return "named" in hit.adjustments and "grant" in offer.support_types and "op" in offer.project_steps


def after_grants(hit: OfferHit, evidence: dict[str, float], model: EverydayModel, grants, complements) -> str | None:
    """Beside the everyday grants, why an offer ranks after them, or None: neither vouched for (a grant, a
    leading door's complement) nor named, it is a household's aid (beneficiaries residents: MaPrimeRénov',
    Denormandie… are not the collectivity's works, whatever its theme) -> "for_residents", or its only support
    is a tax relief (support_types tax_relief: France Ruralités Revitalisation exempts the businesses that settle,
    it funds no works of the collectivity, whatever its theme) -> "tax_relief", or it carries no
    theme of the question and its evidence is under the calibrated `evidence_before_grants` or its dense
    similarity under `dense_before_grants` (it met the question by wording alone) -> "wording_only"."""
    offer = hit.offer
    if offer.id in grants or offer.id in complements or "named" in hit.adjustments:
        return None
    if offer.eligibility.beneficiaries == "residents":
        return "for_residents"
    if set(offer.support_types) <= NO_WORKS_FUNDING:
        return "tax_relief"
    if "theme" not in hit.adjustments and (evidence.get(offer.id, 0.0) < model.evidence_before_grants
                                           or hit.dense_similarity < model.dense_before_grants):
        return "wording_only"
    return None


def beside_the_question(hit: OfferHit, works: bool) -> bool:
    """A household's aid (beneficiaries residents) the message does not name, sharing no theme with a question
    that is a collectivity's works (`works`: the everyday door is open, or the question carries a theme of the
    general grants' cards): not a referral (module docstring)."""
    return (hit.offer.eligibility.beneficiaries == "residents" and "named" not in hit.adjustments
            and "theme" not in hit.adjustments and works)


@dataclass
class Door:
    candidates: list[OfferHit]  # ranked with the door's adjustments (grants added), best first
    recommended: list[OfferHit]
    ineligible: list[OfferHit]
    signposts: list[Signpost] = field(default_factory=list)
    leads: bool = False  # a signpost answers the question before any offer


def open_door(
    ranked: list[OfferHit],
    verdicts: dict[str, Verdict],
    profile: Profile,
    message: str,
    index: LoadedIndex,
    model: EverydayModel,
    finder: SignpostFinder | None,
    max_referrals: int,
    query_vector=None,
) -> Door:
    """The offers and doors of the turn (rules in the module docstring); `verdicts` gains the grants'
    and the leading door's complements'. `query_vector`: the turn's query embedding (in the cards'
    spelling, as retrieval reads it), so that the doors read the question as the offers do."""
    similarities = finder.similarities(message, query_vector) if finder is not None else None
    evidence = model.evidence(ranked, max(similarities, default=0.0) if similarities else 0.0)
    weak = {i for i, p in evidence.items() if p < model.evidence_floor}
    evidenced = [h for h in ranked if h.offer.id not in weak]
    investment = profile.collectivity_type in GRANTS and (
        model.is_investment(message)
        or any(names_works_grant(h) and verdicts[h.offer.id].status == "ineligible" for h in ranked))

    signposts, leads = [], False
    if finder is not None:
        scored = [(score, s) for score, s in finder.scores(message, profile.themes, model.signpost_bonus, similarities)
                  if not s.excludes(profile.collectivity_type, profile.population)]  # a fund for communes under 2,000: not for 4,600

        def doors(floor: float) -> list[Signpost]:
            top = scored[0][0]
            return [s for score, s in scored[:MAX_DOORS] if score >= floor and top - score <= model.signpost_margin]

        signposts = doors(model.signpost_floor) if scored else []
        if signposts:
            door_theme = bool(set(signposts[0].themes) & finder.door_themes & set(profile.themes))
            best_dense = max((h.dense_similarity for h in ranked if h.offer.id not in ALL_GRANTS), default=0.0)
            # In an investment project, an evidenced offer that carries a theme of the question the door
            # does not carry answers it: neither the door's theme nor the similarity gap puts the door
            # before it (when calibration keeps the guard).
            own = set(profile.themes) - set(signposts[0].themes)
            themed = investment and any(set(h.offer.themes) & own for h in evidenced if h.offer.id not in ALL_GRANTS)
            # The gap alone makes a door lead only when its own score passes the lead floor (needs
            # phrases pull ordinary works and studies close to a door, less than a door's own questions).
            gap_leads = scored[0][0] - best_dense >= model.signpost_lead_gap and scored[0][0] >= model.signpost_lead_floor
            guarded = model.signpost_lead_theme_guard and themed
            leads = not evidenced or ((door_theme or gap_leads) and not guarded)
            if not leads:  # beside offers that answer: one door, above a floor of its own
                signposts = doors(model.signpost_beside_floor)[:1]

        signposts = with_companions(signposts, finder.signposts, profile)

    candidates = list(ranked)
    grants = GRANTS.get(profile.collectivity_type, ()) if investment else ()
    complements = tuple(signposts[0].complements) if leads else ()
    # The everyday door vouches for the general-purpose grants, a leading door for its complements.
    vouched = [(i, "everyday_door", EVERYDAY_DOOR) for i in grants] + [(i, "door_complement", DOOR_COMPLEMENT) for i in complements]
    for offer_id, reason, adjustment in vouched:
        known = any(h.offer.id == offer_id for h in candidates)
        hit = hit_with_verdict(offer_id, candidates, verdicts, profile, index, active_only=True)
        if hit is None:
            continue
        if not known:
            candidates.append(hit)
        hit.adjustments[reason] = adjustment
        hit.adjustments.pop("place_only", None)  # vouched for whatever the place of the works
        weak.discard(offer_id)
    grant_cards = (index.offers.get(i) for i in ALL_GRANTS)
    works = investment or any(not set(o.themes).isdisjoint(profile.themes) for o in grant_cards if o is not None)
    apart = set()  # households' aids beside the question: never shown
    for hit in candidates:
        if hit.offer.id in weak:
            hit.adjustments["weak_evidence"] = WEAK_EVIDENCE
        if beside_the_question(hit, works):
            hit.adjustments["for_residents"] = AFTER_GRANTS
            apart.add(hit.offer.id)
        if grants and hit.offer.id not in grants and "named" not in hit.adjustments \
                and unshown_condition(hit.offer, profile) is not None:
            hit.adjustments["condition_unshown"] = CONDITION_UNSHOWN
    candidates.sort(key=lambda h: (-h.final_score, h.offer.id))
    # An offer that meets the question by wording alone, or a household's aid, does not lead a collectivity's
    # works: when one would, the everyday grants lead, and every such offer ranks after them (the order under a
    # themed or strongly evidenced first offer is left to the « Autres pistes » evidence).
    if grants and candidates and candidates[0].offer.id not in weak \
            and after_grants(candidates[0], evidence, model, grants, complements):
        for hit in candidates:
            reason = None if hit.offer.id in weak else after_grants(hit, evidence, model, grants, complements)
            if reason is not None:
                hit.adjustments[reason] = AFTER_GRANTS
                if reason == "for_residents" and "theme" not in hit.adjustments:
                    weak.add(hit.offer.id)  # a household's aid sharing no theme with the works: not recommended
        candidates.sort(key=lambda h: (-h.final_score, h.offer.id))

    door_similarity = max(similarities) if similarities else 0.0

    def shown(hit: OfferHit) -> bool:
        if hit.offer.id in grants or hit.offer.id in complements:
            return True
        if hit.offer.id in apart:
            return False
        if leads and evidence.get(hit.offer.id, 0.0) < model.evidence_beside_door \
                and not (hit.offer.id not in weak and hit.dense_similarity > door_similarity):
            return False  # beside a leading door: its complements, strongly evidenced offers, offers closer than any door card
        return not ((investment or leads) and hit.offer.id in weak)

    kept = [h for h in candidates if shown(h)]
    open_ = [h for h in kept if verdicts[h.offer.id].status != "ineligible"]
    # « Autres pistes »: after the first offer, the calibrated evidence, unless vouched for or named.
    recommended = (open_[:1] + [h for h in open_[1:] if h.offer.id in grants or h.offer.id in complements
                                or "named" in h.adjustments
                                or evidence.get(h.offer.id, 0.0) >= model.evidence_other_leads])[:max_referrals]
    if grants and not any(h.offer.id in grants for h in recommended):
        extra = next((h for h in open_ if h.offer.id in grants), None)
        if extra is not None:
            recommended.append(extra)  # the dedicated place of the everyday grant
    # A leading door's complements are its answer's offers: each keeps a place after the strongly evidenced ones.
    recommended += [h for h in open_ if h.offer.id in complements and h not in recommended]
    ineligible = [h for h in kept[: max_referrals + 2] if verdicts[h.offer.id].status == "ineligible"]
    for hit in recommended:
        verdict = verdicts[hit.offer.id]
        vouched_for = hit.offer.id in grants or hit.offer.id in complements
        if verdict.status == "eligible" and not vouched_for and evidence.get(hit.offer.id, 0.0) < model.evidence_beside_door \
                and hit.dense_similarity < door_similarity:
            verdicts[hit.offer.id] = replace(verdict, status="unknown", missing=[*verdict.missing, relevance_condition(signposts)])
    return Door(candidates, recommended, ineligible, signposts, leads)


RESIDENTS_THEME = "demarches-habitants"  # corpus/themes.yaml: residents' own rights and procedures


def refusal_doors(message: str, themes: list[str], refusal: str, model: EverydayModel,
                  finder: SignpostFinder | None, query_vector=None) -> list[Signpost]:
    """Beside a scope refusal (a resident's own affair), the residents' door the question is about: the
    best-scored signpost card, when it carries RESIDENTS_THEME (the ADIL for a tenant's rights), passes
    the calibrated door floor and is not already named by the refusal text. [] otherwise."""
    if finder is None:
        return []
    scored = finder.scores(message, themes, model.signpost_bonus, finder.similarities(message, query_vector))
    if not scored:
        return []
    score, card = scored[0]
    if score < model.signpost_floor or RESIDENTS_THEME not in card.themes or names_body(refusal, card):
        return []
    return [card]


def names_body(text: str, signpost: Signpost) -> bool:
    """The text names the signpost's body, or one of its other names of three characters or more, as
    whole words (accent- and case-folded: « ANS » is not found inside « dans »)."""
    folded = fold(text)
    return any(re.search(rf"(?<!\w){re.escape(fold(name))}(?!\w)", folded)
               for name in [signpost.body, *[a for a in signpost.aliases if len(a) >= 3]])


def with_companions(doors: list[Signpost], cards: list[Signpost], profile: Profile) -> list[Signpost]:
    """`doors`, each followed by the cards reached through it (their `beside`) whose population bounds
    admit the asker (Signpost.admits: known population only): the Culture ministry's fund for small
    communes after the DRAC, for a commune of 400 inhabitants."""
    out: list[Signpost] = []
    for door in doors:
        if door not in out:
            out.append(door)
        out += [c for c in cards if c.beside == door.id and c not in out
                and c.admits(profile.collectivity_type, profile.population)]
    return out


def hit_with_verdict(offer_id: str, ranked: list[OfferHit], verdicts: dict[str, Verdict], profile: Profile,
                     index: LoadedIndex, active_only: bool = False) -> OfferHit | None:
    """The ranked hit of `offer_id`, else one built from its card in the index (fused score 0, no
    retrieval evidence); `verdicts` gains its verdict when it has none. None when the index has no such
    card, or (`active_only`) when the card is not active and was not ranked."""
    hit = next((h for h in ranked if h.offer.id == offer_id), None)
    if hit is None:
        offer = index.offers.get(offer_id)
        if offer is None or (active_only and offer.status != "active"):
            return None
        hit = OfferHit(offer=offer, score=0.0)
    if offer_id not in verdicts:  # evaluated once: a ranked hit has its verdict already
        verdicts[offer_id] = evaluate(hit.offer, profile)
    return hit


def shown_before(shown: list[str], ranked: list[OfferHit], verdicts: dict[str, Verdict], profile: Profile,
                 index: LoadedIndex) -> list[OfferHit]:
    """A follow-up on the offers of the last answer (« et qui je contacte ? », « c'est gratuit ? ») is
    about those offers, in their order, not about what its own words retrieve; `verdicts` gains theirs."""
    hits = [hit_with_verdict(offer_id, ranked, verdicts, profile, index) for offer_id in shown]
    return [h for h in hits if h is not None]
