"""corpus/contacts/ loaded for real: every territory has its contacts, and bad files fail loudly."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.contacts import (
    DEPARTEMENTAL_KINDS,
    REGIONAL_KINDS,
    SOUS_PREFECTURE,
    ContactDataError,
    ContactDirectory,
    of_place,
)
from assistant.schema import ContactKind
from ingest.corpus import load_corpus

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


# --- sous-préfectures, generated from the territory tables -------------------------------------

TERRITOIRES = CORPUS / "territoires"


def _arrondissement_tables() -> tuple[list[dict], dict[str, dict]]:
    rows = json.loads(gzip.decompress((TERRITOIRES / "arrondissements.json.gz").read_bytes()))["arrondissements"]
    departements = {d["code"]: d for d in json.loads((TERRITOIRES / "departements.json").read_text(encoding="utf-8"))}
    return rows, departements


def test_every_commune_with_an_arrondissement_gets_its_sous_prefecture(directory: ContactDirectory) -> None:
    rows, departements = _arrondissement_tables()
    covered = sous_prefectures = 0
    for row in rows:
        prefecture = directory.for_territory("prefecture", row["dep"], None)
        if prefecture is None:  # collectivités d'outre-mer: no contacts file covers them
            continue
        seat_is_prefecture = row["chef_lieu"] == departements[row["dep"]]["chef_lieu"]
        for insee in row["membres"]:
            office = directory.state_office(insee)
            assert office is not None and office.url == prefecture.url, insee
            if seat_is_prefecture:
                assert office == prefecture, insee
            else:
                assert office.kind == SOUS_PREFECTURE
                assert office.name.startswith(f"Sous-préfecture {of_place(row['nom'])}"), (insee, office.name)
                assert office.name.endswith(" — " + prefecture.name)
                sous_prefectures += 1
            covered += 1
    assert covered > 34_700 and sous_prefectures > 20_000


def test_each_departement_has_one_arrondissement_seated_at_its_prefecture() -> None:
    rows, departements = _arrondissement_tables()
    seats: dict[str, int] = {}
    for row in rows:
        seats[row["dep"]] = seats.get(row["dep"], 0) + (row["chef_lieu"] == departements[row["dep"]]["chef_lieu"])
    assert set(seats.values()) == {1}


@pytest.mark.parametrize(
    ("insee", "name"),
    [
        ("01034", "Sous-préfecture de Belley — Préfecture de l'Ain"),
        ("01053", "Préfecture de l'Ain"),  # Bourg-en-Bresse: the préfecture's own arrondissement
        ("93062", "Sous-préfecture du Raincy — Préfecture de la Seine-Saint-Denis"),
        ("13001", "Sous-préfecture d'Aix-en-Provence — Préfecture des Bouches-du-Rhône"),
        ("35115", "Sous-préfecture de Fougères-Vitré (siège à Fougères) — Préfecture d'Ille-et-Vilaine"),
        ("15187", "Sous-préfecture de Saint-Flour — Préfecture du Cantal"),
        ("97120", "Sous-préfecture de Pointe-à-Pitre — Préfecture de la Guadeloupe"),
        ("97611", "Préfecture de Mayotte"),  # no arrondissement in Mayotte
    ],
)
def test_state_office_examples(directory: ContactDirectory, insee: str, name: str) -> None:
    office = directory.state_office(insee)
    assert office is not None and office.name == name


def test_state_office_without_commune(directory: ContactDirectory) -> None:
    assert directory.state_office(None, "15") == directory.for_territory("prefecture", "15")
    assert directory.state_office("99999", "15") == directory.for_territory("prefecture", "15")
    assert directory.state_office(None, None) is None


def test_without_territory_tables_the_prefecture_stays(corpus_copy: Path) -> None:
    directory = ContactDirectory.load(corpus_copy)  # a copy of contacts/ alone: no territoires/ beside it
    assert directory.state_office("01034", "01") == directory.for_territory("prefecture", "01")


# --- offers: their own door ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def offers() -> dict:
    return load_corpus(CORPUS).offers


def test_no_online_offer_shows_a_membership_or_another_portal(directory: ContactDirectory, offers: dict) -> None:
    membership = {c.url for c in directory.national("en-ligne", partner="cerema")}
    online = [o for o in offers.values() if o.access.contact == ContactKind.online]
    assert len(online) >= 15
    for offer in online:
        contact = directory.for_offer(offer, "15", "84", "15187")
        assert contact is not None and contact.name == offer.title
        assert contact.url == str(offer.access.url or offer.source_urls[0])
        assert contact.url.rstrip("/") not in membership and "Adhésion" not in contact.name, offer.id


def test_cerema_online_services_show_their_own_page(directory: ContactDirectory, offers: dict) -> None:
    for offer_id, host in [("cerema-sos-ponts", "sosponts"), ("cerema-urbanvitaliz", "urbanvitaliz.fr"),
                           ("cerema-cartofriches", "cartofriches.cerema.fr")]:
        contact = directory.for_offer(offers[offer_id])
        assert contact is not None and host in (contact.url or ""), offer_id


def test_local_offers_name_the_sous_prefecture(directory: ContactDirectory, offers: dict) -> None:
    detr = directory.for_offer(offers["etat-detr"], "01", "84", "01034")
    assert detr is not None and detr.name == "Sous-préfecture de Belley — Préfecture de l'Ain"
    anah = directory.for_offer(offers["anah-opah"], "01", "84", "01034")
    assert anah is not None and anah.name == "Délégation locale de l'Anah – DDT de l'Ain"
    assert directory.for_offer(offers["etat-detr"]) is None  # territory unknown: nothing made up


# --- signposts: the concrete body for a territory ---------------------------------------------


def _signpost(locate: str, body: str = "Organisme") -> SimpleNamespace:
    return SimpleNamespace(id=f"porte-{locate}", body=body, locate=locate, how_to_find="Le bureau local de la commune.",
                           url="https://www.example.gouv.fr/page")


def test_signpost_region_and_departement(directory: ContactDirectory) -> None:
    ars = directory.signpost_door(_signpost("region", "Agence régionale de santé (ARS)"), insee="15187")
    assert ars is not None and ars.name == "Agence régionale de santé (ARS) — Auvergne-Rhône-Alpes"
    assert ars.url == "https://www.example.gouv.fr/page" and ars.note == "Le bureau local de la commune."
    caf = directory.signpost_door(_signpost("departement", "Caisse d'allocations familiales (CAF)"), "2A")
    assert caf is not None and caf.name == "Caisse d'allocations familiales (CAF) — Corse-du-Sud (2A)"
    assert directory.signpost_door(_signpost("region"), None, "84").name.endswith("Auvergne-Rhône-Alpes")
    assert directory.signpost_door(_signpost("departement")) is None
    fipd = directory.signpost_door(_signpost("departement", "Préfecture — Fonds interministériel (FIPD)"), "01")
    assert fipd is not None and fipd.name == "Préfecture de l'Ain — Fonds interministériel (FIPD)"
    assert directory.signpost_door(_signpost("national", "Service-public.fr")).name == "Service-public.fr"


@pytest.mark.parametrize("code", [c for c in DEPARTEMENTS if not c.startswith("97")])
def test_every_metropolitan_departement_has_its_water_agency(directory: ContactDirectory, code: str) -> None:
    agencies = directory.water_agencies(code)
    assert agencies and all(a.startswith("Agence de l'eau ") for a in agencies)
    door = directory.signpost_door(_signpost("basin"), code)
    assert door is not None
    if len(agencies) == 1:
        assert door.name == agencies[0]
    else:  # a département over two basins: never a guess
        assert "selon la commune, à vérifier" in door.name and all(a in door.name for a in agencies)


def test_water_agency_examples(directory: ContactDirectory) -> None:
    assert directory.signpost_door(_signpost("basin"), insee="75056").name == "Agence de l'eau Seine-Normandie"
    assert directory.signpost_door(_signpost("basin"), "67").name == "Agence de l'eau Rhin-Meuse"
    assert directory.signpost_door(_signpost("basin"), "2B").name == "Agence de l'eau Rhône Méditerranée Corse"
    assert "à vérifier" in directory.signpost_door(_signpost("basin"), "45").name  # Loiret: Seine and Loire
    overseas = directory.signpost_door(_signpost("basin"), "971")
    assert overseas is not None and "pas d'agence de l'eau" in overseas.name and "à vérifier" in overseas.name


def test_every_signpost_card_finds_its_body_for_a_commune(directory: ContactDirectory) -> None:
    signposts = load_corpus(CORPUS).signposts
    assert {"porte-ars", "porte-drac", "porte-agence-de-l-eau", "porte-cdg", "porte-caf"} <= set(signposts)
    for signpost in signposts.values():
        door = directory.signpost_door(signpost, insee="15187")  # Saint-Flour, Cantal
        assert door is not None and door.url == signpost.url, signpost.id
        locate = str(signpost.locate)
        if locate == "region":
            assert door.name.endswith(" — Auvergne-Rhône-Alpes"), door.name
        elif locate == "departement":
            assert "Cantal (15)" in door.name or door.name.startswith("Préfecture du Cantal"), door.name
        elif locate == "basin":  # the Cantal drains to the Loire and to the Garonne
            assert "selon la commune, à vérifier" in door.name, door.name
        else:
            assert door.name == signpost.body
    paris = directory.signpost_door(signposts["porte-agence-de-l-eau"], insee="75056")
    assert paris is not None and paris.name == "Agence de l'eau Seine-Normandie"
