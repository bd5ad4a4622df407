"""A fake Aides-territoires API on 127.0.0.1, with the real response shape, fed by the 274 public aids.

The CSV has no perimeter column: `perimeter_of` derives one from the financer where it names its
territory (« Conseil départemental du Morbihan » -> Morbihan, Département; « Établissement public
foncier d'Occitanie » -> Occitanie, Région; ID77 -> Seine-et-Marne), « France » (Pays) otherwise. Generated
aids (the scale bench) take their perimeters in turn from the territory tables: France, a région, a
département, an EPCI, a commune (named with its département).

Routes: POST /api/connexion/ (X-Auth-Token -> {"token": JWT}) and GET /api/aids/?page=&itemsPerPage=
-> {count, previous, next, results}. Knobs a test turns: `jwt_lifetime` (requests a JWT answers before
it expires with 401), `fail_pages` (page numbers answering 503 once each, or always with `fail_always`),
`aids` (the list served: remove one, add a malformed record), `last_page` (a catalogue cut short).
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

CSV = Path(__file__).parent / "datasets" / "aides-territoires" / "aides-territoires_periurbain.csv"
TOKEN = "jeton-de-test"
AUDIENCES = {
    "Communes": "commune", "Intercommunalités / Pays": "epci", "Départements": "department", "Régions": "region",
    "Collectivités d'outre-mer à statuts particuliers": "special", "Associations": "association",
    "Particuliers": "private_person", "Agriculteurs": "farmer", "Entreprises privées": "private_sector",
    "Entreprises publiques locales (Sem, Spl, SemOp)": "public_cies",
    "Établissements publics (écoles, bibliothèques…) / Services de l'État": "public_org", "Recherche": "researcher",
}
AID_TYPES = {
    "Subvention": "grant", "Prêt": "loan", "Avance récupérable": "recoverable_advance",
    "Certificat d'économie d'énergie (CEE)": "cee", "Autre aide financière": "other",
    "Ingénierie technique": "technical_engineering", "Ingénierie financière": "financial_engineering",
    "Ingénierie Juridique / administrative": "legal_engineering",
}
RECURRENCE = {"Permanente": "ongoing", "Ponctuelle": "oneoff", "Récurrente": "recurring"}


DEPARTEMENT_AGENCIES = {"ID77": "Seine-et-Marne"}


@functools.cache
def _tables():
    from assistant.territory import Territories

    return Territories.load(Path(__file__).parents[1] / "corpus")


def perimeter_of(financers: list[str]) -> tuple[str, str]:
    """(perimeter, perimeter_scale) of a public aid: the first département, then région, its financers
    name (« Syndicat départemental d'énergies du Calvados » -> Calvados), else France."""
    from assistant.territory import normalize

    tables = _tables()
    for financer in financers:
        if financer in DEPARTEMENT_AGENCIES:
            return DEPARTEMENT_AGENCIES[financer], "Département"
        folded = f" {normalize(financer)} "
        for d in tables.departements.values():
            if re.search(rf" (?:du|de la|de l|des|de|d) {re.escape(normalize(d.name))} ", folded):
                return d.name, "Département"
        for r in tables.regions.values():
            if f" {normalize(r.name)} " in folded:
                return r.name, "Région"
    return "France", "Pays"


@functools.cache
def _territory_perimeters() -> list[tuple[str, str]]:
    """Perimeters for generated aids, in a fixed order: France, then régions, départements, EPCI, communes in turn."""
    tables = _tables()
    regions = [(r.name, "Région") for r in sorted(tables.regions.values(), key=lambda r: r.code)]
    departements = [(d.name, "Département") for d in sorted(tables.departements.values(), key=lambda d: d.code)]
    epcis = [(e.name, "EPCI") for e in sorted(tables.epcis.values(), key=lambda e: e.siren)]
    communes = [(f"{c.name} ({c.departement})", "Commune") for c in sorted(tables.communes.values(), key=lambda c: c.code)]
    cycle = []
    for i in range(max(len(regions), len(departements), len(epcis))):
        cycle.append(("France", "Pays"))
        for group in (regions, departements, epcis):
            cycle.append(group[i % len(group)])
        cycle.append(communes[(i * 97) % len(communes)])
    return cycle


def _split(value: str) -> list[str]:
    return [v for v in value.split(";") if v]


def public_aids() -> list[dict]:
    """The 274 aids of the CSV in the /api/aids/ result shape."""
    aids = []
    with CSV.open(encoding="utf-8") as rows:
        for number, row in enumerate(csv.DictReader(rows), start=1):
            day, month, year = (row["Date Clôture"].split("/") + ["", "", ""])[:3]
            financers = _split(row["Financeurs"])
            perimeter, scale = perimeter_of(financers)
            aids.append({
                "id": number,
                "slug": row["Lien"].rstrip("/").rsplit("/", 1)[-1],
                "url": row["Lien"],
                "name": row["Nom"],
                "financers": financers,
                "targeted_audiences": [AUDIENCES[a] for a in _split(row["Bénéficiaire"])],
                "aid_types": [AID_TYPES[t] for t in _split(row["Types d'aides"])],
                "is_call_for_project": row["AAP/AMI"] == "Oui",
                "recurrence": RECURRENCE.get(row["Récurrence"]),
                "description": row["Descriptif"],
                "submission_deadline": f"{year}-{month}-{day}" if year else None,
                "perimeter": perimeter,
                "perimeter_scale": scale,
                "date_updated": "2022-10-01T00:00:00+02:00",
            })
    return aids


def generated_aids(total: int) -> list[dict]:
    """The public aids, then variants of them (new ids, names, perimeters) up to `total`, for the scale bench."""
    base = public_aids()
    aids = list(base)
    perimeters = _territory_perimeters()
    for number, aid in zip(range(len(base) + 1, total + 1), itertools.cycle(base)):
        perimeter, scale = perimeters[number % len(perimeters)]
        aids.append({**aid, "id": number, "name": f"{aid['name']} (variante {number})", "url": f"{aid['url']}?v={number}",
                     "perimeter": perimeter, "perimeter_scale": scale})
    return aids[:total]


class FakeAidesTerritoires:
    def __init__(self, aids: list[dict] | None = None):
        self.aids = public_aids() if aids is None else aids
        self.jwt_lifetime = 1000
        self.fail_pages: set[int] = set()
        self.fail_always = False
        self.last_page: int | None = None  # a page that says there is no next one, however many aids remain
        self.requests: list[str] = []
        self._jwts = itertools.count(1)
        self._live: dict[str, int] = {}  # JWT -> requests it may still answer
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAidesTerritoires:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                fake.requests.append(f"POST {self.path}")
                if urlparse(self.path).path != "/api/connexion/":
                    return self._send(404, {"detail": "not found"})
                if self.headers.get("X-Auth-Token") != TOKEN:
                    return self._send(401, {"detail": "invalid token"})
                jwt = f"jwt-{next(fake._jwts)}"
                fake._live[jwt] = fake.jwt_lifetime
                self._send(200, {"token": jwt})

            def do_GET(self) -> None:
                fake.requests.append(f"GET {self.path}")
                url = urlparse(self.path)
                if url.path != "/api/aids/":
                    return self._send(404, {"detail": "not found"})
                jwt = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if fake._live.get(jwt, 0) <= 0:
                    return self._send(401, {"detail": "Expired JWT Token"})
                fake._live[jwt] -= 1
                query = parse_qs(url.query)
                page = int(query.get("page", ["1"])[0])
                size = min(100, int(query.get("itemsPerPage", ["30"])[0]))
                if page in fake.fail_pages:
                    if not fake.fail_always:
                        fake.fail_pages.discard(page)
                    return self._send(503, {"detail": "Service Unavailable"})
                start = (page - 1) * size
                results = fake.aids[start : start + size]
                more = start + size < len(fake.aids) and page != fake.last_page
                base = f"{fake.url}/api/aids/?itemsPerPage={size}&page="
                self._send(200, {
                    "count": len(fake.aids),
                    "previous": f"{base}{page - 1}" if page > 1 else None,
                    "next": f"{base}{page + 1}" if more else None,
                    "results": results,
                })

        return Handler
