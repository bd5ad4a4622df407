"""Aides-territoires connector: the national catalogue of aids, synchronised into a snapshot on disk.

API (../shared/reference/anchors.md §3): `POST /api/connexion/` with the `X-Auth-Token` header
gives `{"token": <JWT>}`, sent as `Authorization: Bearer` on `/api/aids/`, paginated by `page` and
`itemsPerPage` (100 at most) into `{count, previous, next, results}`. The JWT expires: a 401 renews
it once and the request is replayed. Transport errors and 5xx answers are retried with exponential
backoff; past the retries the sync fails.

A sync streams pages to a temporary file (memory bounded by one page), rejects malformed records one
by one with a clear line, and only once every page has arrived (as many records as the last page's
`count` announces) replaces the snapshot
(`aids.jsonl` + `snapshot.json` with its date and a hash per aid) with os.replace. A partial or failed
sync therefore changes and deletes nothing; a complete one reports which aids are new, changed and
removed since the previous snapshot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a client is made: the server reads snapshots, it never syncs (≈ 0.2 s of start-up)
    import httpx

ITEMS_PER_PAGE = 100  # the API's maximum
RETRIES = 4
BACKOFF_S = 0.5


class SyncError(RuntimeError):
    """The catalogue could not be read completely; the previous snapshot is untouched."""


class MalformedAid(ValueError):
    pass


@dataclass(frozen=True)
class Aid:
    """One aid as kept in the snapshot: the fields an answer needs, in the API's vocabulary."""

    id: str
    name: str
    url: str  # the aid's page on Aides-territoires
    financers: list[str]
    audiences: list[str]  # targeted_audiences: commune, epci, department, region, special…
    aid_types: list[str]  # grant, loan, recoverable_advance, technical_engineering…
    perimeter: str  # the perimeter's name, e.g. "Morbihan", "France"
    description: str
    submission_deadline: str | None  # ISO date
    recurrence: str | None  # oneoff, ongoing, recurring
    date_updated: str | None
    # Perimeter.SCALES_FOR_SEARCH name: Commune, EPCI, Département, Région, Pays, Métropole, Outre-mer,
    # Bassin hydrographique, Ad-hoc, Continent (anchors.md §3); None when the API does not say.
    perimeter_scale: str | None = None
    origin_url: str | None = None  # the financer's own page, when given (used to spot a curated twin)
    application_url: str | None = None
    eligibility: str = ""  # free-text conditions: never checked by a program (« à vérifier »)

    @classmethod
    def from_api(cls, raw: object) -> Aid:
        """Raises MalformedAid with the reason when a required field is missing or of the wrong type."""
        if not isinstance(raw, dict):
            raise MalformedAid("enregistrement qui n'est pas un objet JSON")
        for key in ("id", "name", "url"):
            if not raw.get(key):
                raise MalformedAid(f"champ « {key} » absent ou vide")
        if not isinstance(raw["name"], str) or not isinstance(raw["url"], str):
            raise MalformedAid("« name » et « url » doivent être du texte")

        def names(key: str) -> list[str]:
            value = raw.get(key) or []
            if not isinstance(value, list):
                raise MalformedAid(f"« {key} » doit être une liste")
            return [v if isinstance(v, str) else str(v.get("name", "")) for v in value if v]

        return cls(
            id=str(raw["id"]),
            name=raw["name"].strip(),
            url=raw["url"],
            financers=names("financers"),
            audiences=names("targeted_audiences"),
            aid_types=names("aid_types"),
            perimeter=str(raw.get("perimeter") or ""),
            description=str(raw.get("description") or ""),
            submission_deadline=raw.get("submission_deadline"),
            recurrence=raw.get("recurrence"),
            date_updated=raw.get("date_updated"),
            perimeter_scale=raw.get("perimeter_scale") or None,
            origin_url=raw.get("origin_url") or None,
            application_url=raw.get("application_url") or None,
            eligibility=str(raw.get("eligibility") or ""),
        )

    def content_hash(self) -> str:
        payload = json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class AidesTerritoiresClient:
    """Reads /api/aids/ page by page; `sleep` is injectable so tests do not wait out the backoff."""

    def __init__(
        self, base_url: str, token: str, http: httpx.Client | None = None,
        retries: int = RETRIES, backoff_s: float = BACKOFF_S, sleep: Callable[[float], None] = time.sleep,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = http or httpx.Client(timeout=30)
        self._retries, self._backoff_s, self._sleep = retries, backoff_s, sleep
        self._jwt: str | None = None
        self.renewals = 0

    def _authenticate(self) -> None:
        response = self._send("POST", f"{self.base_url}/api/connexion/", headers={"X-Auth-Token": self._token})
        if response.status_code in (401, 403):
            raise SyncError("jeton Aides-territoires refusé : vérifiez AIGUILLAGE_AIDES_TERRITOIRES_TOKEN")
        try:
            self._jwt = response.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise SyncError(f"réponse d'authentification inattendue ({response.status_code})") from None
        self.renewals += 1

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        """One request with retries on transport errors and 5xx answers (backoff × 2^attempt)."""
        import httpx

        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, url, **kwargs)
                if response.status_code < 500:
                    return response
                problem = f"erreur {response.status_code} du serveur"
            except httpx.TransportError as exc:
                problem = f"serveur injoignable ({exc.__class__.__name__})"
            if attempt < self._retries:
                self._sleep(self._backoff_s * 2**attempt)
        raise SyncError(f"Aides-territoires : {problem} après {self._retries + 1} tentatives ({url})")

    def _get(self, url: str, params: dict | None) -> dict:
        if self._jwt is None:
            self._authenticate()
        for _ in range(2):
            response = self._send("GET", url, params=params, headers={"Authorization": f"Bearer {self._jwt}"})
            if response.status_code != 401:
                break
            self._authenticate()  # the JWT expired: renew once and replay
        if response.status_code != 200:
            raise SyncError(f"Aides-territoires a répondu {response.status_code} pour {url}")
        try:
            return response.json()
        except ValueError:
            raise SyncError(f"réponse illisible (pas du JSON) pour {url}") from None

    def pages(self, params: dict | None = None) -> Iterator[tuple[int, list]]:
        """(count announced, results) for each page, following `next` links."""
        url: str | None = f"{self.base_url}/api/aids/"
        query: dict | None = {**(params or {}), "itemsPerPage": ITEMS_PER_PAGE}
        while url:
            page = self._get(url, query)
            results = page.get("results")
            if not isinstance(results, list):
                raise SyncError(f"page sans liste « results » ({url})")
            yield int(page.get("count") or 0), results
            url, query = page.get("next"), None  # `next` carries its own query string


@dataclass
class SyncReport:
    synced_at: str
    kept: int
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one French line per rejected record

    def summary(self) -> str:
        return (
            f"Aides-territoires synchronisé le {self.synced_at} : {self.kept} aides, {len(self.new)} nouvelle(s), "
            f"{len(self.changed)} modifiée(s), {len(self.removed)} retirée(s), {len(self.rejected)} rejetée(s)."
        )


def catalogue_dir(data_dir: Path) -> Path:
    return data_dir / "catalogue" / "aides-territoires"


def read_snapshot(data_dir: Path) -> dict | None:
    """{"synced_at", "count", "hashes": {aid id: hash}} of the last complete sync, or None."""
    path = catalogue_dir(data_dir) / "snapshot.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def aid_lines(data_dir: Path) -> Iterator[str]:
    """The JSON lines of the last complete sync's aids (Aid fields), one at a time, unparsed."""
    path = catalogue_dir(data_dir) / "aids.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            yield from lines


def read_aids(data_dir: Path) -> Iterator[Aid]:
    """The aids of the last complete sync, one at a time."""
    for line in aid_lines(data_dir):
        yield Aid(**json.loads(line))


ID_PREFIX = '{"id": '
ID_DECODER = json.JSONDecoder()


def line_id(line: str) -> str:
    """The id of a JSON line written from a dataclass whose first field is `id` (aids.jsonl,
    entries.jsonl), read without parsing the rest of the line. Raises ValueError otherwise."""
    if not line.startswith(ID_PREFIX):
        raise ValueError(f"ligne sans identifiant en tête : {line[:40]!r}")
    return ID_DECODER.raw_decode(line, len(ID_PREFIX))[0]


def sync(
    client: AidesTerritoiresClient, data_dir: Path, progress: bool = True,
    log: Callable[[str], None] = lambda _: None, params: dict | None = None,
) -> SyncReport:
    """Read the whole catalogue, then replace the snapshot; raises SyncError (snapshot untouched) on failure."""
    from tqdm import tqdm

    folder = catalogue_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    previous = (read_snapshot(data_dir) or {}).get("hashes", {})
    synced_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = SyncReport(synced_at, 0)
    hashes: dict[str, str] = {}
    tmp = folder / "aids.jsonl.tmp"
    bar = tqdm(desc="Aides-territoires", unit="aide", disable=not progress)
    received = announced = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for count, results in client.pages(params):
                bar.total = announced = count or None
                received += len(results)
                for raw in results:
                    try:
                        aid = Aid.from_api(raw)
                    except MalformedAid as exc:
                        ident = raw.get("id", "?") if isinstance(raw, dict) else "?"
                        line = f"Aide rejetée (id {ident}) : {exc}"
                        report.rejected.append(line)
                        log(line)
                        continue
                    if aid.id in hashes:
                        continue  # a page boundary moved during the sync: keep the first copy
                    hashes[aid.id] = aid.content_hash()
                    out.write(json.dumps(aid.__dict__, ensure_ascii=False) + "\n")
                bar.update(len(results))
            if announced and received < announced:  # the pages stopped early: a partial catalogue deletes nothing
                raise SyncError(f"synchronisation incomplète : {received} aides reçues sur {announced} annoncées")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    os.replace(tmp, folder / "aids.jsonl")
    snapshot = {"synced_at": synced_at, "count": len(hashes), "hashes": hashes}
    (folder / "snapshot.json.tmp").write_text(json.dumps(snapshot, ensure_ascii=False), encoding="utf-8")
    os.replace(folder / "snapshot.json.tmp", folder / "snapshot.json")
    report.kept = len(hashes)
    report.new = sorted(set(hashes) - set(previous))
    report.changed = sorted(i for i in hashes if i in previous and previous[i] != hashes[i])
    report.removed = sorted(set(previous) - set(hashes))
    return report
