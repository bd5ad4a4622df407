"""Which communes an Aides-territoires aid covers: its perimeter resolved against our territory tables.

The API gives a perimeter as a name and a scale (`perimeter`, `perimeter_scale`, the
`Perimeter.SCALES_FOR_SEARCH` names of aides-territoires-symfony, anchors.md §3). We turn it into one
*key* — ``pays``, ``metropole``, ``outre-mer``, ``reg:<code>``, ``dep:<code>``, ``epci:<siren>``,
``com:<insee>`` — matched by name against corpus/territoires (the COG tables read by
assistant.territory). An asker's profile gives the keys that cover it (`keys_for`): an aid applies to
a commune exactly when its key is among them. A perimeter we cannot resolve for certain (a basin, an
ad-hoc perimeter, a commune name shared by several communes, a name missing from the tables) gets no
key: such an aid is never shown, since nothing says it covers the asker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.territory import Territories, normalize

NATIONAL = "pays"
MAINLAND = "metropole"
OVERSEAS = "outre-mer"
# Région codes of the five overseas regions (COG): they are not in « Métropole ».
OVERSEAS_REGIONS = frozenset({"01", "02", "03", "04", "06"})
SCALES = {
    "commune": "commune", "epci": "epci", "departement": "departement", "region": "region",
    "pays": "pays", "metropole": "metropole", "outre mer": "outre-mer",
}
# « Cahors (46) », « Saint-Martin (17) »: a commune named with its département, as some perimeters are.
NAME_WITH_DEPARTEMENT = re.compile(r"^(?P<name>.+?)\s*\((?P<dep>\d[\dAB]|\d{3})\)$")


@dataclass(frozen=True)
class Resolved:
    key: str | None  # None: not resolved for certain (the aid is not shown)
    label: str  # the perimeter as a user reads it: « Morbihan (département) »
    reason: str = ""  # why it could not be resolved, in French (console)


class PerimeterResolver:
    """Perimeter (name, scale) -> key, by name in the territory tables; built once per process."""

    def __init__(self, territories: Territories):
        self.territories = territories
        self._regions = {normalize(r.name): r.code for r in territories.regions.values()}
        self._departements = {normalize(d.name): d.code for d in territories.departements.values()}
        self._epcis: dict[str, list[str]] = {}
        for epci in territories.epcis.values():
            self._epcis.setdefault(normalize(epci.name), []).append(epci.siren)

    @property
    def signature(self) -> str:
        """The territory tables' version (corpus/territoires/meta.json): perimeters resolve anew when it changes."""
        return str(self.territories.meta.get("source", {}).get("tarball_sha256", "")) + "|resolver-1"

    def resolve(self, name: str, scale: str | None) -> Resolved:
        """The key of an aid's perimeter. A missing scale is read as « Pays » only for the name France."""
        name = (name or "").strip()
        kind = SCALES.get(normalize(scale or "")) if scale else ("pays" if normalize(name) == "france" else None)
        folded = normalize(name)
        if kind == "pays":
            return Resolved(NATIONAL, "France entière") if folded == "france" else Resolved(None, name, f"pays « {name} »")
        if kind in ("metropole", "outre-mer"):
            return Resolved(MAINLAND if kind == "metropole" else OVERSEAS, "France métropolitaine" if kind == "metropole" else "outre-mer")
        if kind == "region" and folded in self._regions:
            return Resolved(f"reg:{self._regions[folded]}", f"{name} (région)")
        if kind == "departement" and folded in self._departements:
            return Resolved(f"dep:{self._departements[folded]}", f"{name} (département)")
        if kind == "epci":
            sirens = self._epcis.get(folded, [])
            if len(sirens) == 1:
                return Resolved(f"epci:{sirens[0]}", f"{name} (intercommunalité)")
            return Resolved(None, name, f"intercommunalité « {name} » " + ("homonyme" if sirens else "introuvable"))
        if kind == "commune":
            match = NAME_WITH_DEPARTEMENT.match(name)
            communes = self.territories.communes_named(match["name"] if match else name)
            if match:
                communes = [c for c in communes if c.departement == match["dep"]]
            if len(communes) == 1:
                return Resolved(f"com:{communes[0].code}", f"{communes[0].name} (commune)")
            return Resolved(None, name, f"commune « {name} » " + ("homonyme" if communes else "introuvable"))
        return Resolved(None, name, f"périmètre « {name} » ({scale or 'échelle inconnue'}) non rattaché aux tables des territoires")

    def keys_for(self, insee: str | None, epci_siren: str | None, departement: str | None, region: str | None) -> set[str]:
        """The perimeter keys that cover an asker, from what is known of it (always « pays »).

        A commune also brings its EPCI, département and région from the tables; « métropole » or
        « outre-mer » is added once the région is known."""
        commune = self.territories.commune(insee) if insee else None
        if commune is not None:
            epci_siren = epci_siren or commune.epci
            departement, region = departement or commune.departement, region or commune.region
        if departement and not region and departement in self.territories.departements:
            region = self.territories.departements[departement].region
        keys = {NATIONAL}
        if commune is not None:
            keys.add(f"com:{commune.code}")
        if epci_siren:
            keys.add(f"epci:{epci_siren}")
        if departement:
            keys.add(f"dep:{departement}")
        if region:
            keys |= {f"reg:{region}", OVERSEAS if region in OVERSEAS_REGIONS else MAINLAND}
        return keys
