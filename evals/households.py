"""Households' aids and wording-only offers among the referrals of a collectivity's own works.

    python -m evals.households                 # builds an index of the repository's corpus, then asks (minutes)
    python -m evals.households --sample 400    # titles per part (default SAMPLE)

A household's aid (eligibility.beneficiaries residents: MaPrimeAdapt', MaPrimeRénov', Denormandie…) is paid
to residents, never to the collectivity; an offer the door marks `wording_only` meets the question by a word
alone (« école » and the École du Renouvellement Urbain). Neither is a referral for the collectivity's own
works. Counted per source, never mixed, on a fixed-seed sample of SAMPLE titles per part:
- DETR/DSIL 2018 commune and EPCI titles (funded works on their own assets), split by département into the
  part the door floors were tuned on and the part they were not (evals/door_training.tune_half), asked with
  the widget's profile (type from `echelon`, département) and typed with no profile;
- Fonds vert 2023 titles, asked alone as the evaluation asks them (evals/run.py).
Per part: the share of titles with a household's aid among the referrals, by position (1st, 2nd…), the
share with a wording-only offer among them, and the offers concerned. Then the opposite kind, which must
keep working: the gold questions (evals/datasets/gold.jsonl) whose primary offer is a household's aid or an
Anah offer (a collectivity helping its inhabitants), asked with no profile: the primary among the referrals.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from evals.door_training import tune_half
from evals.place_themes import ECHELONS, _read, service

SEED, SAMPLE = 2018, 300
GOLD = Path(__file__).resolve().parent / "datasets" / "gold.jsonl"


def title_parts(sample: int, measures: dict[str, list[str]]) -> dict[str, list[dict]]:
    """{part: rows} with rows {"text", "profile": (type, département) or None}: DETR/DSIL held out / tuned
    (each asked with the profile and without), Fonds vert (alone, with `wanted`: the themes its measure names in
    `measures`, corpus/themes.yaml fonds_vert_measures); `sample` rows per part, fixed seed."""
    dot: dict[str, list[dict]] = {"dotations_held_out": [], "dotations_tuned": []}
    for r in _read("dotations-2018-projets.csv"):
        if r["echelon"] in ECHELONS and r["titre"].strip():
            dot["dotations_tuned" if tune_half(r["departement"]) else "dotations_held_out"].append(
                {"text": r["titre"].strip(), "profile": (ECHELONS[r["echelon"]], r["departement"])})
    fv = [{"text": r["nom_du_projet"].strip(), "profile": None, "wanted": set(measures.get(r["nom_demarche_ds"].strip(), ()))}
          for r in _read("fonds-vert-2023-projets.csv") if r["nom_du_projet"].strip()]
    rng = random.Random(SEED)
    parts = {k: rng.sample(v, min(sample, len(v))) for k, v in dot.items()}
    parts |= {f"{k}_no_profile": [r | {"profile": None} for r in v] for k, v in list(parts.items())}
    parts["fonds_vert"] = rng.sample(fv, min(sample, len(fv)))
    return parts


def measure(assistant, rows: list[dict]) -> dict:
    """Shares of `rows` with a household's aid / a wording-only offer among the referrals, by position; on rows
    with `wanted` themes (Fonds vert), the wording-only offers shown that carry one (`wording_only_right`) and
    those that are the only such offer of the first three referrals (`wording_only_only_right`): what hiding
    them would cost."""
    from assistant.profile import Profile

    residents_at, wording_at, offers, residents, wording = Counter(), Counter(), Counter(), [], []
    right = only_right = 0
    for row in rows:
        profile = Profile(collectivity_type=row["profile"][0], departement_code=row["profile"][1]) if row["profile"] else None
        referrals = assistant.chat(row["text"], None, profile).referrals
        for position, ref in enumerate(referrals, 1):
            if ref.offer.eligibility.beneficiaries == "residents":
                residents_at[position] += 1
                offers[ref.offer.id] += 1
                residents.append((row["text"], position, ref.offer.id))
            if "wording_only" in ref.hit.adjustments:
                wording_at[position] += 1
                offers[ref.offer.id] += 1
                wording.append((row["text"], position, ref.offer.id))
                if row.get("wanted") and set(ref.offer.themes) & row["wanted"]:
                    right += 1
                    only_right += position <= 3 and not any(set(r.offer.themes) & row["wanted"]
                                                            for r in referrals[:3] if r is not ref)
    n = max(len(rows), 1)
    return {"n": len(rows),
            "residents_among": round(sum(residents_at.values()) / n, 4), "residents_by_position": dict(sorted(residents_at.items())),
            "wording_only_among": round(sum(wording_at.values()) / n, 4), "wording_only_by_position": dict(sorted(wording_at.items())),
            "wording_only_right": right, "wording_only_only_right": only_right,
            "offers": dict(offers.most_common()), "residents": residents, "wording_only": wording[:40]}


def inhabitants_help(assistant) -> dict:
    """Gold questions whose primary offer is a household's aid or an Anah offer: the primary among the
    referrals (asked with no profile, each turn of a dialogue in its conversation)."""
    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    offers = assistant.offers
    rows = []
    for case in cases:
        primary = case.get("expected", {}).get("primary", [])
        if not any(p in offers and (offers[p].eligibility.beneficiaries == "residents" or offers[p].partner == "anah")
                   for p in primary):
            continue
        conversation, result = None, None
        for turn in case["turns"]:
            result = assistant.chat(turn, conversation)
            conversation = result.conversation_id
        ids = [r.offer.id for r in result.referrals] if result else []
        rows.append({"id": case["id"], "primary": primary, "offers": ids, "kind": result.kind if result else None,
                     "primary_among": any(p in ids for p in primary)})
    return {"n": len(rows), "primary_among": round(sum(r["primary_among"] for r in rows) / max(len(rows), 1), 4),
            "missed": [r for r in rows if not r["primary_among"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=SAMPLE)
    args = parser.parse_args()
    assistant, _ = service()
    parts = title_parts(args.sample, assistant.themes.fonds_vert_measures)
    out = {part: measure(assistant, rows) for part, rows in parts.items()}
    out["inhabitants_help_gold"] = inhabitants_help(assistant)
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
