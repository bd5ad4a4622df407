"""Eligibility verdicts on the gold set, to see how a change of the engine moves them.

For every gold case, the profile is built from all its turns as the assistant does (patterns and
territory tables), and each expected offer (primary and acceptable) is evaluated. Offers are read
from the corpus given; an id that is no longer a card is followed through `former_ids`.

    python evals/verdicts.py --out /tmp/new.json                      # this tree
    PYTHONPATH=/path/to/other/tree python evals/verdicts.py --out /tmp/old.json
    python evals/verdicts.py --compare /tmp/old.json /tmp/new.json    # counts of moved verdicts

The script uses only APIs present before and after the three-state engine, so that the same file
measures both trees. In one command, against a commit of this repository (git archive of it in a
temporary folder, each tree measured in its own process):

    python evals/verdicts.py --against 8d383d8^     # the commit before three-state eligibility

Measured on 5 December 2026 (main at 7e0c801): before 96 eligible, 476 « à vérifier », 5 ineligible
(577 verdicts); now 14 eligible, 565 « à vérifier », 3 ineligible (582): 83 moved from eligible to
« à vérifier », 2 from ineligible to « à vérifier », 1 from « à vérifier » to eligible.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from assistant.eligibility import evaluate
from assistant.profile import Profile, extract_profile
from assistant.territory import Territories
from ingest.corpus import load_corpus, load_themes

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "evals" / "datasets" / "gold.jsonl"


def verdicts(corpus_dir: Path, gold: Path) -> dict[str, str]:
    """'case id/offer id' → status, for every expected offer of every gold case."""
    corpus, themes, territories = load_corpus(corpus_dir), load_themes(corpus_dir), Territories.load(corpus_dir)
    former = {old: o.id for o in corpus.offers.values() for old in getattr(o, "former_ids", [])}
    out: dict[str, str] = {}
    for line in gold.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        profile = Profile()
        for turn in case["turns"]:
            profile = profile.merged_with(extract_profile(turn, themes, territories))
        expected = case.get("expected") or {}
        for offer_id in [*expected.get("primary", []), *expected.get("acceptable", [])]:
            offer = corpus.offers.get(offer_id) or corpus.offers.get(former.get(offer_id, ""))
            if offer is not None:
                out[f"{case['id']}/{offer_id}"] = evaluate(offer, profile).status
    return out


def compare(old: dict[str, str], new: dict[str, str]) -> str:
    moves = Counter((old[key], new[key]) for key in old.keys() & new.keys())
    lines = [f"verdicts comparés : {len(old.keys() & new.keys())}"]
    lines += [f"  {a} → {b} : {n}" for (a, b), n in sorted(moves.items()) if a != b]
    lines.append(f"  inchangés : {sum(n for (a, b), n in moves.items() if a == b)}")
    for status in ("eligible", "unknown", "ineligible"):
        label = {"unknown": "unknown (« à vérifier »)"}.get(status, status)
        lines.append(f"  {label} : {sum(v == status for v in old.values())} → {sum(v == status for v in new.values())}")
    return "\n".join(lines)


def against(rev: str, gold: Path) -> str:
    """Verdicts of this tree and of commit `rev`, each measured by this script in its own process
    (PYTHONPATH set to the tree), then compared. Raises CalledProcessError when git or a run fails."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="verdicts-") as tmp:
        old_tree = Path(tmp) / "tree"
        old_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        results = {}
        for name, tree in (("before", old_tree), ("now", ROOT)):
            out = Path(tmp) / f"{name}.json"
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--out", str(out), "--gold", str(gold),
                            "--corpus", str(tree / "corpus")], check=True, env=env, capture_output=True)
            results[name] = json.loads(out.read_text(encoding="utf-8"))
    return f"{rev} → cet arbre\n" + compare(results["before"], results["now"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Verdicts d'éligibilité sur le jeu gold.")
    parser.add_argument("--out", type=Path, help="Écrire les verdicts (JSON).")
    parser.add_argument("--corpus", type=Path, default=None, help="Dossier du corpus (défaut : celui de l'arbre importé).")
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("AVANT", "APRES"))
    parser.add_argument("--against", metavar="REV", help="Comparer cet arbre à un commit du dépôt (git archive).")
    args = parser.parse_args()
    if args.against:
        print(against(args.against, args.gold))
        return
    if args.compare:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.compare)
        print(compare(before, after))
        return
    import assistant

    corpus_dir = args.corpus or Path(assistant.__file__).resolve().parents[1] / "corpus"
    result = verdicts(corpus_dir, args.gold)
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{len(result)} verdicts ; " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(result.values()).items())))


if __name__ == "__main__":
    main()
