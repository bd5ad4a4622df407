"""Request and response bodies of the public API (names are part of the contract with integrators)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from assistant.json_types import json_number
from assistant.profile import Profile
from assistant.schema import Audience, Partner, Status

CONVERSATION_ID = r"^[A-Za-z0-9_-]{8,64}$"
MAX_MESSAGE_ID = 2_147_483_647  # turn numbers are 32-bit integers in SQL
MAX_SEARCH_LIMIT = 50


def bounded_int(low: int, high: int):
    """An integer of a request body in [low, high], JSON numbers only (assistant.json_types).

    The bounds come before the validator: after it, or on `JsonInt | None`, they reach the
    OpenAPI schema as a raw « ge » instead of « minimum » (schemathesis then sends 0)."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(json_number)]


# A question has at least one visible character: not white space, not a control character, not a BOM.
# The class means the same in Python's `re` and in the ECMA regexes of JSON Schema, so the OpenAPI
# spec (api/openapi.py) states exactly the check made by message_text.
VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f\ufeff]"


class InvalidMessage(ValueError):
    """A question the API refuses with 422; str() is the French message shown to the asker."""


def message_text(message: str, limit: int) -> str:
    """The question without surrounding blanks; InvalidMessage when it is blank or longer than
    `limit` characters. Plain (no web framework): `aiguillage ask` checks a question with it too."""
    text = message.strip()
    if not re.search(VISIBLE, text):
        raise InvalidMessage("Le message est vide : posez votre question en quelques mots.")
    if len(text) > limit:
        raise InvalidMessage(f"Le message est trop long ({len(text)} caractères, {limit} au maximum).")
    return text


MessageId = bounded_int(1, MAX_MESSAGE_ID)  # a turn number
SearchLimit = bounded_int(1, MAX_SEARCH_LIMIT)  # results asked of /v1/search


MAX_INSEE_CHARS = 20  # longer is not a code someone mistyped: refused (422)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(description="Question de l'usager, en français.")
    conversation_id: str | None = Field(
        None, pattern=CONVERSATION_ID,
        description="Identifiant rendu par le serveur à la première réponse ; absent pour une nouvelle conversation. "
        "Un identifiant inconnu du serveur est refusé (404).",
    )
    profile: Profile | None = Field(None, description="Profil connu d'avance (ex. widget d'une commune).")
    insee: str | None = Field(
        None, max_length=MAX_INSEE_CHARS,
        description="Code INSEE de la commune hôte (ex. « 15187 ») ; un code qui ne désigne aucune commune connue "
        "n'arrête pas la question : la réponse commence par un avertissement qui le cite et ne tient pas compte du territoire.",
    )
    format: Literal["markdown", "text", "cited"] = Field(
        "markdown",
        description="Forme du texte `answer` : `markdown` (citations en liens sur le nom des offres), `text` (texte "
        "brut, sans balisage ni adresse), `cited` (citations sous la forme `[identifiant]`, à relier au champ "
        "`citations`).",
    )


class Eligibility(BaseModel):
    status: Literal["eligible", "ineligible", "unknown"]
    met: list[str]
    failed: list[str]
    missing: list[str]
    free: bool | None
    for_residents: bool = Field(False, description="Aide destinée aux habitants, pas à la collectivité.")


class ContactOut(BaseModel):
    name: str
    url: str | None = None
    phone: str | None = None


class FigureOut(BaseModel):
    label: str
    value: str
    to_confirm: bool = False


class ReferralOut(BaseModel):
    offer_id: str
    partner: str
    title: str
    score: float
    reasons: list[str]
    url: str
    status: str
    eligibility: Eligibility
    how_to_start: list[str]
    contact: ContactOut
    summary: str
    fit: str = Field("", description="Éligibilité en quelques mots (« vous semblez éligible », « à vérifier : … »).")
    entry_point: str = Field("", description="Porte d'entrée décrite par la fiche (qui saisir, pour quoi).")
    figures: list[FigureOut] = Field(default_factory=list, description="Repères chiffrés de la fiche.")
    status_note: str | None = None


class Citation(BaseModel):
    offer_id: str
    title: str
    url: str


class QuickReply(BaseModel):
    label: str
    value: str


class ClarificationOut(BaseModel):
    question: str
    options: list[QuickReply]


class DoorOut(BaseModel):
    signpost_id: str = Field(description="Identifiant de la fiche porte (corpus/signposts/), ex. porte-drac.")
    body: str = Field(description="L'organisme compétent hors partenaires (DRAC, ARS, CAF…).")
    local: str | None = Field(None, description="L'organisme du territoire du demandeur, quand il est connu.")
    covers: str
    how_to_find: str
    url: str


class ChatResponse(BaseModel):
    conversation_id: str
    message_id: int
    kind: Literal["answer", "clarification", "refusal", "no_match"]
    answer: str = Field(description="Réponse, sous la forme demandée par `format`.")
    follow_up: bool = Field(
        False, description="Réponse courte à une relance sur les offres déjà montrées : ne pas réafficher leurs fiches."
    )
    generator: Literal["grounded", "llm"]
    fallback_reason: str | None = None
    referrals: list[ReferralOut]
    not_eligible: list[ReferralOut]
    citations: list[Citation]
    clarification: ClarificationOut | None = None
    profile: Profile
    doors: list[DoorOut] = Field(
        default_factory=list,
        description="Organismes compétents hors des partenaires (fiches porte) : seuls quand rien ne convient, ou à côté des offres.",
    )
    catalogue: dict | None = Field(
        None,
        description="Aides du catalogue national (Aides-territoires) montrées après les offres : `source`, `synced_on`, "
        "`territory_known`, `aids` (titre, lien, porteurs, bénéficiaires, types, périmètre, date limite, éligibilité) et "
        "`hidden` (aides masquées derrière une fiche qui décrit la même offre, avec la raison). Absent sans catalogue.",
    )


class SearchFiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner: list[Partner] = Field(default_factory=list)
    theme: list[str] = Field(default_factory=list)
    audience: list[Audience] = Field(default_factory=list)
    status: list[Status] = Field(default_factory=list)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    filters: SearchFiltersIn = Field(default_factory=SearchFiltersIn)
    limit: SearchLimit = 10


class SearchResult(BaseModel):
    offer_id: str
    partner: str
    title: str
    summary: str
    status: str
    url: str
    score: float
    bm25_rank: int | None
    dense_rank: int | None
    bm25_score: float
    dense_similarity: float
    best_passage: str | None


class SearchResponse(BaseModel):
    results: list[SearchResult]


class OfferPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[dict]
