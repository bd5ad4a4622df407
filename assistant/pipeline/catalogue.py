"""Stage 6b, catalogue: the imported aids that complete the curated answer (« Autres aides recensées
sur votre territoire »), after the curated offers and never instead of them.

Runs only when a catalogue was synced and indexed (assistant.catalogue); otherwise the turn is exactly
the curated one. Rules (assistant.catalogue): an aid is shown only when its perimeter covers the
asker (national aids only while the territory is unknown, and the answer says the list depends on
it), it is open to collectivities, not closed, and no curated card describes the same offer (the
card wins; the console shows which aid was hidden behind which card, and why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from assistant.catalogue import (
    AID_TYPE_LABELS, SHOWN, CardNames, CatalogueHit, LoadedCatalogue, offered_to_collectivities, twin_of, verdict,
)
from assistant.perimeter import NATIONAL, PerimeterResolver
from assistant.profile import Profile
from assistant.text import literal

TITLE = "Autres aides recensées sur votre territoire"


@dataclass
class CatalogueFindings:
    hits: list[CatalogueHit]
    hidden: list[dict]  # {"aid_id", "title", "offer_id", "offer_title", "reason"}: twins of curated cards
    territory_known: bool
    synced_on: str  # « 5 décembre 2026 »

    def payload(self) -> dict:
        """Stored with the turn and returned by the API: {"source", "synced_on", "territory_known", "aids", "hidden"}."""
        return {"source": "Aides-territoires", "synced_on": self.synced_on, "territory_known": self.territory_known,
                "aids": [h.payload() for h in self.hits], "hidden": self.hidden}


@dataclass
class CatalogueStage:
    resolver: PerimeterResolver
    today: dt.date | None = None  # the day deadlines are checked against; None: the day of the turn

    def find(self, catalogue: LoadedCatalogue, query: str, query_vector: list[float], profile: Profile,
             cards: CardNames) -> CatalogueFindings:
        """The aids to show this asker for this query vector, and those hidden behind a curated card
        (cards: the curated index generation's names, LoadedIndex.memo("card-names", …))."""
        known = bool(profile.insee or profile.epci_siren or profile.departement_code or profile.region_code)
        keys = (self.resolver.keys_for(profile.insee, profile.epci_siren, profile.departement_code, profile.region_code)
                if known else {NATIONAL})
        today = self.today or dt.date.today()
        hits, hidden = [], []
        for entry, similarity in catalogue.search(query, query_vector, keys):
            if not offered_to_collectivities(entry):
                continue
            if len(hits) >= SHOWN:
                break
            twin = twin_of(entry, cards)
            if twin is not None:
                hidden.append({"aid_id": entry.id, "title": entry.name, "offer_id": twin.card.id,
                               "offer_title": twin.card.title, "reason": twin.reason})
                continue
            decided = verdict(entry, profile.collectivity_type, today)
            if decided.status != "ineligible":
                hits.append(CatalogueHit(entry, similarity, decided))
        return CatalogueFindings(hits, hidden, known, catalogue.synced_on)


def section(findings: CatalogueFindings | None) -> str | None:
    """The answer's catalogue section in the answer's Markdown subset; None when there is nothing to say.

    Aid names and financers come from an outside catalogue: they are made inert (assistant.text.literal)."""
    if findings is None or (not findings.hits and findings.territory_known):
        return None
    lines = [f"### {TITLE}", f"Source : Aides-territoires, mis à jour le {findings.synced_on}."]
    if not findings.territory_known:
        lines.append("Cette liste dépend de votre territoire : indiquez votre commune pour y voir aussi les aides de "
                     "votre région, de votre département et de votre intercommunalité. "
                     + ("Aides nationales :" if findings.hits else "Aucune aide nationale du catalogue ne correspond."))
    for hit in findings.hits:
        e = hit.entry
        link = f"[{literal(e.name)}]({e.url})" if e.url.startswith(("https://", "http://")) else literal(e.name)
        facts = [f"porteur : {literal(', '.join(e.financers))}" if e.financers else None,
                 ", ".join(AID_TYPE_LABELS.get(t, t) for t in e.aid_types) or None,
                 f"périmètre : {e.perimeter_label}"]
        lines.append(f"- {link} — " + " ; ".join(f for f in facts if f) + f". {fit_line(hit)}")
    return "\n".join(lines)


def fit_line(hit: CatalogueHit) -> str:
    v = hit.verdict
    if v.status == "eligible":
        return "Vous semblez éligible (" + ", ".join(v.met) + ")."
    return "Conditions vérifiées (" + ", ".join(v.met) + ") ; à vérifier : " + " ; ".join(v.missing) + "."
