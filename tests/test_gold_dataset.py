"""Structure of the hand-written answer-quality dataset evals/datasets/gold.jsonl."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "evals" / "datasets" / "gold.jsonl"
OFFERS = ROOT / "corpus" / "offers"

FIELDS = {"id", "split", "kind", "persona", "turns", "expected", "checks", "notes"}
EXPECTED_FIELDS = {"primary", "acceptable", "partners"}
SPLITS = {"dev", "test"}
KINDS = {"single", "out_of_scope", "adversarial", "multi_turn"}
CHECKS = {"refusal", "correction", "no_invention", "clarification_first", "closed_flag"}
PARTNERS = {"anct", "ademe", "cerema", "anru", "anah", "banque-des-territoires", "etat"}
PREFIX_TO_PARTNER = {
    "anct": "anct",
    "ademe": "ademe",
    "cerema": "cerema",
    "anru": "anru",
    "anah": "anah",
    "bdt": "banque-des-territoires",
    "etat": "etat",
}
KIND_MINIMUMS = {"single": 130, "out_of_scope": 22, "adversarial": 17, "multi_turn": 16}
MIN_CASES = 200
MIN_CARDS_FOR_ID_CHECK = 90
OFFER_ID = re.compile(r"^(anct|ademe|cerema|anru|anah|bdt|etat)-[a-z0-9]+(-[a-z0-9]+)*$")


def load_lines() -> list[str]:
    return [line for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return [json.loads(line) for line in load_lines()]


def test_every_line_is_a_json_object():
    lines = load_lines()
    assert lines, "gold.jsonl est vide"
    for number, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - message only
            pytest.fail(f"ligne {number} : JSON invalide ({exc})")
        assert isinstance(obj, dict), f"ligne {number} : pas un objet JSON"


def test_minimum_size(cases):
    assert len(cases) >= MIN_CASES


def test_ids_are_sequential(cases):
    assert [c["id"] for c in cases] == [f"g{i:03d}" for i in range(1, len(cases) + 1)]


def test_fields_and_allowed_values(cases):
    for c in cases:
        cid = c.get("id")
        assert set(c) == FIELDS, f"{cid}: champs {sorted(set(c) ^ FIELDS)}"
        assert c["split"] in SPLITS, cid
        assert c["kind"] in KINDS, cid
        assert isinstance(c["persona"], str) and c["persona"].strip(), cid
        assert isinstance(c["notes"], str) and c["notes"].strip(), cid
        assert isinstance(c["turns"], list) and all(isinstance(t, str) and t.strip() for t in c["turns"]), cid
        if c["kind"] == "multi_turn":
            assert 2 <= len(c["turns"]) <= 3, cid
        else:
            assert len(c["turns"]) == 1, cid
        assert isinstance(c["checks"], list) and set(c["checks"]) <= CHECKS, cid
        assert len(set(c["checks"])) == len(c["checks"]), cid
        if "clarification_first" in c["checks"]:
            assert c["kind"] == "multi_turn", cid

        exp = c["expected"]
        assert set(exp) == EXPECTED_FIELDS, cid
        for key in EXPECTED_FIELDS:
            assert isinstance(exp[key], list), cid
        for offer_id in exp["primary"] + exp["acceptable"]:
            assert OFFER_ID.match(offer_id), f"{cid}: id d'offre mal formé {offer_id}"
        assert not set(exp["primary"]) & set(exp["acceptable"]), cid
        assert len(exp["acceptable"]) <= 4, cid
        assert set(exp["partners"]) <= PARTNERS, cid

        if c["kind"] == "out_of_scope" or "refusal" in c["checks"]:
            assert exp == {"primary": [], "acceptable": [], "partners": []}, cid
        else:
            assert 1 <= len(exp["primary"]) <= 2, cid
        expected_partners = {PREFIX_TO_PARTNER[o.split("-", 1)[0]] for o in exp["primary"]}
        assert set(exp["partners"]) == expected_partners, cid


def test_kind_minimums(cases):
    counts = Counter(c["kind"] for c in cases)
    for kind, minimum in KIND_MINIMUMS.items():
        assert counts[kind] >= minimum, f"{kind}: {counts[kind]} < {minimum}"


def test_out_of_scope_cases_require_refusal(cases):
    for c in cases:
        if c["kind"] == "out_of_scope":
            assert "refusal" in c["checks"], c["id"]


def test_both_splits_contain_every_kind(cases):
    pairs = {(c["split"], c["kind"]) for c in cases}
    for split in SPLITS:
        for kind in KINDS:
            assert (split, kind) in pairs, f"aucun cas {kind} dans {split}"


def test_dev_share_is_about_forty_percent(cases):
    for kind in KINDS:
        of_kind = [c for c in cases if c["kind"] == kind]
        share = sum(c["split"] == "dev" for c in of_kind) / len(of_kind)
        assert 0.3 <= share <= 0.5, f"{kind}: part dev {share:.2f}"


def card_ids() -> set[str]:
    return {path.stem for path in OFFERS.glob("*/*.yaml")}


@pytest.mark.skipif(
    len(card_ids()) < MIN_CARDS_FOR_ID_CHECK,
    reason=f"corpus en cours d'écriture (moins de {MIN_CARDS_FOR_ID_CHECK} fiches)",
)
def test_expected_offer_ids_exist_as_cards(cases):
    known = card_ids()
    missing = sorted(
        {(c["id"], o) for c in cases for o in c["expected"]["primary"] + c["expected"]["acceptable"] if o not in known}
    )
    assert not missing, f"ids sans fiche corpus/offers/*/<id>.yaml : {missing}"
