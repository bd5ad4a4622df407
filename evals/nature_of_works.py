"""Works whose nature no partner funds (accessibility, mise aux normes, charging points): who leads the answer.

    python -m evals.nature_of_works             # builds an index of the repository's corpus, a few minutes

The 2018 DETR/DSIL titles of commune and EPCI projects about accessibility, mise aux normes / mise en
conformité or charging points (PATTERN, on the folded title), of the départements no door model nor theme
was tuned on (evals/door_training.tune_half: crc32 of the code, odd = reported) and of those it was, never
mixed; a fixed-seed sample of SAMPLE per part. Each title is asked as the evaluation asks it
(evals/realdata.py): with the widget's profile (type from `echelon`, département), then typed with no
profile. Reported per part: the share led by DETR or DSIL (the everyday door: these titles were funded
by it) or by an offer that carries the theme of the nature (none but DETR/DSIL in the corpus, per
offers-facts.md), the share led by an offer paid to households (eligibility.beneficiaries = residents),
by the Fonds vert energy renovation, and the share answered by a question alone.
"""

from __future__ import annotations

import json
import random
import re

from assistant.text import fold
from evals.door_training import tune_half
from evals.place_themes import ECHELONS, GRANTS, _read, service

PATTERN = re.compile(r"accessib|\bpmr\b|mise aux normes?|mise en conformite|borne.{0,20}recharge|infrastructures? de recharge"
                     r"|points? de (re)?charge|\birve\b")
NATURE_THEMES = {"accessibilite-normes-batiments", "vehicules-electriques"}
FONDS_VERT_ENERGY = "etat-fonds-vert-renovation-batiments-publics"
SEED, SAMPLE = 2018, 120


def rows() -> dict[str, list[dict]]:
    """{"held_out": [...], "tuned": [...]}: commune/EPCI titles matching PATTERN, SAMPLE of each (fixed seed)."""
    parts: dict[str, list[dict]] = {"held_out": [], "tuned": []}
    for row in _read("dotations-2018-projets.csv"):
        if row["echelon"] in ECHELONS and PATTERN.search(fold(row["titre"])):
            parts["tuned" if tune_half(row["departement"]) else "held_out"].append(row)
    rng = random.Random(SEED)
    return {k: rng.sample(v, min(SAMPLE, len(v))) for k, v in parts.items()}


def measure(assistant, offers, sample: list[dict]) -> dict:
    from assistant.profile import Profile

    out = {"n": len(sample)}
    for asker in ("widget_profile", "no_profile"):
        led = household = energy = question_only = 0
        for row in sample:
            profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"]) if asker == "widget_profile" else None
            ids = [r.offer.id for r in assistant.chat(row["titre"], None, profile).referrals]
            first = offers[ids[0]] if ids else None
            led += bool(first) and (first.id in GRANTS or bool(set(first.themes) & NATURE_THEMES))
            household += bool(first) and first.eligibility.beneficiaries == "residents"
            energy += bool(first) and first.id == FONDS_VERT_ENERGY
            question_only += not ids
        n = max(len(sample), 1)
        out[asker] = {"led_by_door_or_nature_offer": round(led / n, 3), "led_by_household_offer": round(household / n, 3),
                      "led_by_fonds_vert_energy": round(energy / n, 3), "question_only": round(question_only / n, 3)}
    return out


def main() -> None:
    assistant, offers = service()
    print(json.dumps({part: measure(assistant, offers, sample) for part, sample in rows().items()}, indent=1))


if __name__ == "__main__":
    main()
