"""Build corpus/territoires/ from the npm tarball of @etalab/decoupage-administratif.

The package holds the INSEE geography (communes, EPCI, arrondissements, départements, régions) with
legal populations. We keep only what routing needs, as column arrays compressed with a fixed gzip
header, so that a rebuild from the same tarball gives byte-identical files and a clean diff.
No npm at run time: the tarball is read with tarfile.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

FORMAT = 1
PACKAGE = "@etalab/decoupage-administratif"
FORMER_TYPES = {"commune-deleguee", "commune-associee"}


def _member(tar: tarfile.TarFile, name: str):
    try:
        return json.load(tar.extractfile(f"package/{name}"))
    except KeyError:
        raise ValueError(f"{name} absent de l'archive : est-ce bien le paquet {PACKAGE} ?") from None


def _dump(path: Path, payload, compress: bool) -> int:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if compress:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return len(data)


def build_territories(tarball: Path, out_dir: Path) -> dict:
    """Write communes, EPCI, départements, régions and meta.json into out_dir; return meta."""
    tarball, out_dir = Path(tarball), Path(out_dir)
    with tarfile.open(tarball, "r:gz") as tar:
        package = _member(tar, "package.json")
        raw_communes = _member(tar, "data/communes.json")
        raw_epci = _member(tar, "data/epci.json")
        raw_departements = _member(tar, "data/departements.json")
        raw_arrondissements = _member(tar, "data/arrondissements.json")
        raw_regions = _member(tar, "data/regions.json")
    if package.get("name") != PACKAGE:
        raise ValueError(f"paquet inattendu : {package.get('name')!r} au lieu de {PACKAGE}")

    regions = sorted(({"code": r["code"], "nom": r["nom"]} for r in raw_regions), key=lambda r: r["code"])
    region_codes = {r["code"] for r in regions}
    departements = sorted(
        (
            {"code": d["code"], "nom": d["nom"], "region": d["region"], "chef_lieu": d.get("chefLieu")}
            for d in raw_departements
        ),
        key=lambda d: d["code"],
    )
    region_of_dep = {d["code"]: d["region"] for d in departements}
    if missing := {d["region"] for d in departements} - region_codes:
        raise ValueError(f"départements rattachés à des régions inconnues : {sorted(missing)}")

    current = sorted((c for c in raw_communes if c["type"] == "commune-actuelle"), key=lambda c: c["code"])
    current_codes = {c["code"] for c in current}

    # A commune belongs to at most one EPCI à fiscalité propre; the EPCI file is the authority.
    epci_rows, epci_of = [], {}
    for e in sorted(raw_epci, key=lambda e: e["code"]):
        members = sorted(m["code"] for m in e["membres"])
        for code in members:
            if code in epci_of:
                raise ValueError(f"commune {code} membre de deux EPCI : {epci_of[code]} et {e['code']}")
            if code not in current_codes:
                raise ValueError(f"EPCI {e['code']} : membre {code} absent des communes actuelles")
            epci_of[code] = e["code"]
        epci_rows.append(
            {
                "siren": e["code"],
                "nom": e["nom"],
                "type": e["type"],
                "pop": e.get("populationMunicipale"),
                "pop_totale": e.get("populationTotale"),
                "membres": members,
            }
        )

    columns: dict[str, list] = {"code": [], "nom": [], "cp": [], "dep": [], "pop": [], "epci": []}
    for c in current:
        if region_of_dep.get(c["departement"]) != c["region"]:
            raise ValueError(f"commune {c['code']} : département {c['departement']}, région {c['region']} incohérents")
        columns["code"].append(c["code"])
        columns["nom"].append(c["nom"])
        columns["cp"].append(c.get("codesPostaux", []))
        columns["dep"].append(c["departement"])
        columns["pop"].append(c.get("population"))
        columns["epci"].append(epci_of.get(c["code"]))

    # Old names and codes still used by people: communes déléguées or associées (merged into a
    # commune nouvelle), arrondissements municipaux (Paris, Lyon, Marseille), superseded INSEE codes.
    former_names: list[list[str]] = []
    alias_codes: dict[str, str] = {}
    for c in raw_communes:
        parent = c.get("chefLieu") if c["type"] in FORMER_TYPES else c.get("commune")
        if c["type"] == "commune-actuelle":
            for old in c.get("anciensCodes", []):
                if old not in current_codes:
                    alias_codes[old] = c["code"]
        elif parent in current_codes:
            if c["type"] in FORMER_TYPES:
                former_names.append([c["nom"], parent])
            if c["code"] not in current_codes:
                alias_codes[c["code"]] = parent
    former_names.sort()

    arrondissement_rows = _arrondissements(raw_arrondissements, current, region_of_dep)

    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {
        "communes.json.gz": _dump(out_dir / "communes.json.gz", {"format": FORMAT, **columns}, True),
        "epci.json.gz": _dump(out_dir / "epci.json.gz", {"format": FORMAT, "epci": epci_rows}, True),
        "departements.json": _dump(out_dir / "departements.json", departements, False),
        "regions.json": _dump(out_dir / "regions.json", regions, False),
        "arrondissements.json.gz": _dump(
            out_dir / "arrondissements.json.gz", {"format": FORMAT, "arrondissements": arrondissement_rows}, True
        ),
        "anciennes.json.gz": _dump(
            out_dir / "anciennes.json.gz",
            {"format": FORMAT, "noms": former_names, "codes": dict(sorted(alias_codes.items()))},
            True,
        ),
    }
    meta = {
        "format": FORMAT,
        "source": {
            "package": PACKAGE,
            "version": package["version"],
            "licence": package.get("license"),
            "tarball_sha256": hashlib.sha256(tarball.read_bytes()).hexdigest(),
        },
        "counts": {
            "communes": len(current),
            "epci": len(epci_rows),
            "departements": len(departements),
            "regions": len(regions),
            "communes_sans_epci": len(current) - len(epci_of),
            "arrondissements": len(arrondissement_rows),
            "communes_sans_arrondissement": len(current) - sum(len(a["membres"]) for a in arrondissement_rows),
            "anciens_noms": len(former_names),
            "anciens_codes": len(alias_codes),
        },
        "files": sizes,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return meta


def _arrondissements(raw: list[dict], current: list[dict], region_of_dep: dict[str, str]) -> list[dict]:
    """Arrondissements (sous-préfectures' territories) with their chef-lieu and member communes.

    Each row: code (3 or 4 characters, INSEE), nom, dep, chef_lieu (INSEE code of the commune that
    is the seat of the sous-préfecture, or of the préfecture for the arrondissement chef-lieu of the
    département), chef_lieu_nom, membres (INSEE codes). Mayotte and the collectivités d'outre-mer
    have none. Raises ValueError when a commune names an arrondissement the file lacks, or an
    arrondissement's chef-lieu is not a current commune of its département.
    """
    by_code = {c["code"]: c for c in current}
    members: dict[str, list[str]] = {}
    for c in current:
        if c.get("arrondissement"):
            members.setdefault(c["arrondissement"], []).append(c["code"])
    known = {a["code"] for a in raw}
    if unknown := set(members) - known:
        raise ValueError(f"communes rattachées à des arrondissements inconnus : {sorted(unknown)}")
    rows = []
    for a in sorted(raw, key=lambda a: a["code"]):
        seat = by_code.get(a.get("chefLieu") or "")
        if seat is None or seat["departement"] != a["departement"]:
            raise ValueError(f"arrondissement {a['code']} : chef-lieu {a.get('chefLieu')} hors de son département")
        if region_of_dep.get(a["departement"]) != a["region"]:
            raise ValueError(f"arrondissement {a['code']} : département et région incohérents")
        rows.append(
            {
                "code": a["code"],
                "nom": a["nom"],
                "dep": a["departement"],
                "chef_lieu": seat["code"],
                "chef_lieu_nom": seat["nom"],
                "membres": sorted(members.get(a["code"], [])),
            }
        )
    return rows
