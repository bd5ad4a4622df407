"""« Autres pistes » (the offers after the first) are a calibrated decision: an offer there needs the
evidence `evidence_other_leads` (assistant/models/everyday.json, chosen on the tune questions by
evals/door_training.py) unless a door vouches for it or the question names it. Measured here on questions
never tuned on — portes.csv's test split, portes-tenus.csv and the gold test cases — against the same
assistant without that threshold: fewer unrelated « Autres pistes », the relevant ones kept."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

from assistant.profile import Profile

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
VOUCHED = {"everyday_door", "door_complement", "named"}
RELEVANT_KEPT = 0.9  # the calibration keeps 95 % on the tune questions; a little less where never tuned


def _questions(signposts) -> list[tuple[str, Profile, set[str]]]:
    """(question, profile, admitted offers) of every held-out door question and gold test case."""
    found = []
    for name in ("portes.csv", "portes-tenus.csv"):
        with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                if row["split"] == "test":
                    admitted = set(row["offres_admises"].split()) | set(signposts[row["porte"]].complements)
                    found.append((row["question"], Profile(collectivity_type=row["type"],
                                                           departement_code=row["departement"]), admitted))
    for line in (DATASETS / "gold.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line) if line.strip() else None
        if case and case["kind"] == "single" and case["split"] == "test":
            found.append((case["turns"][-1], Profile(), set(case["expected"]["primary"]) | set(case["expected"]["acceptable"])))
    return found


def _other_leads(assistant, questions) -> tuple[int, int]:
    """(unrelated, relevant) offers shown after the first, not vouched for by a door nor named."""
    unrelated = relevant = 0
    for question, profile, admitted in questions:
        result = assistant.chat(question, None, profile)
        adjustments = {h.offer.id: h.adjustments for h in result.candidates}
        for referral in result.referrals[1:]:
            if not VOUCHED & set(adjustments.get(referral.offer.id, {})):
                relevant += referral.offer.id in admitted
                unrelated += referral.offer.id not in admitted
    return unrelated, relevant


def test_other_leads_need_calibrated_evidence_on_questions_never_tuned_on(assistant):
    from ingest.corpus import load_corpus

    model = assistant.everyday
    assert model.evidence_other_leads > model.evidence_floor  # calibrated, above the weak-evidence floor
    questions = _questions(load_corpus(assistant.settings.corpus_dir).signposts)
    calibrated = _other_leads(assistant, questions)
    assistant.__dict__["everyday"] = replace(model, evidence_other_leads=0.0)
    try:
        before = _other_leads(assistant, questions)
    finally:
        assistant.__dict__["everyday"] = model
    assert calibrated[0] < before[0], (calibrated, before)
    assert calibrated[1] >= RELEVANT_KEPT * before[1], (calibrated, before)
