"""corpus/contacts/ loaded for real: every territory has its contacts, and bad files fail loudly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from assistant.contacts import (
    DEPARTEMENTAL_KINDS,
    REGIONAL_KINDS,
    ContactDataError,
    ContactDirectory,
)
from assistant.schema import ContactKind

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CONTACTS = CORPUS / "contacts"

# INSEE codes, written out independently of the data: 01-95 without 20, 2A/2B, the five DROM.
DEPARTEMENTS = (
    [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"] + ["971", "972", "973", "974", "976"]
)
REGIONS = ["01", "02", "03", "04", "06", "11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"]
DDTM = {"06", "11", "13", "14", "17", "22", "27", "29", "2A", "2B", "30", "33", "34", "35", "40",
        "44", "50", "56", "59", "62", "64", "66", "76", "80", "83", "85"}  # fmt: skip


@pytest.fixture(scope="module")
def directory() -> ContactDirectory:
    return ContactDirectory.load(CORPUS)


def test_counts_match_insee(directory: ContactDirectory) -> None:
    assert len(DEPARTEMENTS) == 101
    assert sorted(directory.departement_codes) == sorted(DEPARTEMENTS)
    assert directory.region_codes == REGIONS


@pytest.mark.parametrize("code", DEPARTEMENTS)
def test_every_departement_has_prefecture_and_anah(directory: ContactDirectory, code: str) -> None:
    prefecture = directory.for_territory(ContactKind.prefecture, code, None)
    anah = directory.for_territory(ContactKind.anah_local, code, None)
    assert prefecture is not None and prefecture.name.startswith("Préfecture ")
    assert prefecture.url and re.fullmatch(r"https://www\.[a-z-]+\.gouv\.fr(/[a-z-]+)?", prefecture.url)
    assert anah is not None and anah.name.startswith("Délégation locale de l'Anah – ")
    assert directory.region_of_departement(code) in REGIONS


@pytest.mark.parametrize("code", REGIONS)
def test_every_region_has_the_three_regional_kinds(directory: ContactDirectory, code: str) -> None:
    for kind in REGIONAL_KINDS:
        contact = directory.for_territory(kind, None, code)
        assert contact is not None, (code, kind)
        assert contact.kind == kind.value
        assert len(contact.name) > 5


@pytest.mark.parametrize("code", DEPARTEMENTS)
def test_regional_kinds_reachable_from_departement(directory: ContactDirectory, code: str) -> None:
    region = directory.region_of_departement(code)
    for kind in REGIONAL_KINDS:
        assert directory.for_territory(kind, code, None) == directory.for_territory(kind, None, region)
    assert len(directory.for_departement(code)) == 5


def test_cantal(directory: ContactDirectory) -> None:
    prefecture = directory.for_territory("prefecture", "15", None)
    assert prefecture is not None
    assert prefecture.name == "Préfecture du Cantal"
    assert prefecture.url == "https://www.cantal.gouv.fr"
    anah = directory.for_territory("anah-delegation-locale", "15", None)
    assert anah is not None and anah.name == "Délégation locale de l'Anah – DDT du Cantal"
    assert directory.region_of_departement("15") == "84"


def test_auvergne_rhone_alpes_ademe(directory: ContactDirectory) -> None:
    ademe = directory.for_territory("ademe-direction-regionale", None, "84")
    assert ademe is not None and "Auvergne-Rhône-Alpes" in ademe.name
    assert ademe.partner == "ademe"
    cerema = directory.for_territory("cerema-direction-territoriale", None, "84")
    assert cerema is not None and cerema.name == "Cerema Centre-Est"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("43", "Préfecture de la Haute-Loire"),
        ("01", "Préfecture de l'Ain"),
        ("92", "Préfecture des Hauts-de-Seine"),
        ("28", "Préfecture d'Eure-et-Loir"),
        ("974", "Préfecture de La Réunion"),
        ("976", "Préfecture de Mayotte"),
        ("2A", "Préfecture de la Corse-du-Sud"),
    ],
)
def test_french_articles(directory: ContactDirectory, code: str, name: str) -> None:
    contact = directory.for_territory("prefecture", code, None)
    assert contact is not None and contact.name == name


def test_paris_is_special(directory: ContactDirectory) -> None:
    paris = directory.for_territory("prefecture", "75", None)
    assert paris is not None
    assert paris.name == "Préfecture de la région d'Île-de-France, préfecture de Paris"
    assert paris.url == "https://www.prefectures-regions.gouv.fr/ile-de-france"


@pytest.mark.parametrize("code", DEPARTEMENTS)
def test_anah_service_type(directory: ContactDirectory, code: str) -> None:
    anah = directory.for_territory("anah-delegation-locale", code, None)
    assert anah is not None
    if code.startswith("97"):
        assert ("DEAL" in anah.name) or ("DGTM" in anah.name)
    elif code in {"75", "92", "93", "94"}:
        assert "DRIHL" in anah.name
    elif code in DDTM:
        assert "– DDTM " in anah.name
    else:
        assert "– DDT " in anah.name


def test_unknown_territory_gives_none(directory: ContactDirectory) -> None:
    assert directory.for_territory("prefecture", "99", None) is None
    assert directory.for_territory("anah-delegation-locale", "20", None) is None
    assert directory.for_territory("prefecture", None, "84") is None
    assert directory.for_territory("ademe-direction-regionale", "99", None) is None
    assert directory.for_territory("ademe-direction-regionale", None, "99") is None
    assert directory.for_territory("ademe-direction-regionale", None, None) is None
    assert directory.region_of_departement("99") is None
    assert directory.for_departement("99") == []


def test_unknown_kind_raises(directory: ContactDirectory) -> None:
    with pytest.raises(ValueError):
        directory.for_territory("mairie", "15", None)


def test_code_normalisation(directory: ContactDirectory) -> None:
    assert directory.region_of_departement("2a") == "94"
    assert directory.region_of_departement(1) == "84"
    assert directory.region_of_departement(" 976 ") == "06"
    assert directory.for_territory("ademe-direction-regionale", None, 6) is not None


def test_departement_wins_over_region(directory: ContactDirectory) -> None:
    # Cantal is in 84; a wrong région code does not override a known département.
    cerema = directory.for_territory("cerema-direction-territoriale", "15", "93")
    assert cerema is not None and cerema.name == "Cerema Centre-Est"


def test_national_entry_points(directory: ContactDirectory) -> None:
    conseils = directory.for_territory("territoires-conseils", "15", "84")
    assert conseils is not None and conseils.phone == "0970 808 809"
    assert conseils.partner == "banque-des-territoires"
    cerema = directory.for_territory("en-ligne", None, None, partner="cerema")
    assert cerema is not None and cerema.email == "collectivites@cerema.fr"
    assert cerema.url == "https://www.cerema.fr/fr/collectivites-territoriales"
    ademe = directory.for_territory("en-ligne", None, None, partner="ademe")
    assert ademe is not None and ademe.url == "https://agirpourlatransition.ademe.fr"
    anah = directory.for_territory("en-ligne", None, None, partner="anah")
    assert anah is not None and anah.url == "https://france-renov.gouv.fr"
    assert directory.for_territory("en-ligne", None, None) is not None
    assert directory.for_territory("en-ligne", None, None, partner="anru") is None
    assert {c.kind for c in directory.national()} == {"territoires-conseils", "en-ligne"}


def test_kind_sets_cover_contact_kind() -> None:
    national = set(ContactKind) - DEPARTEMENTAL_KINDS - REGIONAL_KINDS
    assert national == {ContactKind.territoires_conseils, ContactKind.online}


def test_no_personal_titles_in_data() -> None:
    # Role-level data only: no civilities that would come with a person's name.
    text = "\n".join(p.read_text(encoding="utf-8") for p in CONTACTS.glob("*.yaml"))
    assert not re.search(r"\b(M\.|Mme|Monsieur|Madame)\s+[A-Z]", text)


# --- bad files ---------------------------------------------------------------------------------


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    target = tmp_path / "contacts"
    shutil.copytree(CONTACTS, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_copy_loads(corpus_copy: Path) -> None:
    assert len(ContactDirectory.load(corpus_copy).departement_codes) == 101


def test_bad_field_names_file_and_field(corpus_copy: Path) -> None:
    path = corpus_copy / "84-auvergne-rhone-alpes.yaml"
    _edit(path, "url: https://www.cantal.gouv.fr", "url: https://www.cantal.gouv.fr\n    fax: '0471'")
    with pytest.raises(ContactDataError) as err:
        ContactDirectory.load(corpus_copy)
    message = str(err.value)
    assert "84-auvergne-rhone-alpes.yaml" in message
    assert "departements.3[15].prefecture.fax" in message


def test_bad_url(corpus_copy: Path) -> None:
    _edit(corpus_copy / "national.yaml", "url: https://france-renov.gouv.fr", "url: france-renov")
    with pytest.raises(ContactDataError, match=r"national\.yaml(.|\n)*contacts\.3\.url"):
        ContactDirectory.load(corpus_copy)


def test_missing_regional_kind(corpus_copy: Path) -> None:
    _edit(corpus_copy / "94-corse.yaml", "kind: cerema-direction-territoriale", "kind: en-ligne")
    with pytest.raises(ContactDataError, match=r"94-corse\.yaml(.|\n)*contacts\.2\.kind"):
        ContactDirectory.load(corpus_copy)


def test_departement_listed_twice(corpus_copy: Path) -> None:
    _edit(corpus_copy / "94-corse.yaml", "code: 2B", "code: 2A")
    with pytest.raises(ContactDataError, match=r"94-corse\.yaml(.|\n)*listed twice: 2A"):
        ContactDirectory.load(corpus_copy)


def test_departement_in_two_regions(corpus_copy: Path) -> None:
    _edit(corpus_copy / "94-corse.yaml", "code: 2B", "code: '15'")
    with pytest.raises(ContactDataError, match=r"15 already listed in .*84-auvergne-rhone-alpes\.yaml"):
        ContactDirectory.load(corpus_copy)


def test_file_name_must_match_region(corpus_copy: Path) -> None:
    (corpus_copy / "94-corse.yaml").rename(corpus_copy / "94-corsica.yaml")
    with pytest.raises(ContactDataError, match=r"94-corsica\.yaml.*expected 94-corse\.yaml"):
        ContactDirectory.load(corpus_copy)


def test_invalid_yaml(corpus_copy: Path) -> None:
    (corpus_copy / "94-corse.yaml").write_text("region: [unclosed\n", encoding="utf-8")
    with pytest.raises(ContactDataError, match=r"94-corse\.yaml: invalid YAML"):
        ContactDirectory.load(corpus_copy)


def test_missing_national(corpus_copy: Path) -> None:
    (corpus_copy / "national.yaml").unlink()
    with pytest.raises(ContactDataError, match=r"national\.yaml: missing"):
        ContactDirectory.load(corpus_copy)
