"""Load and validate corpus/: a bad card is reported with its file, field and reason, never half-loaded."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ValidationError

from assistant.schema import Offer, OfferTable, PartnerCard, Signpost, ThemeVocabulary

MIN_DESCRIPTION_WORDS = 120
STALE_AFTER_DAYS = 365
ENDED_GRACE_DAYS = 183  # a card whose period ended more than six months ago must have been re-checked
TO_CONFIRM = "à confirmer"


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
    offers: Mapping[str, Offer]  # a dict, or an OfferTable when load_corpus had trusted cards
    partners: dict[str, PartnerCard]
    themes: ThemeVocabulary
    offer_paths: dict[str, Path] = field(default_factory=dict)
    signposts: dict[str, Signpost] = field(default_factory=dict)
    signpost_paths: dict[str, Path] = field(default_factory=dict)
    ended: dict[str, dt.date] = field(default_factory=dict)  # active offer id → end of its period, when past
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, offer_id: str) -> str | None:
        """The current id of an offer, following the ids of merged cards (old links keep working)."""
        if offer_id in self.offers:
            return offer_id
        return self.aliases.get(offer_id)

    def offer_hash(self, offer_id: str) -> str:
        return content_hash(self.offers[offer_id])

    def signature(self) -> str:
        """Changes whenever any card changes: readiness compares it with the index."""
        return signature_of({offer_id: self.offer_hash(offer_id) for offer_id in self.offers})


def signature_of(hashes: Mapping[str, str]) -> str:
    """The corpus signature from its cards' content hashes (offer id -> content_hash)."""
    digest = hashlib.sha256()
    for offer_id in sorted(hashes):
        digest.update(offer_id.encode())
        digest.update(hashes[offer_id].encode())
    return digest.hexdigest()[:16]


def content_hash(model: BaseModel) -> str:
    payload = json.dumps(model.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _read_yaml(path: Path, problems: list[Problem]) -> object | None:
    try:
        # The C loader (libyaml, shipped in PyYAML's wheels) parses a card ~8x faster than the pure-Python one.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
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


def resolve_offer(offers: dict[str, Offer], offer_id: str) -> Offer | None:
    """The offer with this id, or the card it was merged into (its `former_ids`); None if neither."""
    if offer_id in offers:
        return offers[offer_id]
    return next((o for o in offers.values() if offer_id in o.former_ids), None)


def period_end(end: str | None) -> dt.date | None:
    """Last day a partial date covers: '2025' → 2025-12-31, '2026-06' → 2026-06-30."""
    if not end:
        return None
    parts = [int(x) for x in end.split("-")]
    if len(parts) == 1:
        return dt.date(parts[0], 12, 31)
    if len(parts) == 2:
        following = dt.date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
        return following - dt.timedelta(days=1)
    return dt.date(*parts)


MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


def _fr_date(day: dt.date) -> str:
    return f"{'1er' if day.day == 1 else day.day} {MONTHS[day.month - 1]} {day.year}"


def _mark_ended(offer: Offer, today: dt.date) -> tuple[Offer, dt.date | None]:
    """An active offer whose period is over says so: its status note becomes « à confirmer »."""
    end = period_end(offer.period.end)
    if offer.status != "active" or end is None or end >= today:
        return offer, None
    note = f"La période annoncée s'est achevée le {_fr_date(end)} : la suite du dispositif est {TO_CONFIRM}."
    if offer.status_note and TO_CONFIRM not in offer.status_note:
        note = f"{note} {offer.status_note}"
    elif offer.status_note:
        note = offer.status_note
    return offer.model_copy(update={"status_note": note}), end


def yaml_entries(folder: str | Path) -> list[os.DirEntry]:
    """The *.yaml entries of a folder (none when it does not exist), unsorted: os.scandir, no Path each."""
    try:
        with os.scandir(folder) as found:
            return [entry for entry in found if entry.name.endswith(".yaml")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def card_entries(corpus_dir: Path) -> list[tuple[str, os.DirEntry]]:
    """(partner folder, entry) of every offer card, offers/*/*.yaml, in the order of their sorted Paths
    (by folder, then file name): at 10,600 cards ≈ 0.02 s of CPU, a glob of Paths ≈ 0.2 s."""
    try:
        with os.scandir(os.path.join(corpus_dir, "offers")) as found:
            partners = sorted(entry.name for entry in found if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    root = os.path.join(corpus_dir, "offers")
    return [(partner, entry) for partner in partners
            for entry in sorted(yaml_entries(os.path.join(root, partner)), key=lambda e: e.name)]


def load_corpus(corpus_dir: Path, today: dt.date | None = None, reuse: Mapping[str, Offer] | None = None,
                trusted: Mapping[str, dict] | None = None) -> Corpus:
    """Every card or nothing: CorpusError lists all problems so an editor fixes them in one pass.

    An active offer whose period ended before `today` gets « à confirmer » in its status note, and
    is listed in `Corpus.ended`; merged cards' old ids resolve through `Corpus.aliases`.
    reuse: already-validated offers by path relative to corpus_dir ("offers/anct/x.yaml") for files
    known unchanged since they were read (the indexer's snapshot); they are not parsed again but go
    through the same checks (marking an ended period is idempotent).
    trusted: JSON forms of cards by relative path, for files unchanged since a snapshot written and
    checked *today* with the same themes.yaml (the indexer's, whose digest matches): neither parsed
    nor validated nor checked again (they passed these checks, and their periods were marked today),
    only their ids and former ids take part in the checks of the others. `Corpus.offers` is then an
    OfferTable that validates them on first access (the indexer touches only the changed ones).
    """
    today = today or dt.date.today()
    reuse = reuse or {}
    trusted = trusted or {}
    problems: list[Problem] = []
    themes_path = corpus_dir / "themes.yaml"
    if not themes_path.exists():
        raise CorpusError([Problem(str(themes_path), "(fichier)", "vocabulaire des thèmes introuvable")])
    themes = _validate(ThemeVocabulary, themes_path, problems)
    known_themes = {t.id for t in themes.themes} if themes else set()

    offers: dict[str, Offer] = {}
    paths: dict[str, Path] = {}
    ended: dict[str, dt.date] = {}
    aliases: dict[str, str] = {}
    offer_files = card_entries(corpus_dir)
    if not offer_files:
        problems.append(Problem(str(corpus_dir / "offers"), "(dossier)", "aucune carte d'offre"))
    entries: dict[str, Offer | dict] = {}
    for partner, entry in offer_files:
        relative, path = f"offers/{partner}/{entry.name}", Path(entry.path)
        card = trusted.get(relative)
        if card is not None:
            if card["id"] in paths:
                problems.append(Problem(str(path), "id", f"identifiant déjà utilisé par {paths[card['id']]}"))
            entries[card["id"]], paths[card["id"]] = card, path
            end = period_end((card.get("period") or {}).get("end"))
            if card.get("status") == "active" and end is not None and end < today:
                ended[card["id"]] = end
            for old_id in card.get("former_ids", ()):
                aliases[old_id] = card["id"]
            continue
        offer = reuse.get(relative) or _validate(Offer, path, problems)
        if offer is None:
            continue
        if offer.partner != path.parent.name:
            problems.append(Problem(str(path), "partner", f"« {offer.partner} » mais rangée sous {path.parent.name}/"))
        _check_card(offer, path, known_themes, paths, problems)
        offer, end = _mark_ended(offer, today)
        if end is not None:
            ended[offer.id] = end
        offers[offer.id] = entries[offer.id] = offer
        paths[offer.id] = path
        for old_id in offer.former_ids:
            aliases[old_id] = offer.id

    partners: dict[str, PartnerCard] = {}
    for path in sorted((corpus_dir / "partners").glob("*.yaml")):
        card = _validate(PartnerCard, path, problems)
        if card is not None:
            partners[card.id] = card

    if trusted:
        offers = OfferTable(entries)
    signposts, signpost_paths = _load_signposts(corpus_dir, known_themes, set(offers), problems)
    for old_id, new_id in aliases.items():
        if old_id in offers:
            problems.append(Problem(str(paths[new_id]), "former_ids", f"« {old_id} » est encore une carte à part entière"))

    if problems or themes is None:
        raise CorpusError(problems)
    return Corpus(
        offers=offers, partners=partners, themes=themes, offer_paths=paths,
        signposts=signposts, signpost_paths=signpost_paths, ended=ended, aliases=aliases,
    )


def _check_card(card: Offer | Signpost, path: Path, known_themes: set[str], seen: dict[str, Path],
                problems: list[Problem]) -> None:
    """Checks shared by offers and signposts: id = file name, known themes, unique id."""
    if card.id != path.stem:
        problems.append(Problem(str(path), "id", f"« {card.id} » ne correspond pas au nom du fichier"))
    for theme in card.themes:
        if theme not in known_themes:
            problems.append(Problem(str(path), "themes", f"thème inconnu « {theme} »"))
    event = getattr(getattr(card, "eligibility", None), "event", None)
    for theme in event.themes if event else []:
        if theme not in known_themes:
            problems.append(Problem(str(path), "eligibility.event.themes", f"thème inconnu « {theme} »"))
    if card.id in seen:
        problems.append(Problem(str(path), "id", f"identifiant déjà utilisé par {seen[card.id]}"))


def load_signposts(corpus_dir: Path, themes: ThemeVocabulary, offer_ids: set[str]) -> dict[str, Signpost]:
    """corpus/signposts/ alone (id -> Signpost), checked as load_corpus checks them; CorpusError if any is invalid."""
    problems: list[Problem] = []
    signposts, _ = _load_signposts(corpus_dir, {t.id for t in themes.themes}, offer_ids, problems)
    if problems:
        raise CorpusError(problems)
    return signposts


def _load_signposts(
    corpus_dir: Path, known_themes: set[str], offer_ids: set[str], problems: list[Problem]
) -> tuple[dict[str, Signpost], dict[str, Path]]:
    """corpus/signposts/<id>.yaml: the doors outside the partners (optional folder)."""
    signposts: dict[str, Signpost] = {}
    paths: dict[str, Path] = {}
    for path in sorted((corpus_dir / "signposts").glob("*.yaml")):
        card = _validate(Signpost, path, problems)
        if card is None:
            continue
        _check_card(card, path, known_themes, paths, problems)
        for offer_id in card.complements:
            if offer_id not in offer_ids:
                problems.append(Problem(str(path), "complements", f"offre inconnue « {offer_id} »"))
        signposts[card.id] = card
        paths[card.id] = path
    for card_id, card in signposts.items():
        if card.beside is not None and card.beside not in signposts:
            problems.append(Problem(str(paths[card_id]), "beside", f"porte inconnue « {card.beside} »"))
    return signposts, paths


# Parliamentary pages (reports, written questions) state facts about an offer; they are not its page.
PARLIAMENT_DOMAINS = ("senat.fr", "assemblee-nationale.fr", "publicsenat.fr")


def source_problems(offer: Offer, path: str, partner_site: str | None = None) -> list[Problem]:
    """Sources a reader can click through to the offer: a bare home page (empty path or « / », no query) names a
    body, not the offer, and is rejected — unless it is the card's own online service (its access.url,
    e.g. a platform whose home page is the service). The first source is the widget's « Page officielle »
    (Offer.url): it is not a parliamentary page when the card cites another, and it is on the partner's
    own site (`partner_site`, its card's website) when the card cites a page there (not its home page), unless it is on the
    offer's own online service (access.url's site). Source: issue 12,
    « Sources you can click »."""
    service = str(offer.access.url).rstrip("/") if offer.access.url else None
    urls = list(map(str, offer.source_urls))
    problems = [
        Problem(path, "source_urls", f"page d'accueil « {url} » : citer la page de l'offre elle-même")
        for url in urls
        if _is_home_page(url) and url.rstrip("/") != service
    ]
    hosts = [urlsplit(url).hostname or "" for url in urls]
    own = _registered(urlsplit(partner_site).hostname or "") if partner_site else None
    if _on(hosts[0], PARLIAMENT_DOMAINS) and not all(_on(h, PARLIAMENT_DOMAINS) for h in hosts):
        problems.append(Problem(path, "source_urls", f"« Page officielle » au Parlement ({hosts[0]}) : "
                                "citer d'abord la page de l'offre chez l'organisme qui la porte"))
    elif (own and not _on(hosts[0], (own,)) and any(_on(h, (own,)) and not _is_home_page(u) for h, u in zip(hosts, urls))
          and hosts[0] != (urlsplit(service).hostname if service else None)):  # the offer's own platform is its page
        problems.append(Problem(path, "source_urls", f"« Page officielle » hors du site de l'organisme ({hosts[0]}) : "
                                f"citer d'abord la page de l'offre sur {own}"))
    return problems


def _registered(host: str) -> str:
    """The host without its « www. » (cerema.fr, anah.gouv.fr): its subdomains are the same site."""
    return host.removeprefix("www.")


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


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
        partner = corpus.partners.get(offer.partner)
        errors.extend(source_problems(offer, path, str(partner.website) if partner else None))
        if (today - offer.last_verified).days > STALE_AFTER_DAYS:
            warnings.append(Problem(path, "last_verified", f"non vérifiée depuis le {offer.last_verified}"))
        if offer.status != "active" and not (offer.period.end or offer.status_note):
            errors.append(Problem(path, "status", "offre close ou historique sans date de fin ni explication"))
        end = corpus.ended.get(offer_id)
        if end is not None and (today - end).days > ENDED_GRACE_DAYS and offer.last_verified <= end:
            errors.append(Problem(path, "status", f"période terminée le {end} et fiche non revue depuis : mettre le statut à jour"))
    for signpost_id, signpost in corpus.signposts.items():
        if (today - signpost.last_verified).days > STALE_AFTER_DAYS:
            path = str(corpus.signpost_paths.get(signpost_id, signpost_id))
            warnings.append(Problem(path, "last_verified", f"non vérifiée depuis le {signpost.last_verified}"))
    for theme_id in uncovered_themes(corpus):
        warnings.append(Problem("themes.yaml", theme_id, "aucune offre ni porte d'entrée pour ce thème"))
    for partner in corpus.partners.values():
        if partner.id not in {o.partner for o in corpus.offers.values()} and partner.id != "etat":
            warnings.append(Problem(f"partners/{partner.id}.yaml", "id", "aucune offre pour ce partenaire"))
    return errors, warnings


def uncovered_themes(corpus: Corpus) -> list[str]:
    """Needs the corpus cannot serve: themes carried by no offer and no signpost."""
    used = {t for o in corpus.offers.values() for t in o.themes} | {t for s in corpus.signposts.values() for t in s.themes}
    return [t.id for t in corpus.themes.themes if t.id not in used]
