"""How often a real project title is read as naming a commune, and whether it is the project's own.

    python -m evals.place_in_titles            # the figures, JSON on stdout
    python -m evals.place_in_titles --chat     # also 200 short real titles asked in the public chat

Every title of evals/datasets/dotations-2018-projets.csv (DETR/DSIL 2018, 22,244; the rule of
assistant.territory._names_a_thing was read on them: tuned on) and fonds-vert-2023-projets.csv (Fonds vert
2023, 10,782; held out) goes through Territories.resolve, as the understand stage does with a message.
Per source:
- titles, read (a commune or homonyms found), asked (homonyms: the « which commune? » question);
- fonds vert, whose rows carry the beneficiary's commune (`code_commune`): right_commune (the read commune,
  or one of the homonyms, is it), right_departement (only its département is), wrong (neither) — a
  syndicate or a département may carry a project in another commune, so wrong is an upper bound;
- dotations, whose rows carry the département only: wrong_departement (no commune read is in it).
Figures are counts; precision = right_commune / read (fonds vert), 1 - wrong_departement / read (dotations).
With --chat: 200 DETR/DSIL 2018 titles of at most ten words (seeded sample, as a mayor types a project in
the public chat) asked with no profile through the whole assistant (index built in a temporary data
directory): how many get a clarification turn instead of an answer, and how many of those ask « which
commune? » (`place`). To measure another version, run this file with PYTHONPATH set to that checkout.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from assistant.territory import Territories

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "evals" / "datasets"


def _rows(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def titles() -> list[tuple[str, str, str | None, str]]:
    """(source, title, INSEE code of the project's commune or None, département code), both sources."""
    out = [("fonds_vert_2023", r["nom_du_projet"], r["code_commune"].zfill(5), r["code_departement"].zfill(2))
           for r in _rows("fonds-vert-2023-projets.csv")]
    out += [("dotations_2018", r["titre"], None, r["departement"].zfill(2)) for r in _rows("dotations-2018-projets.csv")]
    return out


def measure(territories: Territories) -> dict:
    """{source: {titles, read, asked, right_commune, right_departement, wrong | wrong_departement, precision}}."""
    figures: dict[str, dict] = {}
    for source, title, code, departement in titles():
        f = figures.setdefault(source, {"titles": 0, "read": 0, "asked": 0})
        f["titles"] += 1
        found = territories.resolve(title)
        communes = ([found.commune] if found.commune else []) + list(found.candidates)
        if not communes:
            continue
        f["read"] += 1
        f["asked"] += found.ambiguous
        in_departement = departement in {c.departement.zfill(2) for c in communes}
        if code is None:
            f["wrong_departement"] = f.get("wrong_departement", 0) + (not in_departement)
        else:
            verdict = "right_commune" if code in {c.code for c in communes} else (
                "right_departement" if in_departement else "wrong")
            f[verdict] = f.get(verdict, 0) + 1
    for f in figures.values():
        right = f["read"] - f["wrong_departement"] if "wrong_departement" in f else f.get("right_commune", 0)
        f["precision"] = round(right / f["read"], 4) if f["read"] else None
    return figures


def short_titles_asked(count: int = 200, seed: int = 7) -> dict:
    """{asked, clarification, place_question, answered}: short real titles, nobody known."""
    import random
    import tempfile

    from assistant.config import Settings
    from assistant.embeddings import UniversalSentenceEncoderEmbeddings
    from assistant.service import Assistant
    from ingest.indexer import ingest

    short = [r["titre"] for r in _rows("dotations-2018-projets.csv") if len(r["titre"].split()) <= 10]
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), corpus_dir=ROOT / "corpus", _env_file=None)
        embeddings = UniversalSentenceEncoderEmbeddings()
        ingest(settings, embeddings, progress=False)
        assistant = Assistant(settings, embeddings=embeddings)
        figures = {"asked": 0, "clarification": 0, "place_question": 0, "answered": 0}
        for title in random.Random(seed).sample(short, count):
            result = assistant.chat(title, None)
            figures["asked"] += 1
            figures["clarification"] += result.kind == "clarification"
            figures["place_question"] += result.clarification is not None and result.clarification.key == "place"
            figures["answered"] += result.kind == "answer" and bool(result.referrals)
    return figures


if __name__ == "__main__":
    import sys

    figures = measure(Territories.load(ROOT / "corpus"))
    if "--chat" in sys.argv:
        figures["short_titles_public_chat"] = short_titles_asked()
    print(json.dumps(figures, indent=1, sort_keys=True))
