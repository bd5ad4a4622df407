"""Concrete contacts per territory: reads corpus/contacts/ and answers "whom to call, here".

corpus/contacts/ holds one YAML file per région (``84-auvergne-rhone-alpes.yaml``: the three regional
offices, then every département with its prefecture and its Anah local delegation) and ``national.yaml``
(national entry points). Files are validated with pydantic; a bad file raises ContactDataError naming
the file and the field.

When corpus/territoires/ sits beside contacts/, the directory also knows each commune's arrondissement
(INSEE, via @etalab/decoupage-administratif): the State office for a commune is then the sous-préfecture
of its arrondissement beside the préfecture, or the préfecture itself for the arrondissement whose seat
is the préfecture's town.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from assistant.schema import ContactKind, Offer, Partner

DEPARTEMENTAL_KINDS = frozenset({ContactKind.prefecture, ContactKind.anah_local})
REGIONAL_KINDS = frozenset(
    {ContactKind.ademe_regional, ContactKind.bdt_regional, ContactKind.cerema_territorial}
)
NATIONAL_KINDS = frozenset({ContactKind.territoires_conseils, ContactKind.online})

# Partner behind each territorial kind; national entries name theirs explicitly.
KIND_PARTNER: dict[ContactKind, Partner] = {
    ContactKind.prefecture: Partner.etat,
    ContactKind.anah_local: Partner.anah,
    ContactKind.ademe_regional: Partner.ademe,
    ContactKind.bdt_regional: Partner.banque_des_territoires,
    ContactKind.cerema_territorial: Partner.cerema,
}

PREFECTURE_BODY = "Préfecture"  # a signpost whose body is the préfecture names the département's own
SOUS_PREFECTURE = "sous-prefecture"  # a Contact.kind of its own, never an offer's access kind
NATIONAL_FILE = "national.yaml"
WATER_FILE = "agences-de-l-eau.yaml"
REGION_FILE = re.compile(r"^(?P<code>\d{2})-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.yaml$")
# INSEE département codes: 01-95 without 20, Corsica 2A/2B, overseas 971-976.
DEPARTEMENT_CODE = r"^(?:0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-6])$"
REGION_CODE = r"^\d{2}$"

_HTTP_URL = TypeAdapter(HttpUrl)


def _valid_url(value: str) -> str:
    _HTTP_URL.validate_python(value)
    return value  # keep the string as written (HttpUrl would append a trailing slash)


Url = Annotated[str, AfterValidator(_valid_url)]
Name = Annotated[str, Field(min_length=3)]
Note = Annotated[str, Field(min_length=3)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .]{5,}[0-9]$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]


class ContactDataError(ValueError):
    """A file of corpus/contacts/ is malformed or inconsistent with the others."""


@dataclass(frozen=True, slots=True)
class Contact:
    kind: str  # a ContactKind value
    name: str
    url: str | None = None
    note: str | None = None
    phone: str | None = None
    email: str | None = None
    partner: str | None = None  # a Partner value


@dataclass(frozen=True, slots=True)
class Arrondissement:
    """An arrondissement (INSEE code '012', '9711'): its name and the INSEE code and name of its seat."""

    code: str
    name: str
    departement: str
    seat: str
    seat_name: str


# --- file models -------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Office(_Strict):
    """A département-level office: prefecture or Anah local delegation."""

    name: Name
    url: Url | None = None
    note: Note | None = None


def _kind_within(allowed: frozenset | set, scope: str):
    """A field validator that keeps a contact kind within one scope (regional, national)."""

    def check(cls, kind: ContactKind) -> ContactKind:
        if kind not in allowed:
            names = ", ".join(sorted(k.value for k in allowed))
            raise ValueError(f"'{kind.value}' is not a {scope} kind (expected one of: {names})")
        return kind

    return field_validator("kind")(classmethod(check))


class RegionalContact(_Strict):
    kind: ContactKind
    name: Name
    url: Url | None = None
    note: Note | None = None

    _regional = _kind_within(REGIONAL_KINDS, "regional")


class Departement(_Strict):
    code: str = Field(pattern=DEPARTEMENT_CODE)
    name: Name
    prefecture: Office
    anah: Office


class RegionRef(_Strict):
    code: str = Field(pattern=REGION_CODE)
    name: Name


class RegionFile(_Strict):
    region: RegionRef
    last_verified: dt.date | None = None
    contacts: list[RegionalContact]
    departements: list[Departement] = Field(min_length=1)
    sources: list[Url] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> RegionFile:
        kinds = [contact.kind for contact in self.contacts]
        missing = sorted(k.value for k in REGIONAL_KINDS - set(kinds))
        if missing:
            raise ValueError(f"contacts: missing regional kind(s): {', '.join(missing)}")
        duplicated = sorted({k.value for k in kinds if kinds.count(k) > 1})
        if duplicated:
            raise ValueError(f"contacts: kind(s) listed twice: {', '.join(duplicated)}")
        codes = [d.code for d in self.departements]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"departements: code(s) listed twice: {', '.join(twice)}")
        return self


class NationalContact(_Strict):
    kind: ContactKind
    partner: Partner
    name: Name
    url: Url | None = None
    phone: Phone | None = None
    email: Email | None = None
    note: Note | None = None

    _national = _kind_within(NATIONAL_KINDS, "national")


class NationalFile(_Strict):
    last_verified: dt.date | None = None
    contacts: list[NationalContact] = Field(min_length=1)
    sources: list[Url] = Field(default_factory=list)


class WaterAgencies(_Strict):
    """agences-de-l-eau.yaml: the six agencies and, per département, those its communes belong to."""

    last_verified: dt.date | None = None
    agences: dict[str, Name] = Field(min_length=1)
    departements: dict[str, list[str]] = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> WaterAgencies:
        for code, agencies in self.departements.items():
            if not re.match(DEPARTEMENT_CODE, code):
                raise ValueError(f"departements: '{code}' is not a département code")
            unknown = sorted(set(agencies) - set(self.agences))
            if unknown or not agencies:
                raise ValueError(f"departements.{code}: unknown or missing agence(s) {unknown}")
        return self


# --- loading helpers ---------------------------------------------------------------------------


def slugify(text: str) -> str:
    """'Provence-Alpes-Côte d'Azur' -> 'provence-alpes-cote-dazur' (file-name form)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['’]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def _read_yaml(path: Path) -> Any:
    try:
        # The C loader (libyaml, in PyYAML's wheels): the contact files parse ~5x faster than with
        # the pure-Python loader (≈ 0.2 s of the server's start-up).
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise ContactDataError(f"{path}: invalid YAML: {exc}") from exc


def _field_path(loc: Iterable[Any], raw: Any) -> str:
    """Dotted location; list items under departements also show their code when it is readable."""
    parts: list[str] = []
    node = raw
    for item in loc:
        label = str(item)
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            code = node.get("code") if isinstance(node, dict) else None
            if code is not None:
                label = f"{item}[{code}]"
        elif isinstance(node, dict):
            node = node.get(item)
        else:
            node = None
        parts.append(label)
    return ".".join(parts) or "(root)"


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], raw: Any, path: Path) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid contact data ({exc.error_count()} error(s))"]
        for err in exc.errors():
            lines.append(f"  {_field_path(err['loc'], raw)}: {err['msg']}")
        raise ContactDataError("\n".join(lines)) from exc


def of_place(name: str) -> str:
    """French 'de' before a place name: 'Belley' -> 'de Belley', 'Aix' -> "d'Aix", 'Le Raincy' -> 'du Raincy'."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if unicodedata.normalize("NFD", name[:1])[:1].upper() in "AEIOUY":
        return "d'" + name
    return "de " + name


def _read_arrondissements(folder: Path) -> tuple[dict[str, Arrondissement], dict[str, str], dict[str, str]]:
    """(arrondissements by code, arrondissement code by commune, préfecture seat by département) from
    corpus/territoires/ (files written by ingest/territories.py); empty when the folder is absent."""
    arr_path, dep_path = folder / "arrondissements.json.gz", folder / "departements.json"
    if not arr_path.is_file() or not dep_path.is_file():
        return {}, {}, {}
    try:
        rows = json.loads(gzip.decompress(arr_path.read_bytes()))["arrondissements"]
        deps = json.loads(dep_path.read_text(encoding="utf-8"))
        arrondissements = {
            r["code"]: Arrondissement(r["code"], r["nom"], r["dep"], r["chef_lieu"], r["chef_lieu_nom"]) for r in rows
        }
        commune_arr = {member: r["code"] for r in rows for member in r["membres"]}
        seats = {d["code"]: d["chef_lieu"] for d in deps if d.get("chef_lieu")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContactDataError(f"{folder}: unreadable territory tables ({exc}); rebuild them") from exc
    return arrondissements, commune_arr, seats


def normalize_departement_code(code: str | int | None) -> str | None:
    if code is None:
        return None
    text = str(code).strip().upper()
    return text.zfill(2) if text.isdigit() and len(text) < 2 else text or None


def normalize_region_code(code: str | int | None) -> str | None:
    if code is None:
        return None
    text = str(code).strip()
    return text.zfill(2) if text.isdigit() and len(text) < 2 else text or None


# --- directory ---------------------------------------------------------------------------------


class ContactDirectory:
    """Every concrete contact of corpus/contacts/, looked up by kind and territory."""

    def __init__(
        self,
        regions: dict[str, RegionFile],
        national: NationalFile,
        source_files: dict[str, Path] | None = None,
        arrondissements: tuple[dict[str, Arrondissement], dict[str, str], dict[str, str]] = ({}, {}, {}),
        water: WaterAgencies | None = None,
    ) -> None:
        self._water = water
        self._arrondissements, self._commune_arr, self._prefecture_seat = arrondissements
        self._region_names = {code: region.region.name for code, region in regions.items()}
        self._region_of: dict[str, str] = {}
        self._departement_names: dict[str, str] = {}
        self._departemental: dict[tuple[ContactKind, str], Contact] = {}
        self._regional: dict[tuple[ContactKind, str], Contact] = {}
        for code, region in regions.items():
            for contact in region.contacts:
                self._regional[(contact.kind, code)] = Contact(
                    kind=contact.kind.value,
                    name=contact.name,
                    url=contact.url,
                    note=contact.note,
                    partner=KIND_PARTNER[contact.kind].value,
                )
            for dep in region.departements:
                self._region_of[dep.code] = code
                self._departement_names[dep.code] = dep.name
                offices = ((ContactKind.prefecture, dep.prefecture), (ContactKind.anah_local, dep.anah))
                for kind, office in offices:
                    self._departemental[(kind, dep.code)] = Contact(
                        kind=kind.value,
                        name=office.name,
                        url=office.url,
                        note=office.note,
                        partner=KIND_PARTNER[kind].value,
                    )
        self._national = [
            Contact(
                kind=c.kind.value,
                name=c.name,
                url=c.url,
                note=c.note,
                phone=c.phone,
                email=c.email,
                partner=c.partner.value,
            )
            for c in national.contacts
        ]
        self.source_files = dict(source_files or {})

    @classmethod
    def load(cls, corpus_dir: Path) -> ContactDirectory:
        """Load `corpus_dir/contacts/` (or `corpus_dir` itself when it is the contacts folder)."""
        corpus_dir = Path(corpus_dir)
        folder = corpus_dir / "contacts" if (corpus_dir / "contacts").is_dir() else corpus_dir
        national_path = folder / NATIONAL_FILE
        if not national_path.is_file():
            raise ContactDataError(f"{national_path}: missing (national entry points)")
        national = _validate(NationalFile, _read_yaml(national_path), national_path)

        regions: dict[str, RegionFile] = {}
        files: dict[str, Path] = {"national": national_path}
        seen_departements: dict[str, Path] = {}
        water_path = folder / WATER_FILE
        water = _validate(WaterAgencies, _read_yaml(water_path), water_path) if water_path.is_file() else None
        for path in sorted(folder.glob("*.yaml")):
            if path.name in {NATIONAL_FILE, WATER_FILE}:
                continue
            match = REGION_FILE.match(path.name)
            if match is None:
                raise ContactDataError(
                    f"{path}: file name must be '<INSEE région code>-<slug of the région name>.yaml' "
                    f"or {NATIONAL_FILE}"
                )
            region = _validate(RegionFile, _read_yaml(path), path)
            expected = f"{region.region.code}-{slugify(region.region.name)}.yaml"
            if path.name != expected:
                raise ContactDataError(
                    f"{path}: region.code/region.name ({region.region.code}, {region.region.name}) "
                    f"do not match the file name; expected {expected}"
                )
            if region.region.code in regions:
                raise ContactDataError(
                    f"{path}: region.code {region.region.code} already defined in {files[region.region.code]}"
                )
            for dep in region.departements:
                if dep.code in seen_departements:
                    raise ContactDataError(
                        f"{path}: departements: {dep.code} already listed in {seen_departements[dep.code]}"
                    )
                seen_departements[dep.code] = path
            regions[region.region.code] = region
            files[region.region.code] = path
        if not regions:
            raise ContactDataError(f"{folder}: no région file found")
        return cls(regions, national, files, _read_arrondissements(folder.parent / "territoires"), water)

    # -- territory ---------------------------------------------------------------------------

    @property
    def region_codes(self) -> list[str]:
        return sorted(self._region_names)

    @property
    def departement_codes(self) -> list[str]:
        return sorted(self._region_of, key=lambda code: (len(code), code))

    def region_name(self, code: str | int | None) -> str | None:
        return self._region_names.get(normalize_region_code(code) or "")

    def departement_name(self, code: str | int | None) -> str | None:
        return self._departement_names.get(normalize_departement_code(code) or "")

    def region_of_departement(self, code: str | int | None) -> str | None:
        """INSEE région code of a département ('15' -> '84'), None when unknown."""
        return self._region_of.get(normalize_departement_code(code) or "")

    # -- contacts ----------------------------------------------------------------------------

    def for_territory(
        self,
        kind: str,
        departement_code: str | None = None,
        region_code: str | None = None,
        *,
        partner: str | None = None,
    ) -> Contact | None:
        """The office to contact for `kind` in that territory, or None when the territory is unknown.

        Départemental kinds (prefecture, anah-delegation-locale) need the département. Regional kinds
        use the département's région when the département is known, else `region_code`.
        National kinds ignore the territory; `partner` picks among several national entries of the same
        kind (otherwise the first one of national.yaml). An unknown `kind` raises ValueError.
        """
        contact_kind = ContactKind(kind)
        departement = normalize_departement_code(departement_code)
        if contact_kind in DEPARTEMENTAL_KINDS:
            return self._departemental.get((contact_kind, departement)) if departement else None
        if contact_kind in REGIONAL_KINDS:
            region = self.region_of_departement(departement) if departement else None
            if region is None:
                region = normalize_region_code(region_code)
            return self._regional.get((contact_kind, region)) if region else None
        matches = self.national(contact_kind.value, partner=partner)
        return matches[0] if matches else None

    def national(self, kind: str | None = None, *, partner: str | None = None) -> list[Contact]:
        """National entry points, in the order of national.yaml, optionally filtered."""
        wanted_kind = ContactKind(kind).value if kind is not None else None
        wanted_partner = Partner(partner).value if partner is not None else None
        return [
            contact
            for contact in self._national
            if (wanted_kind is None or contact.kind == wanted_kind)
            and (wanted_partner is None or contact.partner == wanted_partner)
        ]

    def for_departement(self, departement_code: str | int) -> list[Contact]:
        """Every territorial contact of a département (départemental, then regional); [] when unknown."""
        departement = normalize_departement_code(departement_code)
        region = self.region_of_departement(departement)
        if region is None:
            return []
        local = [
            self._departemental[(kind, departement)] for kind in (ContactKind.prefecture, ContactKind.anah_local)
        ]
        regional = [
            self._regional[(kind, region)]
            for kind in (ContactKind.ademe_regional, ContactKind.bdt_regional, ContactKind.cerema_territorial)
        ]
        return local + regional

    # -- communes ----------------------------------------------------------------------------

    def arrondissement_of(self, insee: str | None) -> Arrondissement | None:
        """The arrondissement of a current commune (INSEE code), None when unknown or outside any
        (Mayotte, collectivités d'outre-mer) or when the territory tables are absent."""
        code = self._commune_arr.get((insee or "").strip().upper())
        return self._arrondissements.get(code) if code else None

    @staticmethod
    def _departement_of(arrondissement: Arrondissement | None, departement_code: str | None, insee: str | None) -> str | None:
        """The commune's département (from its arrondissement), else the one given, else its INSEE code's."""
        if arrondissement is not None:
            return arrondissement.departement
        return normalize_departement_code(departement_code) or _departement_of_insee(insee or "")

    def state_office(self, insee: str | None, departement_code: str | None = None) -> Contact | None:
        """The State's door for a commune: the sous-préfecture of its arrondissement beside the préfecture.

        Returns the préfecture itself when the arrondissement's seat is the préfecture's town, when the
        commune has no arrondissement, or when only the département is known; None when neither is known.
        The sous-préfecture's page is the préfecture's site (no sous-préfecture URL is kept unread).
        """
        arrondissement = self.arrondissement_of(insee)
        departement = self._departement_of(arrondissement, departement_code, insee)
        prefecture = self.for_territory(ContactKind.prefecture, departement)
        if prefecture is None or arrondissement is None:
            return prefecture
        if arrondissement.seat == self._prefecture_seat.get(arrondissement.departement):
            return prefecture
        seat = "" if arrondissement.seat_name == arrondissement.name else f" (siège à {arrondissement.seat_name})"
        return Contact(
            kind=SOUS_PREFECTURE,
            name=f"Sous-préfecture {of_place(arrondissement.name)}{seat} — {prefecture.name}",
            url=prefecture.url,
            note=(
                f"Représentation de l'État dans l'arrondissement {of_place(arrondissement.name)} ; adresse et "
                "horaires sur le site de la préfecture."
            ),
            partner=Partner.etat.value,
        )

    def for_offer(
        self,
        offer: Offer,
        departement_code: str | None = None,
        region_code: str | None = None,
        insee: str | None = None,
    ) -> Contact | None:
        """Whom to contact for an offer, here: the concrete door of its `access.contact` kind.

        - en-ligne: the offer's own service page (`access.url`, else its first source), never another
          body's portal or membership page;
        - prefecture: `state_office` (the commune's sous-préfecture beside the préfecture);
        - other territorial kinds: the département's or région's office (`for_territory`);
        - territoires-conseils: the national entry only when it belongs to the offer's partner.
        None when the territory needed is unknown.
        """
        kind, partner = ContactKind(offer.access.contact), Partner(offer.partner).value
        if kind == ContactKind.online:
            url = str(offer.access.url or offer.source_urls[0])
            return Contact(kind=kind.value, name=offer.title, url=url, partner=partner)
        if kind == ContactKind.prefecture:
            return self.state_office(insee, departement_code)
        found = self.for_territory(kind, departement_code, region_code, partner=partner)
        if found is not None and kind in NATIONAL_KINDS and found.partner != partner:
            return None
        return found

    # -- doors beyond the partners (signposts) -------------------------------------------------

    def water_agencies(self, departement_code: str | None) -> list[str]:
        """Names of the agences de l'eau the département's communes belong to, most frequent first;
        [] for an unknown or overseas département (no agence de l'eau there)."""
        if self._water is None:
            return []
        ids = self._water.departements.get(normalize_departement_code(departement_code) or "", [])
        return [self._water.agences[i] for i in ids]

    def signpost_door(
        self,
        signpost: Any,
        departement_code: str | None = None,
        region_code: str | None = None,
        insee: str | None = None,
    ) -> Contact | None:
        """The concrete body behind a signpost card for the asker's territory, or None when unknown.

        `signpost` is a Signpost card (assistant/schema.py): its `locate` (region, departement, basin,
        national) says how to find the local body; `body` names it; `how_to_find` is kept as the note
        and its official page (`url`) as the link. A commune's INSEE code gives its département.
        - region: « <body> — <région> » (ARS, DRAC, conseil régional of the asker's région);
        - departement: « <body> — <département> (<code>) » (CAF, CDG, CAUE, ADIL…); a body that is the
          préfecture (« Préfecture — FIPD ») takes the département's préfecture name;
        - basin: the agence de l'eau of the département when all its communes are in one basin,
          otherwise « selon la commune, à vérifier » with the candidates; overseas: none, « à vérifier »;
        - national: the body itself.
        No phone, e-mail or local URL is made up: the link stays the signpost's own page.
        """
        locate = str(getattr(signpost.locate, "value", signpost.locate))
        departement = self._departement_of(self.arrondissement_of(insee), departement_code, insee)
        region = self.region_of_departement(departement) or normalize_region_code(region_code)
        body, url, note = signpost.body, signpost.url, signpost.how_to_find
        if locate == "national":
            return Contact(kind=signpost.id, name=body, url=url, note=note)
        if locate == "region":
            name = self.region_name(region)
            return Contact(kind=signpost.id, name=f"{body} — {name}", url=url, note=note) if name else None
        dep_name = self.departement_name(departement)
        if dep_name is None:
            return None
        if locate == "departement" and body.startswith(PREFECTURE_BODY):
            prefecture = self.for_territory(ContactKind.prefecture, departement)
            name = f"{prefecture.name}{body[len(PREFECTURE_BODY):]}" if prefecture else body
            return Contact(kind=signpost.id, name=name, url=url, note=note)
        if locate == "departement":
            return Contact(kind=signpost.id, name=f"{body} — {dep_name} ({departement})", url=url, note=note)
        agencies = self.water_agencies(departement)
        if len(agencies) == 1:
            return Contact(kind=signpost.id, name=agencies[0], url=url, note=note)
        if agencies:
            name = f"Agence de l'eau : selon la commune, à vérifier ({' ou '.join(agencies)})"
        else:
            name = f"Outre-mer ({dep_name}) : pas d'agence de l'eau, organisme compétent à vérifier"
        return Contact(kind=signpost.id, name=name, url=url, note=note)


def _departement_of_insee(insee: str) -> str | None:
    """Département code from a commune's INSEE code: '97105' -> '971', '2A004' -> '2A', '15187' -> '15'."""
    code = insee.strip().upper()
    if len(code) != 5:
        return None
    return code[:3] if code.startswith("97") else code[:2]
