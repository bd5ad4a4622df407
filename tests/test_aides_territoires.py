"""The Aides-territoires connector against a fake API on 127.0.0.1 serving the 274 public aids."""

from __future__ import annotations

import pytest

from ingest.aides_territoires import AidesTerritoiresClient, SyncError, read_aids, read_snapshot, sync
from evals.fake_aides_territoires import TOKEN, FakeAidesTerritoires


@pytest.fixture
def fake():
    with FakeAidesTerritoires() as server:
        yield server


def client_for(fake, token: str = TOKEN) -> AidesTerritoiresClient:
    return AidesTerritoiresClient(fake.url, token, sleep=lambda _: None)


def test_full_sync_reads_every_page_and_keeps_what_an_answer_needs(fake, tmp_path):
    report = sync(client_for(fake), tmp_path, progress=False)
    assert report.kept == 274 and len(report.new) == 274 and not report.rejected
    pages = [r for r in fake.requests if r.startswith("GET /api/aids/")]
    assert len(pages) == 3 and "itemsPerPage=100" in pages[0]  # 100 + 100 + 74, by the `next` links
    aids = {a.id: a for a in read_aids(tmp_path)}
    epf = next(a for a in aids.values() if a.name == "Accompagner la revitalisation des centres anciens")
    assert epf.financers == ["Établissement public foncier d'Occitanie (EPF)"]
    assert {"commune", "epci"} <= set(epf.audiences) and "technical_engineering" in epf.aid_types
    assert epf.url.startswith("https://aides-territoires.beta.gouv.fr/aides/")
    assert read_snapshot(tmp_path)["synced_at"] == report.synced_at


def test_an_expired_jwt_is_renewed_and_the_page_replayed(fake, tmp_path):
    fake.jwt_lifetime = 1  # each JWT answers one page, then 401
    client = client_for(fake)
    report = sync(client, tmp_path, progress=False)
    assert report.kept == 274 and client.renewals == 3
    assert sum(r == "POST /api/connexion/" for r in fake.requests) == 3


def test_a_wrong_token_is_a_clear_error(fake, tmp_path):
    with pytest.raises(SyncError, match="AIGUILLAGE_AIDES_TERRITOIRES_TOKEN"):
        sync(client_for(fake, "mauvais"), tmp_path, progress=False)


def test_a_5xx_mid_sync_is_retried(fake, tmp_path):
    fake.fail_pages = {2}
    assert sync(client_for(fake), tmp_path, progress=False).kept == 274
    assert sum("page=2" in r for r in fake.requests) == 2


def test_a_sync_that_fails_midway_changes_and_deletes_nothing(fake, tmp_path):
    sync(client_for(fake), tmp_path, progress=False)
    before = read_snapshot(tmp_path)
    del fake.aids[0]
    fake.fail_pages, fake.fail_always = {3}, True
    with pytest.raises(SyncError, match="503"):
        sync(client_for(fake), tmp_path, progress=False)
    assert read_snapshot(tmp_path) == before and sum(1 for _ in read_aids(tmp_path)) == 274
    assert not list((tmp_path / "catalogue" / "aides-territoires").glob("*.tmp"))


def test_pages_that_stop_before_the_announced_count_are_a_partial_sync_that_deletes_nothing(fake, tmp_path):
    sync(client_for(fake), tmp_path, progress=False)
    before = read_snapshot(tmp_path)
    fake.last_page = 2  # 200 of 274 aids, then no `next` link
    with pytest.raises(SyncError, match="200 aides reçues sur 274 annoncées"):
        sync(client_for(fake), tmp_path, progress=False)
    assert read_snapshot(tmp_path) == before and sum(1 for _ in read_aids(tmp_path)) == 274


def test_removed_and_changed_aids_are_reported_on_the_next_sync(fake, tmp_path):
    sync(client_for(fake), tmp_path, progress=False)
    removed = fake.aids.pop(5)
    fake.aids[0] = {**fake.aids[0], "description": "Nouvelle description."}
    report = sync(client_for(fake), tmp_path, progress=False)
    assert report.removed == [str(removed["id"])] and report.changed == [str(fake.aids[0]["id"])] and not report.new
    assert str(removed["id"]) not in {a.id for a in read_aids(tmp_path)}


def test_a_malformed_record_is_rejected_with_a_clear_line_and_the_rest_kept(fake, tmp_path):
    fake.aids.insert(150, {"id": 9999, "name": "", "url": "https://aides-territoires.beta.gouv.fr/aides/x/"})
    fake.aids.insert(10, {"id": 9998, "name": "Aide", "url": "https://x.example/", "financers": "pas une liste"})
    lines = []
    report = sync(client_for(fake), tmp_path, progress=False, log=lines.append)
    assert report.kept == 274
    assert lines == ["Aide rejetée (id 9998) : « financers » doit être une liste",
                     "Aide rejetée (id 9999) : champ « name » absent ou vide"]


def test_the_sync_command_prints_its_summary_and_a_missing_token_is_explained(fake, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(tmp_path), "AIGUILLAGE_AIDES_TERRITOIRES_URL": fake.url}
    env.pop("AIGUILLAGE_AIDES_TERRITOIRES_TOKEN", None)
    command = [sys.executable, "-m", "assistant.cli", "catalogue", "sync", "aides-territoires"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "AIGUILLAGE_AIDES_TERRITOIRES_TOKEN est requis" in missing.stderr
    done = subprocess.run(command, env={**env, "AIGUILLAGE_AIDES_TERRITOIRES_TOKEN": TOKEN},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "274 aides, 274 nouvelle(s)" in done.stdout
    assert "Catalogue indexé" in done.stdout and "274 encodée(s)" in done.stdout
    assert "Aides-territoires: 100%" in done.stderr  # the progress bar, on stderr


@pytest.mark.slow
def test_a_full_sync_of_10000_aids_streams_its_pages(tmp_path):
    """Memory bounded by a page: from 1,000 to 10,000 aids the sync's peak grows by its per-aid table of
    ids and hashes (300 to 370 bytes an aid), far from what holding the 9,000 extra aids as the records it
    writes would take (measured here by reading them back: ≈ 3.5 kB each). The former bound, 400 bytes an
    aid, failed about one run in two once an earlier test had warmed the process up."""
    import tracemalloc

    from evals.fake_aides_territoires import generated_aids

    with FakeAidesTerritoires(generated_aids(100)) as server:  # first use (imports, caches), not measured:
        sync(client_for(server), tmp_path / "warm", progress=False)  # run alone, it weighed 1.9 MB on the 1,000
    peaks = {}
    for total in (1000, 10_000):
        with FakeAidesTerritoires(generated_aids(total)) as server:
            tracemalloc.start()
            report = sync(client_for(server), tmp_path / str(total), progress=False)
            peaks[total] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert report.kept == total and sum(1 for _ in read_aids(tmp_path / str(total))) == total
    tracemalloc.start()
    held = list(read_aids(tmp_path / "10000"))
    per_aid_held = tracemalloc.get_traced_memory()[0] / len(held)
    tracemalloc.stop()
    del held
    grown = peaks[10_000] - peaks[1000]
    assert grown < 9000 * per_aid_held / 4, (peaks, per_aid_held)  # far under the 9,000 extra aids held in memory
