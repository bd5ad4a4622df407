"""Offer, partner and theme cards: the contract between corpus/, ingest/ and the assistant.

Vocabularies follow Aides-territoires where it has one (support types, audiences) so that
cards can be exchanged with it; what it lacks (labels, tools, training) is added here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from assistant.text import match_terms

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True, frozen=True)


class Partner(StrEnum):
    anct = "anct"
    ademe = "ademe"
    cerema = "cerema"
    anru = "anru"
    anah = "anah"
    banque_des_territoires = "banque-des-territoires"
    etat = "etat"


class SupportType(StrEnum):
    technical_engineering = "technical_engineering"
    financial_engineering = "financial_engineering"
    legal_engineering = "legal_engineering"
    grant = "grant"
    loan = "loan"
    recoverable_advance = "recoverable_advance"
    tax_relief = "tax_relief"
    label = "label"
    tool = "tool"
    training = "training"
    network = "network"
    other = "other"


class Audience(StrEnum):
    commune = "commune"
    epci = "epci"
    department = "department"
    region = "region"
    special = "special"  # syndicats, PETR, pôles métropolitains
    social_landlord = "social_landlord"
    epl = "epl"  # SEM, SPL, SEMOP
    public_body = "public_body"  # EPF, EPA, établissements publics
    association = "association"
    company = "company"
    coownership = "coownership"  # syndicats de copropriétaires
    household = "household"  # owners, tenants


COLLECTIVITY_AUDIENCES = {Audience.commune, Audience.epci, Audience.department, Audience.region}


class ProjectStep(StrEnum):
    preop = "preop"  # idée, diagnostic, études
    op = "op"  # travaux, mise en œuvre
    postop = "postop"  # suivi, évaluation, exploitation


class Status(StrEnum):
    active = "active"
    closed = "closed"
    historic = "historic"


class TerritoryCondition(StrEnum):
    qpv = "qpv"
    rural = "rural"
    coastal = "coastal"
    mountain = "mountain"
    overseas = "overseas"
    frr = "frr"  # France Ruralités Revitalisation
    ort = "ort"  # opération de revitalisation de territoire


class Programme(StrEnum):
    petites_villes_de_demain = "petites-villes-de-demain"
    action_coeur_de_ville = "action-coeur-de-ville"
    villages_d_avenir = "villages-d-avenir"
    territoires_d_industrie = "territoires-d-industrie"
    npnru = "npnru"
    crte = "crte"
    territoire_engage = "territoire-engage-transition-ecologique"
    cerema_membership = "adhesion-cerema"
    # Zonings that work as memberships in eligibility rules (known from the profile's facts too).
    ort = "ort"
    qpv = "qpv"
    frr = "frr"


class ContactKind(StrEnum):
    """Where a collectivity knocks; corpus/contacts/ maps each kind to a concrete office per territory."""

    prefecture = "prefecture"  # préfet = délégué territorial ANCT and ANRU, Fonds vert, DETR/DSIL
    anah_local = "anah-delegation-locale"  # DDT(M) or delegated collectivity
    ademe_regional = "ademe-direction-regionale"
    bdt_regional = "bdt-direction-regionale"
    cerema_territorial = "cerema-direction-territoriale"
    territoires_conseils = "territoires-conseils"
    online = "en-ligne"  # a national platform is the entry point


class PopulationRule(Strict):
    """Inclusive bounds on the population of one audience: '< 3 500 habitants' is max 3499.

    The exceptions a text states are fields, so that a known fact is checked and an unknown one is
    never turned into « non »: `overseas_max` is the bound for an asker overseas when the law sets
    another (DETR: 35 000 instead of 20 000, CGCT art. L. 2334-33); `overseas_exempt` lifts the bound
    overseas (Territoires Conseils); `unless` names, in French, an exemption no table of ours tells
    (« les communes nouvelles »): a bound broken by the population is then « à vérifier », naming it.
    `basis: dgf`: the law counts the population DGF (CGCT art. L. 2334-2: the total population plus one
    inhabitant per secondary residence…), never below the INSEE population we know; so the population
    we know proves a maximum broken or a minimum reached, never a maximum held.
    """

    audience: Audience
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)
    overseas_max: int | None = Field(None, ge=0, description="The maximum for an asker overseas, when it differs.")
    overseas_exempt: bool = Field(False, description="No bound for an asker overseas.")
    unless: str | None = Field(None, min_length=3, description="An exemption no table tells, in French (« les communes nouvelles »).")
    basis: Literal["insee", "dgf"] = Field("insee", description="dgf: a bound on the population DGF, at least the INSEE one.")

    def max_for(self, overseas: bool) -> int | None:
        """The maximum that applies to an asker overseas (`overseas_max` when set) or elsewhere."""
        return self.overseas_max if overseas and self.overseas_max is not None else self.max

    @model_validator(mode="after")
    def _bounds(self) -> PopulationRule:
        if self.min is None and self.max is None:
            raise ValueError("une règle de population doit fixer min ou max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min doit être inférieur ou égal à max")
        if self.overseas_max is not None and (self.max is None or self.overseas_exempt):
            raise ValueError("overseas_max remplace un max, et ne va pas avec overseas_exempt")
        return self


class StructureKind(StrEnum):
    bridge = "bridge"  # pont, passerelle
    wall = "wall"  # mur de soutènement


class AmountRule(Strict):
    """Bounds on the amount of the works, in € HT, optionally for one kind of structure.

    Example (Programme national Ponts – Travaux, rules of 10 Feb 2025, offers-facts.md § 11.1):
    at least 40 000 € HT for a bridge, 20 000 € HT for a retaining wall (to_confirm: ⚠ in the reference).
    """

    structure: StructureKind | None = None
    min_eur: int | None = Field(None, ge=0)
    max_eur: int | None = Field(None, ge=0)
    to_confirm: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> AmountRule:
        if self.min_eur is None and self.max_eur is None:
            raise ValueError("une règle de montant doit fixer min_eur ou max_eur")
        return self


class PhysicalRule(Strict):
    """Bounds on a measured property of the structure, e.g. an opening of at least 2 m (in metres)."""

    measure: Literal["opening_m"]
    structure: StructureKind | None = None
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, ge=0)
    to_confirm: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> PhysicalRule:
        if self.min is None and self.max is None:
            raise ValueError("une règle physique doit fixer min ou max")
        return self


class EventCondition(Strict):
    """An offer that only serves after an event (storm damage…): what must have happened, and the
    themes (corpus/themes.yaml) whose detection in a question says it happened."""

    label: str = Field(description="What must have happened, in French (« des dégâts causés par… »).")
    themes: list[str] = Field(min_length=1, description="Themes that, detected in the question, evidence the event.")


class Eligibility(Strict):
    population: list[PopulationRule] = Field(
        default_factory=list, description="Bounds per audience; an audience with no rule has no bound."
    )
    territory_all: list[TerritoryCondition] = Field(
        default_factory=list, description="Every condition must hold (e.g. qpv)."
    )
    programmes_any: list[Programme] = Field(
        default_factory=list, description="Membership of at least one of these programmes is required."
    )
    works_amount: list[AmountRule] = Field(default_factory=list, description="Floors/ceilings of the works, € HT.")
    physical: list[PhysicalRule] = Field(default_factory=list, description="Measured criteria of the structure.")
    beneficiaries: Literal["collectivity", "residents"] = Field(
        "collectivity", description="residents: the aid goes to households; the collectivity only relays it."
    )
    event: EventCondition | None = Field(
        None, description="The triggering event the offer requires (DSEC: storm or flood damage)."
    )
    conditions: list[str] = Field(
        default_factory=list, description="Other conditions, in French; never checkable, always « à vérifier »."
    )


class Cost(Strict):
    free_for: list[PopulationRule] = Field(default_factory=list, description="Who gets it at no cost.")
    note: str | None = Field(None, description="Cost or co-financing rule for the others, in French.")


class Figure(Strict):
    label: str
    value: str
    to_confirm: bool = False


class Access(Strict):
    contact: ContactKind
    entry_point: str = Field(description="Who to address, in French, e.g. 'Préfecture de département'.")
    steps: list[str] = Field(min_length=1)
    url: HttpUrl | None = None


class Period(Strict):
    start: str | None = None
    end: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _partial_date(cls, value: object) -> str | None:
        if isinstance(value, (dt.date, int)):  # YAML reads 2025-05-19 as a date and 2025 as an int
            value = value.isoformat() if isinstance(value, dt.date) else str(value)
        if value is not None and not PARTIAL_DATE.match(value):
            raise ValueError("date attendue au format AAAA, AAAA-MM ou AAAA-MM-JJ")
        return value


class OutdatedPremise(Strict):
    premise: str = Field(description="What users may still believe, in French.")
    correction: str
    subject: list[str] = Field(
        min_length=1, description="Phrases naming what the premise is about (« AVELO 3 », « ZRR »); one must be said."
    )
    claims: list[str] = Field(
        default_factory=list,
        description="Phrases that say the outdated belief (« candidater », « gelée »); none: naming the subject says it.",
    )

    @field_validator("subject", "claims", mode="before")
    @classmethod
    def _years_as_words(cls, value: object) -> object:
        return [str(v) if isinstance(v, int) else v for v in value] if isinstance(value, list) else value


class Offer(Strict):
    id: str = Field(pattern=SLUG)
    partner: Partner
    operator: str | None = Field(None, description="Real operator, required for State schemes (partner etat).")
    co_partners: list[Partner] = Field(default_factory=list)
    title: str = Field(min_length=3)
    aliases: list[str] = Field(default_factory=list, description="Acronyms and other names askers use.")
    former_ids: list[str] = Field(
        default_factory=list, description="Ids of cards merged into this one; they still resolve to it."
    )
    summary: str = Field(min_length=20, max_length=600)
    description: str = Field(min_length=100)
    support_types: list[SupportType] = Field(min_length=1)
    audiences: list[Audience] = Field(min_length=1)
    themes: list[str] = Field(min_length=1)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    cost: Cost | None = None
    project_steps: list[ProjectStep] = Field(min_length=1)
    territorial_scope: str = Field("national", description="national, régional… in French when not national.")
    access: Access
    figures: list[Figure] = Field(default_factory=list)
    status: Status
    period: Period = Field(default_factory=Period)
    status_note: str | None = None
    outdated_premises: list[OutdatedPremise] = Field(default_factory=list)
    source_urls: list[HttpUrl] = Field(min_length=1)
    last_verified: dt.date

    @model_validator(mode="after")
    def _operator_for_state_schemes(self) -> Offer:
        if self.partner == Partner.etat and not self.operator:
            raise ValueError("un dispositif de l'État doit nommer son opérateur (champ operator)")
        return self

    @property
    def url(self) -> str:
        """The offer's own official page (« Page officielle »): its first source. access.url is where to
        apply (a portal, a platform), shown with the contact; corpus check rejects bare home pages."""
        return str(self.source_urls[0])


SIGNPOST_ID = r"^porte-[a-z0-9]+(?:-[a-z0-9]+)*$"


class Locate(StrEnum):
    """How to find the local office of a door from the asker's commune (see corpus/README.md)."""

    region = "region"  # one per région (DRAC, ARS, Région)
    departement = "departement"  # one per département (CAF, CDG, CAUE, ADIL, préfecture, département)
    basin = "basin"  # one per river basin (agences de l'eau)
    national = "national"  # one national entry point


class Signpost(Strict):
    """A door outside ANCT and its partners: who handles a need the offers do not cover.

    No figures and no schemes: a signpost names the competent body, what it covers, for whom and
    how to find the local office; the answer composer shows it when nothing fits or beside offers
    (a listed church: the DRAC first, DETR/DSIL as complements). Source: offers-facts.md § 11.3.
    """

    id: str = Field(pattern=SIGNPOST_ID)
    body: str = Field(min_length=3, description="Name of the body, in French.")
    aliases: list[str] = Field(default_factory=list, description="Acronyms and other names askers use.")
    covers: str = Field(min_length=40, description="What it covers, in French.")
    for_whom: str = Field(min_length=10, description="Who can knock, in French.")
    not_covered: str | None = Field(None, description="What people wrongly expect from it, in French.")
    needs: list[str] = Field(
        default_factory=list,
        description="Needs it serves as an asker words them (short French phrases, no figures): each is one "
                    "text the door finder compares a question with (assistant.everyday.SignpostFinder).",
    )
    themes: list[str] = Field(min_length=1)
    locate: Locate
    how_to_find: str = Field(min_length=20, description="How to find the local office, in French.")
    complements: list[str] = Field(
        default_factory=list, description="Offer ids that often come beside this door (e.g. etat-detr)."
    )
    beside: str | None = Field(
        None, pattern=SIGNPOST_ID,
        description="The door through which this one is reached (the Culture ministry's fund for small "
                    "communes: the DRAC); it is named beside that door for an asker its `population` admits.",
    )
    population: list[PopulationRule] = Field(
        default_factory=list, description="Population bounds of the askers it serves (source: offers-facts.md § 11.3)."
    )
    source_urls: list[HttpUrl] = Field(min_length=1)
    last_verified: dt.date

    @property
    def url(self) -> str:
        return str(self.source_urls[0])

    def admits(self, audience: str | None, population: int | None) -> bool:
        """True when the asker's population is known and inside this card's bounds for its audience
        (a card without bounds admits a known population of any size); unknown population: False."""
        if population is None:
            return False
        rules = [r for r in self.population if r.audience == audience]
        if self.population and not rules:
            return False
        return all((r.min is None or population >= r.min) and (r.max is None or population <= r.max) for r in rules)

    def excludes(self, audience: str | None, population: int | None) -> bool:
        """True when this card has population bounds and the asker's known population is outside them
        (unknown population: False, the card may apply): such a card is never named to that asker."""
        return bool(self.population) and population is not None and not self.admits(audience, population)


class PartnerCard(Strict):
    id: Partner
    name: str
    short_name: str
    role: str
    support_kinds: list[str] = Field(min_length=1)
    website: HttpUrl
    how_to_reach: str
    contact: ContactKind
    source_urls: list[HttpUrl] = Field(min_length=1)
    last_verified: dt.date


class Theme(Strict):
    id: str = Field(pattern=SLUG)
    label: str
    synonyms: list[str] = Field(default_factory=list)


class ThemeVocabulary(Strict):
    themes: list[Theme] = Field(min_length=1)
    fonds_vert_measures: dict[str, list[str]] = Field(
        default_factory=dict, description="Fonds vert measure name → theme ids (evaluation mapping)."
    )
    generic_works: list[str] = Field(
        default_factory=list,
        description="Nouns of works that name no object (« aménagement », « requalification »): no label or "
        "synonym may be one of them alone (compared by match_terms). Source: real titles, evals/generic_works.py.",
    )

    territory_nouns: list[str] = Field(
        default_factory=list,
        description="Theme phrases that name a territory (« village », « quartier »): completing another word, they "
        "say where the works are, never their object (profile.read_themes). Each is a label or synonym of a theme.",
    )
    building_nouns: list[str] = Field(
        default_factory=list,
        description="Theme phrases that name a building (« école », « salle des fêtes »): completing another word, "
        "they are the place of the works when the message names another theme (profile.read_themes). Each is a "
        "label or synonym of a theme, or a themeless phrase (« mairie »: a building that names no theme, whose "
        "fittings are still its own, profile.fitted).",
    )

    new_building_nouns: list[str] = Field(
        default_factory=list,
        description="Words of a new building (« construction », « création »): a building noun they govern is the "
        "place of the works, not the theme of an existing building's renovation (profile.built).",
    )
    new_dwellings: list[str] = Field(
        default_factory=list,
        description="Theme phrases of dwellings (« logement social ») that a word of a new building governs (« construction "
        "de 6 logements sociaux »): then the place of the works, not the housing theme, whose offers bring existing "
        "dwellings back (profile.read_themes). Each is a label or synonym of a theme.",
    )
    building_fittings: list[str] = Field(
        default_factory=list,
        description="Theme phrases that, completed by a building noun, are that building's own fittings (« les "
        "luminaires du gymnase », « des LED dans les écoles »): then none of them gives its theme and the building "
        "stays the object of the works (profile.read_themes). Each is a label or synonym of a theme.",
    )
    fittings_theme: str | None = Field(
        None,
        description="Theme id of a building's own fittings when the building names no theme (« l'éclairage de la "
        "mairie par des LED »: the renovation of public buildings; profile.read_themes).",
    )
    themeless_phrases: list[str] = Field(
        default_factory=list,
        description="Phrases that name no theme and read their own words, so that a shorter theme phrase inside "
        "them gives no theme (« centre d'incendie et de secours » is a fire station, no forest fire): "
        "profile._occurrences. Source: real titles, python -m evals.generic_works --before REV.",
    )

    @model_validator(mode="after")
    def _place_nouns_are_theme_phrases(self) -> ThemeVocabulary:
        phrases = {tuple(match_terms(p)) for theme in self.themes for p in [theme.label, *theme.synonyms]}
        themeless = {tuple(match_terms(p)) for p in self.themeless_phrases}
        for noun in [*self.territory_nouns, *self.building_nouns, *self.building_fittings, *self.new_dwellings]:
            # a building may name no theme (« mairie »: the asker as often as the building): a themeless phrase
            if tuple(match_terms(noun)) not in phrases and not (noun in self.building_nouns and tuple(match_terms(noun)) in themeless):
                raise ValueError(f"« {noun} » (lieu des travaux) n'est le libellé ni un synonyme d'aucun thème")
        return self

    @model_validator(mode="after")
    def _fittings_theme_is_a_theme(self) -> ThemeVocabulary:
        if self.fittings_theme is not None and self.fittings_theme not in {t.id for t in self.themes}:
            raise ValueError(f"« {self.fittings_theme} » (fittings_theme) n'est l'identifiant d'aucun thème")
        return self

    @model_validator(mode="after")
    def _no_theme_is_a_generic_works_noun(self) -> ThemeVocabulary:
        generic = {tuple(match_terms(noun)) for noun in self.generic_works}
        for theme in self.themes:
            for phrase in [theme.label, *theme.synonyms]:
                if tuple(match_terms(phrase)) in generic:
                    raise ValueError(f"thème « {theme.id} » : « {phrase} » est un nom de travaux qui ne nomme aucun objet")
        return self

    @model_validator(mode="after")
    def _mapping_uses_known_themes(self) -> ThemeVocabulary:
        known = {theme.id for theme in self.themes}
        for measure, theme_ids in self.fonds_vert_measures.items():
            unknown = set(theme_ids) - known
            if unknown:
                raise ValueError(f"mesure « {measure} » : thèmes inconnus {sorted(unknown)}")
        return self

    def by_id(self) -> dict[str, Theme]:
        return {theme.id: theme for theme in self.themes}


class OfferTable(Mapping[str, Offer]):
    """Offers by id, each validated on first access from its JSON form (model_dump(mode="json") of a
    valid Offer, as an index snapshot holds them): 10,000 cards are read without validating them
    (0.9 s), a turn validates the few it uses. Only for JSON forms this code wrote and checked (the
    indexer's snapshot, when its digest is the one recorded). entries: id -> Offer or JSON form, in order.

    `from_snapshot` does not even parse the snapshot: each card's JSON is parsed on first access
    from its byte range in the file (assistant.derived.encode_snapshot), and the file's bytes are
    released once every card is validated."""

    def __init__(self, entries: Mapping[str, Offer | dict]):
        self._ids = list(entries)
        self._offers: dict[str, Offer] = {i: e for i, e in entries.items() if isinstance(e, Offer)}
        # JSON forms, or byte ranges in self._raw (from_snapshot); dropped once validated
        self._cards: dict[str, dict | tuple[int, int]] = {i: e for i, e in entries.items() if not isinstance(e, Offer)}
        self._raw: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_snapshot(cls, raw: bytes, spans: Mapping[str, tuple[int, int]]) -> OfferTable:
        """raw: a snapshot file's bytes; spans: id -> (start, end) of each card's JSON object in it, in order."""
        table = cls({})
        table._ids, table._cards, table._raw = list(spans), dict(spans), raw
        return table

    def __getitem__(self, offer_id: str) -> Offer:
        offer = self._offers.get(offer_id)
        if offer is None:
            with self._lock:
                offer = self._offers.get(offer_id)
                if offer is None:
                    card = self._cards.pop(offer_id)
                    if isinstance(card, tuple):
                        card = json.loads(self._raw[card[0]:card[1]])
                    offer = self._offers[offer_id] = Offer.model_validate(card)
                    if not self._cards:
                        self._raw = None
        return offer

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, offer_id: object) -> bool:
        return offer_id in self._offers or offer_id in self._cards

    def validate_all(self) -> None:
        """Validate every card not validated yet (the server does it in the background once ready)."""
        for offer_id in self._ids:
            self[offer_id]
