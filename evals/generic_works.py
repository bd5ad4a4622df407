"""Which theme phrases fire on the real titles, and what a change of the theme table does to them.

    python -m evals.generic_works                                   # the phrase table (no index), seconds
    python -m evals.generic_works --before b1ad051                  # and each theme's share of titles, then vs now
    python -m evals.generic_works --before b1ad051 --assistant      # and the referrals of the titles whose themes changed

Per source (never mixed): Fonds vert 2023 titles (the source the table is tuned on: each title's measure
names its object's themes, corpus/themes.yaml `fonds_vert_measures`) and 2018 DETR/DSIL titles (held out:
ordinary works funded by the everyday grants).

- `phrases`: for each label or synonym that names a theme as the object of at least one title
  (profile.detect_themes' reading: a phrase in a complement of place does not count), the Fonds vert titles
  where it does, where it is the theme's only phrase (`alone`), and the share of those whose measure carries
  the theme (`agree`, `alone_agree`; compare with `base`, the share of all Fonds vert titles whose measure
  carries it; themes no measure carries have no `agree`); and the DETR/DSIL titles where it does.
- `generic_works`: for each noun of works the table refuses (`generic_works`), the titles that contain it.
- with --before REV: the theme table of commit REV (its corpus/themes.yaml, the rest of the corpus as now);
  per theme whose share changed, the share of titles it is assigned to, then and now; and the titles whose
  themes changed (`touched`): on the Fonds vert titles, the themes dropped and added by whether the measure
  carries them (measure_agreement), on the DETR/DSIL titles a sample of 20 with their themes then and now. With --assistant, those titles asked as the evaluation asks them
  (place_themes.ask: Fonds vert theme@1/@3, title alone; DETR or DSIL first and among the referrals for the
  commune and EPCI titles, with the widget's profile), with the table of REV, then with the table now.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from assistant.profile import detect_themes
from assistant.text import match_terms
from evals.place_themes import ECHELONS, ask, dotation_rows, fonds_vert_rows, service
from ingest.corpus import load_themes

ROOT = Path(__file__).resolve().parents[1]


def object_phrases(text: str, vocabulary) -> dict[str, set[str]]:
    """theme id -> the label and synonyms that name it as the object of the text (a phrase inside a
    complement of place excluded, as profile.detect_themes reads it)."""
    themes = set(detect_themes(text, vocabulary, limit=len(vocabulary.themes)))
    terms = tuple(match_terms(text))
    out: dict[str, set[str]] = defaultdict(set)
    for theme in vocabulary.themes:
        if theme.id not in themes:
            continue
        # one phrase per sequence of terms (« renaturation » and « renaturer » read the same)
        for wanted, phrase in {tuple(match_terms(p)): p for p in reversed([theme.label, *theme.synonyms])}.items():
            if wanted and any(terms[i : i + len(wanted)] == wanted for i in range(len(terms) - len(wanted) + 1)):
                out[theme.id].add(phrase)
    return out


def phrase_table(vocabulary, fv: list[dict], dot: list[dict]) -> list[dict]:
    measured = {t for themes in vocabulary.fonds_vert_measures.values() for t in themes}
    base = {t: round(sum(t in r["wanted"] for r in fv) / len(fv), 3) for t in measured}
    stats: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for source, rows in (("fv", fv), ("dot", dot)):
        for row in rows:
            for theme, phrases in object_phrases(row["text"], vocabulary).items():
                for phrase in phrases:
                    count = stats[(theme, phrase)]
                    count[source] += 1
                    count[f"{source}_alone"] += len(phrases) == 1
                    if source == "fv":
                        count["agree"] += theme in row["wanted"]
                        count["alone_agree"] += len(phrases) == 1 and theme in row["wanted"]
    table = []
    for (theme, phrase), c in sorted(stats.items(), key=lambda kv: -(kv[1]["fv"] + kv[1]["dot"])):
        row = {"theme": theme, "phrase": phrase, "fonds_vert": c["fv"], "alone": c["fv_alone"],
               "dotations": c["dot"], "dotations_alone": c["dot_alone"]}
        if theme in measured:
            row |= {"agree": round(c["agree"] / max(c["fv"], 1), 3), "alone_agree": round(c["alone_agree"] / max(c["fv_alone"], 1), 3),
                    "base": base[theme]}
        table.append(row)
    return table


def theme_shares(vocabulary, rows: list[dict]) -> dict[str, float]:
    counts = Counter(t for r in rows for t in detect_themes(r["text"], vocabulary, limit=len(vocabulary.themes)))
    return {t: round(n / len(rows), 4) for t, n in counts.items()}


def measure_agreement(rows: list[dict], before, vocabulary) -> dict[str, int]:
    """Of the Fonds vert titles whose themes changed: the themes dropped and added (every theme, not only the
    first three), counted by whether the title's measure carries them. `dropped_in_measure` is a cost (the table
    now misses the object the measure names), `dropped_outside` a gain; `added_*` the same way."""
    counts = Counter()
    for row in rows:
        then = set(detect_themes(row["text"], before, limit=99))
        now = set(detect_themes(row["text"], vocabulary, limit=99))
        for kind, themes in (("dropped", then - now), ("added", now - then)):
            for theme in themes:
                counts[f"{kind}_{'in_measure' if theme in row['wanted'] else 'outside'}"] += 1
    return dict(sorted(counts.items()))


def corpus_with_themes_of(rev: str) -> Path:
    """A copy of the repository's corpus whose themes.yaml is commit rev's (git show rev:corpus/themes.yaml)."""
    target = Path(tempfile.mkdtemp(prefix="themes-before-")) / "corpus"
    shutil.copytree(ROOT / "corpus", target)
    old = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:corpus/themes.yaml"], check=True, capture_output=True).stdout
    (target / "themes.yaml").write_bytes(old)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="compare with the theme table of this commit")
    parser.add_argument("--assistant", action="store_true", help="with --before: ask the titles whose themes changed")
    parser.add_argument("--top", type=int, default=60, help="phrases printed, most frequent first")
    args = parser.parse_args()
    vocabulary = load_themes(ROOT / "corpus")
    fv, dot = fonds_vert_rows(vocabulary), dotation_rows()
    folded = [(r, tuple(match_terms(r["text"]))) for r in (*fv, *dot)]
    generic = {}
    for noun in vocabulary.generic_works:
        terms = match_terms(noun)
        hits = [r for r, t in folded if any(t[i : i + len(terms)] == tuple(terms) for i in range(len(t)))]
        generic[noun] = {"fonds_vert": sum("measure" in r for r in hits), "dotations": sum("measure" not in r for r in hits)}
    out = {"fonds_vert_titles": len(fv), "dotations_titles": len(dot),
           "phrases": phrase_table(vocabulary, fv, dot)[: args.top], "generic_works": generic}
    if args.before:
        before_dir = corpus_with_themes_of(args.before)
        before = load_themes(before_dir)
        shares = {}
        for source, rows in (("fonds_vert", fv), ("dotations", dot)):
            then, now = theme_shares(before, rows), theme_shares(vocabulary, rows)
            shares[source] = {t: [then.get(t, 0), now.get(t, 0)] for t in sorted(set(then) | set(now)) if then.get(t) != now.get(t)}
        out["shares_then_now"] = shares

        def changed(rows):
            return [r for r in rows if detect_themes(r["text"], before, limit=99) != detect_themes(r["text"], vocabulary, limit=99)]

        fv_touched = changed(fv)
        dot_touched = [r for r in changed(dot) if r["echelon"] in ECHELONS]
        out["touched"] = {"fonds_vert": len(fv_touched), "dotations_commune_epci": len(dot_touched),
                          "fonds_vert_measure": measure_agreement(fv_touched, before, vocabulary),
                          "dotations_sample": [{"title": r["text"], "then": detect_themes(r["text"], before), "now": detect_themes(r["text"], vocabulary)}
                                               for r in dot_touched[:: max(1, len(dot_touched) // 20)]]}
        if args.assistant:
            for label, corpus_dir in ((f"then ({args.before})", before_dir), ("now", None)):
                out["touched"][label] = ask(*service(corpus_dir), fv_touched, dot_touched)
                print(label, out["touched"][label], flush=True)
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
