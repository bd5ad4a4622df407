"""Load and validate corpus/: a bad card is reported with its file, field and reason, never half-loaded."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ValidationError

from assistant.schema import Offer, PartnerCard, ThemeVocabulary

MIN_DESCRIPTION_WORDS = 120
STALE_AFTER_DAYS = 365


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} — {self.field} : {self.reason}"


class CorpusError(Exception):
    """Raised when the corpus cannot be indexed; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Corpus:
    offers: dict[str, Offer]
    partners: dict[str, PartnerCard]
    themes: ThemeVocabulary
    offer_paths: dict[str, Path] = field(default_factory=dict)

    def offer_hash(self, offer_id: str) -> str:
        return content_hash(self.offers[offer_id])

    def signature(self) -> str:
        """Changes whenever any card changes: readiness compares it with the index."""
        digest = hashlib.sha256()
        for offer_id in sorted(self.offers):
            digest.update(offer_id.encode())
            digest.update(self.offer_hash(offer_id).encode())
        return digest.hexdigest()[:16]


def content_hash(model: BaseModel) -> str:
    payload = json.dumps(model.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _read_yaml(path: Path, problems: list[Problem]) -> object | None:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), "(fichier)", f"YAML illisible : {exc}"))
        return None


def _validate(model: type[BaseModel], path: Path, problems: list[Problem]) -> BaseModel | None:
    data = _read_yaml(path, problems)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "(carte)"
            problems.append(Problem(str(path), location, error["msg"]))
        return None


def load_themes(corpus_dir: Path) -> ThemeVocabulary:
    problems: list[Problem] = []
    themes = _validate(ThemeVocabulary, corpus_dir / "themes.yaml", problems)
    if problems or themes is None:
        raise CorpusError(problems)
    return themes


def load_corpus(corpus_dir: Path) -> Corpus:
    """Every card or nothing: CorpusError lists all problems so an editor fixes them in one pass."""
    problems: list[Problem] = []
    themes_path = corpus_dir / "themes.yaml"
    if not themes_path.exists():
        raise CorpusError([Problem(str(themes_path), "(fichier)", "vocabulaire des thèmes introuvable")])
    themes = _validate(ThemeVocabulary, themes_path, problems)
    known_themes = {t.id for t in themes.themes} if themes else set()

    offers: dict[str, Offer] = {}
    paths: dict[str, Path] = {}
    offer_files = sorted((corpus_dir / "offers").glob("*/*.yaml"))
    if not offer_files:
        problems.append(Problem(str(corpus_dir / "offers"), "(dossier)", "aucune carte d'offre"))
    for path in offer_files:
        offer = _validate(Offer, path, problems)
        if offer is None:
            continue
        if offer.partner != path.parent.name:
            problems.append(Problem(str(path), "partner", f"« {offer.partner} » mais rangée sous {path.parent.name}/"))
        if offer.id != path.stem:
            problems.append(Problem(str(path), "id", f"« {offer.id} » ne correspond pas au nom du fichier"))
        for theme in offer.themes:
            if theme not in known_themes:
                problems.append(Problem(str(path), "themes", f"thème inconnu « {theme} »"))
        if offer.id in offers:
            problems.append(Problem(str(path), "id", f"identifiant déjà utilisé par {paths[offer.id]}"))
        offers[offer.id] = offer
        paths[offer.id] = path

    partners: dict[str, PartnerCard] = {}
    for path in sorted((corpus_dir / "partners").glob("*.yaml")):
        card = _validate(PartnerCard, path, problems)
        if card is not None:
            partners[card.id] = card

    if problems or themes is None:
        raise CorpusError(problems)
    return Corpus(offers=offers, partners=partners, themes=themes, offer_paths=paths)


def source_problems(offer: Offer, path: str) -> list[Problem]:
    """Sources a reader can click through to the offer: a bare home page (empty path or « / », no query) names a
    body, not the offer, and is rejected — unless it is the card's own online service (its access.url,
    e.g. a platform whose home page is the service). Source: issue 12, « Sources you can click »."""
    service = str(offer.access.url).rstrip("/") if offer.access.url else None
    return [
        Problem(path, "source_urls", f"page d'accueil « {url} » : citer la page de l'offre elle-même")
        for url in map(str, offer.source_urls)
        if _is_home_page(url) and url.rstrip("/") != service
    ]


def _is_home_page(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def quality_warnings(corpus: Corpus, today: dt.date | None = None) -> tuple[list[Problem], list[Problem]]:
    """Editorial checks beyond the schema: (errors, warnings)."""
    today = today or dt.date.today()
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for offer_id, offer in corpus.offers.items():
        path = str(corpus.offer_paths.get(offer_id, offer_id))
        words = len(offer.description.split())
        if words < MIN_DESCRIPTION_WORDS:
            errors.append(Problem(path, "description", f"{words} mots, {MIN_DESCRIPTION_WORDS} attendus au moins"))
        errors.extend(source_problems(offer, path))
        if (today - offer.last_verified).days > STALE_AFTER_DAYS:
            warnings.append(Problem(path, "last_verified", f"non vérifiée depuis le {offer.last_verified}"))
        if offer.status != "active" and not (offer.period.end or offer.status_note):
            errors.append(Problem(path, "status", "offre close ou historique sans date de fin ni explication"))
    for partner in corpus.partners.values():
        if partner.id not in {o.partner for o in corpus.offers.values()} and partner.id != "etat":
            warnings.append(Problem(f"partners/{partner.id}.yaml", "id", "aucune offre pour ce partenaire"))
    return errors, warnings
