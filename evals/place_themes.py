"""The place of the works taken for their object: how often, and what the rule of assistant.profile costs.

    python -m evals.place_themes              # counts only (no index), a few seconds
    python -m evals.place_themes --assistant  # and the referrals of the titles the rule touches (builds an index)

Counts, per source (never mixed): Fonds vert 2023 titles (the source the rule's words were chosen on;
the measure of each title names its object's themes, corpus/themes.yaml `fonds_vert_measures`), 2018
DETR/DSIL titles (not read to choose the rule; funded by the everyday grants: their object is ordinary
works) and the gold questions (dev and test). For each title, the themes a phrase of the table names
(the detection without the rule) and those the rule keeps as the object (profile.detect_themes): a
title is touched when a theme is said only as the place of the works (profile.detect_place_themes).
On the Fonds vert titles, a touched theme that is one of the measure's themes is a cost (the rule
drops the object), one that is not is a gain.

With --assistant, the touched titles are asked as the evaluation asks them (evals/run.py: the title
alone for Fonds vert, with the widget's profile for DETR/DSIL, evals/realdata.py) under each value of
rank.PLACE_ONLY in PENALTIES (0 = the place themes' offers only lose their theme bonus): Fonds vert
theme@1/@3 (the measure's themes among the first offers' themes) and, on DETR/DSIL titles, DETR or DSIL
first and among the referrals. PLACE_ONLY is chosen on the Fonds vert titles.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
from collections import Counter
from pathlib import Path

from assistant.profile import _occurrences, detect_place_themes, detect_themes

DATASETS = Path(__file__).resolve().parent / "datasets"
PENALTIES = (0.0, -0.008, -0.05)
SEED, SAMPLE = 2018, 40
GRANTS = {"etat-detr", "etat-dsil"}
ECHELONS = {"Commune": "commune", "EPCI": "epci"}


def _read(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def every_theme(text: str, vocabulary) -> set[str]:
    """Themes a phrase of the table names anywhere in the text (the detection without the place rule)."""
    _, found = _occurrences(text, vocabulary)
    return {vocabulary.themes[place].id for place, *_ in found}


def fonds_vert_rows(vocabulary) -> list[dict]:
    measures = vocabulary.fonds_vert_measures
    return [{"text": r["nom_du_projet"].strip(), "measure": r["nom_demarche_ds"].strip(),
             "wanted": set(measures[r["nom_demarche_ds"].strip()])}
            for r in _read("fonds-vert-2023-projets.csv") if r["nom_demarche_ds"].strip() in measures and r["nom_du_projet"].strip()]


def dotation_rows() -> list[dict]:
    return [{"text": r["titre"].strip(), "echelon": r["echelon"], "departement": r["departement"]}
            for r in _read("dotations-2018-projets.csv") if r["titre"].strip()]


def gold_rows() -> list[dict]:
    cases = [json.loads(line) for line in (DATASETS / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"text": turn, "id": c["id"], "split": c["split"]} for c in cases for turn in c["turns"]]


def touched(rows: list[dict], vocabulary) -> list[dict]:
    """The rows where a theme is said only as the place of the works, with `places` and `objects`."""
    out = []
    for row in rows:
        places = detect_place_themes(row["text"], vocabulary)
        if places:
            out.append(row | {"places": places, "objects": detect_themes(row["text"], vocabulary, limit=len(vocabulary.themes))})
    return out


def counts(vocabulary) -> dict:
    fv = fonds_vert_rows(vocabulary)
    fv_touched = touched(fv, vocabulary)
    cost = [r for r in fv_touched if set(r["places"]) & r["wanted"]]
    by_theme = Counter(t for r in fv_touched for t in r["places"])
    dotations = dotation_rows()
    dot_touched = touched(dotations, vocabulary)
    gold_touched = touched(gold_rows(), vocabulary)
    return {
        "fonds_vert": {"titles": len(fv), "with_theme": sum(bool(every_theme(r["text"], vocabulary)) for r in fv),
                       "touched": len(fv_touched), "place_is_measure_theme": len(cost),
                       "place_not_measure_theme": len(fv_touched) - len(cost),
                       "touched_by_theme": dict(by_theme.most_common()),
                       "costs": [(r["text"], r["measure"], r["places"]) for r in cost]},
        "dotations": {"titles": len(dotations), "touched": len(dot_touched),
                      "touched_by_theme": dict(Counter(t for r in dot_touched for t in r["places"]).most_common()),
                      # the sample read by hand for the README's figure (place or object?)
                      "sample": [(r["text"], r["places"], r["objects"]) for r in random.Random(SEED).sample(dot_touched, min(SAMPLE, len(dot_touched)))]},
        "gold": {"touched": [(r["id"], r["split"], r["text"], r["places"]) for r in gold_touched]},
    }


def service(corpus_dir: Path | None = None):
    """(Assistant over a fresh index of corpus_dir (the repository's corpus by default), its offers by id)."""
    from assistant.config import Settings
    from assistant.embeddings import UniversalSentenceEncoderEmbeddings
    from assistant.service import Assistant
    from ingest.corpus import load_corpus
    from ingest.indexer import ingest

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="themes-")), _env_file=None,
                        **({"corpus_dir": corpus_dir} if corpus_dir else {}))
    embeddings = UniversalSentenceEncoderEmbeddings()
    ingest(settings, embeddings, progress=False)
    return Assistant(settings, embeddings=embeddings), load_corpus(settings.corpus_dir).offers


def ask(assistant, offers, fv: list[dict], dot: list[dict]) -> dict:
    """Fonds vert theme@1/@3 (the measure's themes among the first three offers' themes, title alone) and,
    on DETR/DSIL titles asked with the widget's profile (type and département), DETR or DSIL first and
    among the referrals: shares of len(fv) and len(dot), rounded to 3 decimals."""
    from assistant.profile import Profile

    hit1 = hit3 = 0
    for row in fv:
        ids = [r.offer.id for r in assistant.chat(row["text"]).referrals][:3]
        hits = [bool(set(offers[i].themes) & row["wanted"]) for i in ids]
        hit1 += bool(hits) and hits[0]
        hit3 += any(hits)
    first = among = 0
    for row in dot:
        profile = Profile(collectivity_type=ECHELONS[row["echelon"]], departement_code=row["departement"])
        ids = [r.offer.id for r in assistant.chat(row["text"], None, profile).referrals]
        first += bool(ids) and ids[0] in GRANTS
        among += bool(GRANTS & set(ids))
    return {"fonds_vert_theme@1": round(hit1 / max(len(fv), 1), 3), "fonds_vert_theme@3": round(hit3 / max(len(fv), 1), 3),
            "dotations_grant_first": round(first / max(len(dot), 1), 3),
            "dotations_grant_among": round(among / max(len(dot), 1), 3)}


def referrals(vocabulary, penalties=PENALTIES) -> dict:
    """Fonds vert theme@1/@3 and DETR/DSIL first / among the referrals on the touched titles, per PLACE_ONLY."""
    from assistant.pipeline import rank

    assistant, offers = service()
    fv = touched(fonds_vert_rows(vocabulary), vocabulary)
    dot = [r for r in touched(dotation_rows(), vocabulary) if r["echelon"] in ECHELONS]
    out = {"fonds_vert_n": len(fv), "dotations_n": len(dot)}
    for penalty in penalties:
        rank.PLACE_ONLY = penalty
        out[str(penalty)] = ask(assistant, offers, fv, dot)
        print(penalty, out[str(penalty)], flush=True)
    return out


def main() -> None:
    from ingest.corpus import load_themes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assistant", action="store_true", help="ask the touched titles (builds an index)")
    args = parser.parse_args()
    vocabulary = load_themes(Path(__file__).resolve().parents[1] / "corpus")
    figures = counts(vocabulary)
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    if args.assistant:
        print(json.dumps(referrals(vocabulary), indent=1))


if __name__ == "__main__":
    main()
