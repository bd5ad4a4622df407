"""Real wording: the everyday door on the 2018 DETR/DSIL titles and the doors beyond the partners.

Called once by evals/run.py (`realdata_block`). Figures (keys of `assistant.realdata.*`):
- dotations.grant_among_referrals — DETR or DSIL among the referrals of a real commune/EPCI project
  title, the profile given as the widget would (type from `echelon`, département from `departement`);
- dotations.grant_first — DETR or DSIL the first referral of the same titles (a partner offer serving the
  title's object may rightly lead: not a target of 1), and `grant_first_no_theme` on the titles where no
  theme is detected (ordinary works no partner offer serves: the everyday grants should lead);
- dotations.residents_first — a household's aid (beneficiaries residents: MaPrimeRénov', Denormandie…) the
  first referral of a collectivity's works title (target 0);
- dotations.residents_beside — a household's aid sharing no theme with the title among its referrals, at any
  place (target 0: the collectivity is not its beneficiary; door.beside_the_question);
- dotations.at_least_one_offer — the same titles answered with at least one offer;
- dotations.answered_unknown_asker — the same titles typed with no profile (public chat, nobody known),
  answered with at least one offer rather than by a question alone;
  measured on a stratified sample (per `categorie`, fixed seed) of the départements the door models
  were NOT tuned on (evals/door_training.py: crc32 of the code, odd = reported);
- kinds.<kind>_right_first — for each kind of ordinary works in KINDS (titles chosen by a pattern on the
  folded title, not by the theme table), every commune/EPCI title of the same reported départements, asked
  with the widget's profile: the first referral is one of the kind's right offers (`kinds.n.<kind>` titles);
- portes.right_body — evals/datasets/portes.csv: the expected signpost is among the doors named, or
  its body is named in the answer (a scope refusal naming it counts);
- portes.unrelated_eligible — an offer outside the question's admitted offers and the door's
  complements is recommended AND marked eligible (target 0);
- portes.unrelated_shown — the same without the eligibility condition (stricter, reported);
- portes_tenus.* — the same three figures on evals/datasets/portes-tenus.csv, questions of the same
  kinds written in other words and never tuned on (no model, floor or rule is fitted on them).
The portes figures are also given per split (dev: tuned on; test: reported).
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from assistant.pipeline.door import names_body
from assistant.text import fold
from evals.door_training import tune_half

DATASETS = Path(__file__).resolve().parent / "datasets"
PER_CATEGORY = 30
PER_CATEGORY_FULL = 300
SEED = 2018
GRANTS = {"etat-detr", "etat-dsil"}
ECHELONS = {"Commune": "commune", "EPCI": "epci"}
# Kinds of ordinary works an offer of another theme used to lead (kind -> (pattern on the folded 2018 title,
# the offers that may rightly be first)). defense_incendie: the water points of the défense extérieure contre
# l'incendie (poteaux, bornes, bouches, réserves, citernes), funded by the DETR in 2018, not the Fonds Barnier's
# natural risks (corpus/themes.yaml defense-incendie).
KINDS = {
    "defense_incendie": (re.compile(r"(defense|poteaux?|bornes?|bouches?|reserves?|citernes?|baches?|points? d.eau)\W+(\w+\W+){0,3}incendi"
                                    r"|\bdeci\b"), GRANTS),
    # zone_activite: a zone d'activité laid out or extended by a commune or an EPCI is ordinary investment, not the
    # France Ruralités Revitalisation tax exemptions of the businesses that settle there (door.after_grants tax_relief).
    "zone_activite": (re.compile(r"zones? d.?activites?|\bzae\b|\bza\b|parcs? d.activites?|zones? artisanales?|zones? industrielles?"),
                      GRANTS),
    # eclairage_batiment: the lighting inside a public building (LED, luminaires, éclairage of a mairie, a school, a
    # hall), no street word: the building's renovation (the Fonds vert buildings measure funded 65 of the 78 such
    # 2023 titles), not street lighting (corpus/themes.yaml building_fittings).
    "eclairage_batiment": (re.compile(r"^(?!.*(eclairage public|voirie|\brues?\b|candelabre|lanterne|lampadaire|parking|route|avenue"
                                      r"|\bplace\b|stade|terrain|tennis|exterieur))(?=.*(\bleds?\b|eclairage|luminaires?|relamp))"
                                      r".*(mairie|eglise|salle|gymnase|ecole|groupe scolaire|batiments?|bibliotheque|mediatheque|locaux)"),
                           GRANTS | {"etat-fonds-vert-renovation-batiments-publics", "bdt-intracting", "bdt-edurenov"}),
}
# Door sets (file -> report key): portes.csv is tuned on (its dev part); portes-tenus.csv never is.
DOOR_SETS = {"portes.csv": "portes", "portes-tenus.csv": "portes_tenus"}


def _read(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def dotation_rows(full: bool, seed: int = SEED) -> list[dict]:
    """Commune and EPCI titles of the reported départements, a stratified sample per category."""
    by_category: dict[str, list[dict]] = defaultdict(list)
    for row in _read("dotations-2018-projets.csv"):
        if row["echelon"] in ECHELONS and not tune_half(row["departement"]):
            by_category[row["categorie"]].append(row)
    rng = random.Random(seed)
    size = PER_CATEGORY_FULL if full else PER_CATEGORY
    return [r for c in sorted(by_category) for r in rng.sample(by_category[c], min(size, len(by_category[c])))]


def kind_rows(pattern: re.Pattern) -> list[dict]:
    """Every commune and EPCI title of the reported départements whose folded title matches `pattern`."""
    return [r for r in _read("dotations-2018-projets.csv")
            if r["echelon"] in ECHELONS and not tune_half(r["departement"]) and pattern.search(fold(r["titre"]))]


def residents_beside(result) -> bool:
    """A household's aid (Verdict.for_residents) sharing no theme with the question among the turn's referrals."""
    return any(r.verdict.for_residents and not set(r.offer.themes) & set(result.profile.themes) for r in result.referrals)


def _rate(values) -> float | None:
    values = [bool(v) for v in values]
    return round(sum(values) / len(values), 4) if values else None


def door_rows(assistant, name: str, signposts: dict, bar: dict) -> list[dict]:
    """Each question of a door set (portes.csv's columns) asked with its profile: the doors named,
    whether the expected body is named, and the offers shown outside the admitted ones."""
    from assistant.profile import Profile

    rows = []
    for row in tqdm(_read(name), desc=DOOR_SETS[name], unit="question", **bar):
        profile = Profile(collectivity_type=row["type"], departement_code=row["departement"])
        result = assistant.chat(row["question"], None, profile)
        expected = signposts[row["porte"]]
        named = [s.id for s, _ in result.doors]
        answer = result.answer.text if result.answer else ""
        admitted = set(row["offres_admises"].split()) | set(expected.complements)
        unrelated = [r for r in result.referrals if r.offer.id not in admitted]
        rows.append({
            "set": DOOR_SETS[name], "id": row["id"], "split": row["split"], "question": row["question"], "kind": result.kind,
            "expected": row["porte"], "doors": named, "offers": [r.offer.id for r in result.referrals],
            "right_body": row["porte"] in named or names_body(answer, expected),
            "unrelated_eligible": any(r.verdict.status == "eligible" for r in unrelated),
            "unrelated_shown": bool(unrelated),
        })
    return rows


def door_figures(rows: list[dict]) -> dict:
    """right_body, unrelated_eligible, unrelated_shown and n over a door set, and per split."""
    return {
        "right_body": _rate(r["right_body"] for r in rows),
        "unrelated_eligible": _rate(r["unrelated_eligible"] for r in rows),
        "unrelated_shown": _rate(r["unrelated_shown"] for r in rows),
        "n": len(rows),
        "per_split": {
            split: {"right_body": _rate(r["right_body"] for r in rows if r["split"] == split),
                    "unrelated_eligible": _rate(r["unrelated_eligible"] for r in rows if r["split"] == split),
                    "unrelated_shown": _rate(r["unrelated_shown"] for r in rows if r["split"] == split),
                    "n": sum(r["split"] == split for r in rows)}
            for split in sorted({r["split"] for r in rows})
        },
    }


def realdata_block(assistant, full: bool, bar: dict) -> tuple[dict, list[dict]]:
    """(figures, rows) — rows keep every question with what was returned, for the report."""
    from assistant.profile import Profile
    from ingest.corpus import load_corpus

    rows = []
    for row in tqdm(dotation_rows(full), desc="Dotations 2018", unit="titre", **bar):
        profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
        result = assistant.chat(row["titre"], None, profile)
        offers = [r.offer.id for r in result.referrals]
        # The same title typed in the public chat, nobody known: answered, or only asked who is asking?
        unknown = assistant.chat(row["titre"], None)
        rows.append({"set": "dotations", "question": row["titre"], "category": row["categorie"], "kind": result.kind,
                     "offers": offers, "grant": bool(GRANTS & set(offers)), "any": bool(offers),
                     "grant_first": bool(offers) and offers[0] in GRANTS, "no_theme": not result.profile.themes,
                     "residents_first": bool(result.referrals) and result.referrals[0].verdict.for_residents,
                     "residents_beside": residents_beside(result),
                     "answered_unknown": unknown.kind == "answer" and bool(unknown.referrals)})

    for kind, (pattern, right) in KINDS.items():
        for row in kind_rows(pattern):
            profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
            offers = [r.offer.id for r in assistant.chat(row["titre"], None, profile).referrals]
            rows.append({"set": "kinds", "kind": kind, "question": row["titre"], "offers": offers,
                         "right_first": bool(offers) and offers[0] in right})

    signposts = load_corpus(assistant.settings.corpus_dir).signposts
    for name in DOOR_SETS:
        rows += door_rows(assistant, name, signposts, bar)

    dot = [r for r in rows if r["set"] == "dotations"]
    per_category = defaultdict(list)
    for r in dot:
        per_category[r["category"]].append(r)
    figures = {
        "dotations": {
            "grant_among_referrals": _rate(r["grant"] for r in dot),
            "grant_first": _rate(r["grant_first"] for r in dot),
            "grant_first_no_theme": _rate(r["grant_first"] for r in dot if r["no_theme"]),
            "n_no_theme": sum(r["no_theme"] for r in dot),
            "residents_first": _rate(r["residents_first"] for r in dot),
            "residents_beside": _rate(r["residents_beside"] for r in dot),
            "at_least_one_offer": _rate(r["any"] for r in dot),
            "answered_unknown_asker": _rate(r["answered_unknown"] for r in dot),
            "n": len(dot),
            "per_category": {c: {"grant_among_referrals": _rate(r["grant"] for r in rs), "n": len(rs)}
                             for c, rs in sorted(per_category.items())},
        },
    }
    figures["kinds"] = {"n": {}}
    for kind in KINDS:
        mine = [r for r in rows if r["set"] == "kinds" and r["kind"] == kind]
        figures["kinds"][f"{kind}_right_first"] = _rate(r["right_first"] for r in mine)
        figures["kinds"]["n"][kind] = len(mine)
    for name, key in DOOR_SETS.items():
        figures[key] = door_figures([r for r in rows if r["set"] == key])
    return figures, rows
