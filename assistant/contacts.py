"""Concrete contacts per territory: reads corpus/contacts/ and answers "whom to call, here".

corpus/contacts/ holds one YAML file per région (``84-auvergne-rhone-alpes.yaml``: the three regional
offices, then every département with its prefecture and its Anah local delegation) and ``national.yaml``
(national entry points). Files are validated with pydantic; a bad file raises ContactDataError naming
the file and the field.
"""

from __future__ import annotations

import datetime as dt
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

from assistant.schema import ContactKind, Partner

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

NATIONAL_FILE = "national.yaml"
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


# --- loading helpers ---------------------------------------------------------------------------


def slugify(text: str) -> str:
    """'Provence-Alpes-Côte d'Azur' -> 'provence-alpes-cote-dazur' (file-name form)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['’]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
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
    ) -> None:
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
        for path in sorted(folder.glob("*.yaml")):
            if path.name == NATIONAL_FILE:
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
        return cls(regions, national, files)

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
