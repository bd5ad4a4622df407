"""Territory data and the resolver of "who is asking", on the committed INSEE files."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from assistant.schema import Audience
from assistant.territory import EPCI_PREFIXES, UPPERCASE_ONLY_PREFIXES, Territories, _load, normalize
from ingest.territories import PACKAGE, build_territories

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "corpus" / "territoires"

SAINT_FLOUR = "15187"
CC_SAINT_FLOUR = "200066660"
CC_PAYS_DE_SALERS = "241501139"


@pytest.fixture(scope="module")
def territories() -> Territories:
    return Territories.load(ROOT / "corpus")


# --- committed data ---


def test_committed_files_are_small_versioned_and_complete(territories):
    meta = json.loads((DATA / "meta.json").read_text(encoding="utf-8"))
    assert meta["source"]["package"] == PACKAGE
    assert meta["source"]["version"].count(".") == 2
    total = sum(p.stat().st_size for p in DATA.iterdir() if p.is_file())
    assert total < 3 * 1024 * 1024
    assert meta["counts"]["communes"] == len(territories.communes) > 34_000
    assert meta["counts"]["epci"] == len(territories.epcis) > 1_200
    assert len(territories.departements) == meta["counts"]["departements"] >= 101
    assert len(territories.regions) == meta["counts"]["regions"] >= 18
    assert meta["source"]["version"] in (DATA / "README.md").read_text(encoding="utf-8")  # the README says which


def test_every_commune_is_consistent_with_its_epci_and_departement(territories):
    for commune in territories.communes.values():
        assert commune.region == territories.departements[commune.departement].region
        if commune.epci:
            assert commune.code in territories.epcis[commune.epci].members
    for epci in territories.epcis.values():
        assert all(territories.communes[code].epci == epci.siren for code in epci.members)


def test_load_is_cached():
    """Loaded once per process: every turn reads the same tables (load time: `aiguillage bench`)."""
    _load.cache_clear()
    first = Territories.load(ROOT / "corpus")
    assert Territories.load(DATA) is first


def test_tables_indexed_once_are_read_back_from_the_cache(tmp_path, monkeypatch):
    """With a cache directory the indexed tables are kept as a pickle and read back by the next process:
    the same lookups and resolutions as the tables indexed anew; a table that changes is indexed again."""
    import shutil

    import assistant.territory as territory

    tables = tmp_path / "territoires"
    shutil.copytree(DATA, tables)
    _load.cache_clear()
    fresh = Territories.load(tables, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("territories-*.pkl"))) == 1
    _load.cache_clear()
    monkeypatch.setattr(territory, "_read_tables", lambda root: pytest.fail("tables indexed again although cached"))
    cached = Territories.load(tables, tmp_path / "cache")
    assert cached is not fresh and cached.communes == fresh.communes and cached.epcis == fresh.epcis
    texts = ["Je suis maire de Saint-Flour", "communauté de communes du Pays de Salers", "à Sens (Yonne), 15100",
             "Mairie de Laveissiere dans le Cantal", "Notre EPCI en Auvergne-Rhône-Alpes"]
    assert [cached.resolve(t) for t in texts] == [fresh.resolve(t) for t in texts]
    monkeypatch.undo()
    meta = tables / "meta.json"
    meta.write_text(meta.read_text(encoding="utf-8").replace("{", '{"edited": true, ', 1), encoding="utf-8")
    _load.cache_clear()
    assert Territories.load(tables, tmp_path / "cache").meta["edited"] is True
    assert len(list((tmp_path / "cache").glob("territories-*.pkl"))) == 2
    _load.cache_clear()


# --- lookups ---


def test_lookups_by_code(territories):
    flour = territories.commune(SAINT_FLOUR)
    assert flour.name == "Saint-Flour" and flour.population == 6391
    assert flour.postal_codes == ("15100",)
    assert territories.departement_of(flour).name == "Cantal"
    assert territories.region_of(flour).name == "Auvergne-Rhône-Alpes"
    assert territories.epci_of(flour).siren == CC_SAINT_FLOUR
    assert SAINT_FLOUR in territories.epci(CC_SAINT_FLOUR).members
    assert territories.departement("2A").name == "Corse-du-Sud"
    assert territories.departement("1").name == "Ain"
    assert territories.region("84").name == "Auvergne-Rhône-Alpes"
    # Superseded codes still lead somewhere: an arrondissement municipal, a merged commune.
    assert territories.commune("13201").name == "Marseille"
    assert territories.commune("01015").name == "Arboys en Bugey"


def test_postal_code_lists_every_commune_it_serves(territories):
    served = territories.communes_by_postal_code("15100")
    assert served[0].code == SAINT_FLOUR and len(served) > 10
    assert {c.departement for c in served} == {"15"}


def test_communes_named_ignores_accents_hyphens_and_abbreviations(territories):
    assert [c.code for c in territories.communes_named("st flour")] == [SAINT_FLOUR]
    assert [c.code for c in territories.communes_named("SAINT FLOUR")] == [SAINT_FLOUR]
    assert [c.code for c in territories.communes_named("Puy-en-Velay")] == ["43157"]
    martins = territories.communes_named("Saint-Martin")
    assert len(martins) >= 5 and all(c.name == "Saint-Martin" for c in martins)
    assert [c.population for c in martins] == sorted((c.population for c in martins), reverse=True)
    assert normalize("Sainte-Foy-la-Grande") == normalize("ste foy la grande") == "sainte foy la grande"


# --- resolve: communes ---


@pytest.mark.parametrize(
    "text, code",
    [
        ("je suis maire de Saint-Flour", SAINT_FLOUR),
        ("Je suis maire de Saint-Flour et je veux rénover l'école", SAINT_FLOUR),
        ("la commune de Saint-Flour souhaite un appui", SAINT_FLOUR),
        ("st flour", SAINT_FLOUR),
        ("SAINT-FLOUR", SAINT_FLOUR),
        ("15100 Saint-Flour", SAINT_FLOUR),
        ("Saint-Flour (15)", SAINT_FLOUR),
        ("code INSEE 15187", SAINT_FLOUR),
        ("Le Puy en Velay", "43157"),
        ("le puy-en-velay", "43157"),
        ("Nous sommes au Puy-en-Velay", "43157"),
        ("Je suis élu du Puy-en-Velay", "43157"),
        ("maire du Havre", "76351"),
        ("aux Sables-d'Olonne", "85194"),
        ("L'Isle-sur-la-Sorgue", "84054"),
        ("Bonjour, je suis la maire de Riom-ès-Montagnes", "15162"),
        ("Maire d'Aurillac, je cherche un financement", "15014"),
        ("secrétaire de mairie à Murat (Cantal)", "15138"),
        ("bourg en bresse", "01053"),
        ("Je suis à Lyon", "69123"),
        ("à Mayenne", "53147"),
        ("75013", "75056"),
        # Everyday words that are also communes, when the phrasing says "place".
        ("Mairie d'Eu", "76255"),
        ("commune de Y", "80829"),
        ("Commune de Pont (21)", "21495"),
        ("Je suis maire de Montagne (Gironde)", "33290"),
        # A former commune, merged into a commune nouvelle.
        ("maire délégué d'Arbignieu", "01015"),
    ],
)
def test_resolve_commune(territories, text, code):
    result = territories.resolve(text)
    assert result.commune is not None, text
    assert result.commune.code == code
    assert not result.ambiguous and result.level == Audience.commune


def test_saint_flour_comes_with_its_whole_territory(territories):
    result = territories.resolve("je suis maire de Saint-Flour")
    assert result.commune.population == 6391
    assert result.departement.name == "Cantal"
    assert result.region.name == "Auvergne-Rhône-Alpes"
    assert result.epci.siren == CC_SAINT_FLOUR
    assert result.matched_text == "Saint-Flour"


@pytest.mark.parametrize(
    "text, code",
    [
        ("Je suis maire de Saint-Flourr", SAINT_FLOUR),
        ("maire de Clermont-Ferand", "63113"),
        ("je suis à Aurilac", "15014"),
    ],
)
def test_resolve_tolerates_typos(territories, text, code):
    assert territories.resolve(text).commune.code == code


def test_homonyms_are_ambiguous_with_labelled_candidates(territories):
    result = territories.resolve("Saint-Martin")
    assert result.ambiguous and result.commune is None
    assert len(result.candidates) >= 5
    assert all(c.name == "Saint-Martin" for c in result.candidates)
    assert any("Gers" in label and "habitants" in label for label in result.candidate_labels)
    question = result.clarifying_question()
    assert "Saint-Martin (Gers" in question and question.endswith("?")


@pytest.mark.parametrize(
    "text", ["Saint-Martin dans le Gers", "Saint-Martin (32)", "Saint-Martin, Gers", "commune de Saint-Martin, 32"]
)
def test_a_departement_in_the_same_text_picks_the_homonym(territories, text):
    result = territories.resolve(text)
    assert result.commune.code == "32389", text
    assert result.departement.name == "Gers"


def test_a_region_narrows_homonyms_without_settling_them(territories):
    everywhere = territories.resolve("Sainte-Colombe")
    in_region = territories.resolve("Sainte-Colombe en Nouvelle-Aquitaine")
    assert in_region.ambiguous
    assert 1 < len(in_region.candidates) < len(everywhere.candidates)
    assert {c.region for c in in_region.candidates} == {"75"}


def test_a_shared_postal_code_asks_but_keeps_what_is_certain(territories):
    result = territories.resolve("15100")
    assert result.ambiguous and result.commune is None
    assert result.candidates[0].code == SAINT_FLOUR  # the largest first
    assert result.departement.name == "Cantal"
    assert result.epci.siren == CC_SAINT_FLOUR  # all of them belong to it


# --- resolve: EPCI, départements, régions ---


@pytest.mark.parametrize(
    "text, siren",
    [
        ("communauté de communes du Pays de Salers", CC_PAYS_DE_SALERS),
        ("CC du Pays de Salers", CC_PAYS_DE_SALERS),
        ("Communauté de communes du Pays de Salerss", CC_PAYS_DE_SALERS),
        ("la communauté de communes de Saint-Flour", CC_SAINT_FLOUR),
        ("Saint-Flour Communauté", CC_SAINT_FLOUR),
        ("agglo d'Aurillac", None),
        ("Aurillac Agglo", None),
        ("communauté d'agglomération du Bassin d'Aurillac", None),
        ("métropole de Lyon", None),
        ("Bordeaux Métropole", None),
    ],
)
def test_resolve_epci(territories, text, siren):
    result = territories.resolve(text)
    assert result.epci is not None and result.commune is None, text
    assert result.level == Audience.epci
    if siren:
        assert result.epci.siren == siren
    elif "Aurillac" in text:
        assert result.epci.name == "CA du Bassin d'Aurillac"
    elif "Lyon" in text:
        assert result.epci.name == "Métropole de Lyon"
    else:
        assert result.epci.name == "Bordeaux Métropole"


@pytest.mark.parametrize("prefix", EPCI_PREFIXES)
def test_every_epci_prefix_introduces_the_epci_it_names(territories, prefix):
    """Generated from the prefix table: each way of saying « communauté de communes » (in capitals
    where only capitals make it one: « CA », not « ça ») names the EPCI that follows it."""
    words = [w.upper() if prefix in UPPERCASE_ONLY_PREFIXES else w for w in prefix]
    said = " ".join(words).replace("d ", "d'")
    result = territories.resolve(f"Notre {said} du Pays de Salers veut rénover sa piscine")
    assert result.epci is not None and result.epci.siren == CC_PAYS_DE_SALERS, said
    assert result.matched_text.startswith(said.split()[0]), (said, result.matched_text)


@pytest.mark.parametrize(
    "text, code",
    [
        ("dans le Cantal", "15"),
        ("une commune rurale (15)", "15"),
        ("en Haute-Loire", "43"),
        ("Corse-du-Sud", "2A"),
        ("2A", "2A"),
        ("dans la Creuse", "23"),
        ("en Mayenne", "53"),
        ("dans la Loire", "42"),
        ("Préfecture de la Marne", "51"),
    ],
)
def test_resolve_departement(territories, text, code):
    result = territories.resolve(text)
    assert result.departement.code == code, text
    assert result.commune is None and result.level == Audience.department
    assert result.region.code == territories.departement(code).region


@pytest.mark.parametrize("text, code", [("en Occitanie", "76"), ("région Bretagne", "53"), ("en PACA", "93")])
def test_resolve_region(territories, text, code):
    result = territories.resolve(text)
    assert result.region.code == code and result.level == Audience.region


# --- precision: no place, no match ---

NO_PLACE = [
    "Ma commune de 800 habitants veut rénover l'école",
    "Quelles aides pour refaire le pont de la commune ?",
    "Il y a un pont communal très abîmé, qui peut nous aider ?",
    "J'ai eu une subvention DETR l'an dernier, puis-je en avoir une autre ?",
    "Notre plan local d'urbanisme doit être révisé",
    "Le Plan vélo peut-il financer une piste cyclable ?",
    "Le bourg se vide, les commerces ferment",
    "Comment revitaliser le centre-bourg ?",
    "Nous sommes une commune de montagne",
    "Commune de montagne, 300 habitants, besoin d'un appui pour une chaufferie bois",
    "On veut installer une chaudière à bois dans la mairie",
    "Vers qui se tourner pour un diagnostic énergétique ?",
    "Le 3 Mars, le conseil municipal a voté le projet",
    "Dans quel sens aller pour obtenir le Fonds vert ?",
    "Action Cœur de Ville : qui contacter ?",
    "Petites Villes de Demain, sommes-nous éligibles ?",
    "La communauté de communes veut créer une maison de santé",
    "Bonjour, je suis maire d'une commune rurale",
    "Le toit de la chapelle fuit, que faire ?",
    "Un mur de soutènement s'est effondré rue de la Fontaine",
    "Nous voulons une cantine bio et locale",
    "Un don d'un habitant peut-il financer le projet ?",
    "Son projet de ferme photovoltaïque est-il éligible ?",
    "La Banque des Territoires prête-t-elle aux petites communes ?",
    "Les Assises de l'eau ont-elles débouché sur un prêt ?",
    "Taux du Livret A plus 0,6 %",
    "Le Parlement a voté la loi 3DS",
    "Démarches simplifiées ne marche pas",
    "Un budget de 15000 euros pour l'étude",
    "Entre 10000 et 20000 habitants, quel programme ?",
    "Le projet coûte 45000 € HT",
    "La SEM locale peut-elle porter le projet ?",
    "SOS Ponts, c'est gratuit ?",
    "Quid du PIA 4 ?",
    "Y a-t-il des aides pour les écoles ?",
    "Eu égard à la situation, que proposez-vous ?",
    "Nous organisons la fête de la Saint-Jean",
    "La Toussaint approche, le cimetière doit être aménagé",
    "Commune de moins de 3500 habitants",
    "Commune de taille moyenne",
    "Au nord de la commune, il y a une zone humide",
    "Le lot 3 du marché est infructueux",
    "La somme est importante pour notre budget",
    "La réunion avec la préfecture est prévue demain",
    "Les berges de la Loire s'effondrent",
    "la commune a voté le budget",
    "l'EPCI porte la compétence GEMAPI",
    "voir https://www.cerema.fr/fr/node/11162",
    "Le château d'eau doit être rénové",
    "La tour de l'horloge menace de s'effondrer",
]


@pytest.mark.parametrize("text", NO_PLACE)
def test_no_false_positive(territories, text):
    result = territories.resolve(text)
    assert not result.found, f"{text!r} -> {result.matched_text!r}"
    assert result.matched_text is None and not result.ambiguous


# --- build ---


def _tarball(path: Path) -> Path:
    """A tarball laid out like the npm package, holding real records of three Cantal communes."""
    communes = [
        {"code": "15100", "nom": "Laveissenet", "type": "commune-actuelle", "departement": "15", "region": "84",
         "codesPostaux": ["15300"], "population": 137, "arrondissement": "153"},
        {"code": "15187", "nom": "Saint-Flour", "type": "commune-actuelle", "departement": "15", "region": "84",
         "codesPostaux": ["15100"], "population": 6391, "arrondissement": "153"},
        {"code": "15004", "nom": "Andelat", "type": "commune-actuelle", "departement": "15", "region": "84",
         "codesPostaux": ["15100"], "population": 468, "anciensCodes": ["15999"], "arrondissement": "153"},
        {"code": "15188", "nom": "Ancienne", "type": "commune-deleguee", "chefLieu": "15187", "departement": "15",
         "region": "84"},
    ]
    epci = [
        {"code": CC_SAINT_FLOUR, "nom": "CC de Saint-Flour", "type": "CC", "populationTotale": 7400,
         "populationMunicipale": 6859, "membres": [{"code": "15187"}, {"code": "15004"}]},
    ]
    files = {
        "package/package.json": {"name": PACKAGE, "version": "9.9.9", "license": "MIT"},
        "package/data/communes.json": communes,
        "package/data/epci.json": epci,
        "package/data/departements.json": [{"code": "15", "nom": "Cantal", "region": "84", "chefLieu": "15014"}],
        "package/data/arrondissements.json": [
            {"code": "153", "departement": "15", "region": "84", "chefLieu": "15187", "nom": "Saint-Flour"}
        ],
        "package/data/regions.json": [{"code": "84", "nom": "Auvergne-Rhône-Alpes"}],
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            data = json.dumps(payload).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_build_writes_compact_reproducible_files(tmp_path):
    tarball = _tarball(tmp_path / "pkg.tgz")
    meta = build_territories(tarball, tmp_path / "out")
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert build_territories(tarball, tmp_path / "out") == meta
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == first

    assert meta["source"]["version"] == "9.9.9"
    assert meta["counts"] == {
        "communes": 3, "epci": 1, "departements": 1, "regions": 1,
        "communes_sans_epci": 1, "anciens_noms": 1, "anciens_codes": 2,
        "arrondissements": 1, "communes_sans_arrondissement": 0,
    }
    arrondissements = json.loads(gzip.decompress(first["arrondissements.json.gz"]))["arrondissements"]
    assert arrondissements == [{"code": "153", "nom": "Saint-Flour", "dep": "15", "chef_lieu": "15187",
                                "chef_lieu_nom": "Saint-Flour", "membres": ["15004", "15100", "15187"]}]
    communes = json.loads(gzip.decompress(first["communes.json.gz"]))
    assert communes["code"] == ["15004", "15100", "15187"]
    assert communes["epci"] == [CC_SAINT_FLOUR, None, CC_SAINT_FLOUR]

    loaded = Territories.load(tmp_path / "out")
    assert loaded.commune("15999").name == "Andelat"
    assert loaded.resolve("maire de Saint-Flour").epci.name == "CC de Saint-Flour"
    assert loaded.resolve("la commune déléguée d'Ancienne").commune.code == "15187"


def test_build_rejects_another_package(tmp_path):
    path = tmp_path / "other.tgz"
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps({"name": "left-pad", "version": "1.0.0"}).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError):
        build_territories(path, tmp_path / "out")


def test_memoised_word_parts_are_each_words_own(territories):
    """The tokeniser reads each word's folded parts from a memo (territory._word_parts): every word of
    every commune and EPCI name, in capitals, lower case and as written, gets the parts _fold and _WORD
    give it, whether the memo was cold or filled by the other spellings first."""
    import re

    from assistant.territory import _WORD, _fold, _word_parts

    names = [c.name for c in territories.communes.values()] + [e.name for e in territories.epcis.values()]
    words = sorted({w for name in names for w in re.findall(r"[^\W_]+", name)})
    _word_parts.cache_clear()
    for spelled in (str.upper, str.lower, lambda w: w):
        for word in map(spelled, words):
            assert _word_parts(word) == tuple(_WORD.findall(_fold(word))), word
    assert _word_parts.cache_info().hits > 0
