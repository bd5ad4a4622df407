"""evals/datasets/questions-parlementaires.csv: real written questions of the Assemblée nationale and
the Sénat, labelled by the rule of evals/datasets/README.md, held out of the scope model's training
except for the houses of assistant/scope/data.py PARLIAMENT_TRAINED."""

from __future__ import annotations

import csv
from collections import Counter
from urllib.parse import urlparse

import pytest

from assistant.scope import data as D
from assistant.scope.doors import LOCAL_GOVERNMENT_DOORS

LABELS = {"projet", "collectivite-autre", "particulier", D.NATIONAL}
# The house of a question, from the site that stores it (the houses' own sites, and the Regards Citoyens
# mirrors nosdeputes.fr / nossenateurs.fr of their written questions).
HOUSE_OF_SITE = {"assemblee-nationale.fr": "an", "nosdeputes.fr": "an", "senat.fr": "senat", "nossenateurs.fr": "senat"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with D.PARLIAMENTARY.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def _site(url: str) -> str:
    host = urlparse(url).hostname.rstrip(".")
    return next(site for site in HOUSE_OF_SITE if host == site or host.endswith("." + site))


def test_the_dataset_loads_with_its_columns_and_size(rows):
    assert rows and list(rows[0]) == ["id", "question", "label", "door", "rubrique", "url", "source", "forme", "titre"]
    assert len(rows) >= 150
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["question"].strip().lower() for r in rows}) == len(rows), "a question appears twice"
    assert all(r["question"].strip() and r["forme"] in {"titre", "phrase"} for r in rows)


def test_labels_and_doors_are_from_the_closed_sets(rows):
    for r in rows:
        assert r["label"] in LABELS, r
        if r["label"] == "collectivite-autre":
            assert r["door"] in LOCAL_GOVERNMENT_DOORS, r
        else:
            assert r["door"] == "", r
    counts = Counter(r["label"] for r in rows)
    # projects are rare among the stored written questions (README: 14 of 150); both kinds are measured
    assert counts["collectivite-autre"] >= 100 and counts["projet"] >= 10, counts


def test_every_row_has_the_url_of_its_house(rows):
    for r in rows:
        url = urlparse(r["url"])
        assert url.scheme in {"http", "https"} and url.path not in {"", "/"}, r
        assert r["source"] == HOUSE_OF_SITE[_site(r["url"])], r
    assert {r["source"] for r in rows} == {"an", "senat"}


def test_the_loader_keeps_national_policy_out_and_holds_out_the_untrained_houses(rows):
    examples = D.parliamentary_questions()
    national = sum(r["label"] == D.NATIONAL for r in rows)
    assert len(examples) == len(rows) - national and D.parliamentary_national() == national
    assert {e.label for e in examples} <= set(D.CLASSES)
    for e in examples:
        house = e.source.removeprefix("parlement-")
        assert e.split == ("train" if house in D.PARLIAMENT_TRAINED else "test")
        assert (e.door == "particulier") == (e.label == "particulier")
    # at least one house is never trained on: its questions stay a held-out measure
    assert {"an", "senat"} - set(D.PARLIAMENT_TRAINED)
