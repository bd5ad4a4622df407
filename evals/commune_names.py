"""How many commune names the territory reader reads, in the forms people and real titles write them.

    python -m evals.commune_names              # figures per form, JSON on stdout
    python -m evals.commune_names --failures   # also up to 8 failing questions per form and kind

For every current commune of corpus/territoires (35,000), two questions per written form of its name: a bare
title « <name> : rénovation du gymnase » (`title/…`; a one-word name needs a place cue there, by design) and a
cued one « Commune de <name> : rénovation du gymnase » (`cued/…`). Forms:
- `as_written`: the table's spelling (« Saint-Lô »);
- `upper_name`: the name in capitals in a mixed-case question, as real titles cite a beneficiary
  (« SAINT-LÔ : rénovation du gymnase »);
- `upper_text`: the whole question in capitals (« SAINT-LÔ : RÉNOVATION DU GYMNASE »);
- `no_hyphens`: hyphens as spaces (« Saint Lô »);
- `no_accents`: accents dropped (« Saint-Lo »);
- `title_form`: capitals, no hyphens, no accents, the form of the Fonds vert 2023 file's `nom_commune`
  (« SAINT LO : rénovation du gymnase »).
Each question goes through Territories.resolve. Outcomes per form: `read` (that commune alone), `asked`
(homonyms offered, that commune among them: the honest answer for a shared name), `other` (another
territory read: commune, EPCI, département), `none` (nothing read). Names with homonyms are counted
`asked` when the reader names them all; picking one silently is `other` even when it is the right one
(the reader cannot know). Each failing name is also given a kind: the first rule of _kind that fits.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter
from pathlib import Path

from assistant.territory import ARTICLES, GRAMMAR_WORDS, JOINERS, Territories, _content, normalize

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = {"title": "{} : rénovation du gymnase", "cued": "Commune de {} : rénovation du gymnase"}


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


FORMS = {  # name -> the name as written in that form
    "as_written": lambda name: name,
    "upper_name": str.upper,
    "no_hyphens": lambda name: name.replace("-", " "),
    "no_accents": _strip_accents,
    "title_form": lambda name: _strip_accents(name).upper().replace("-", " ").replace("'", " "),
}


def questions(name: str) -> dict[str, str]:
    """{template/form: question} for one commune name; `upper_text` puts the whole title in capitals."""
    out = {f"{t}/{form}": template.format(write(name)) for t, template in TEMPLATES.items() for form, write in FORMS.items()}
    out.update({f"{t}/upper_text": template.format(name).upper() for t, template in TEMPLATES.items()})
    return out


def _kind(territories: Territories, name: str) -> str:
    """Why a name may be unreadable, from its words (first rule that fits): a joining word dropped (before
    content_positions kept them at a name's ends), grammar words only, a name of ordinary words (one word or
    several: territory._is_common), one word (after its article), or something else."""
    key = normalize(name)
    words = key.split()
    if len(words) >= 2 and len([w for w in words if w not in JOINERS]) <= 1 and any(
            w in JOINERS and w not in ARTICLES for w in words):
        return "a joining word at an end (Saint-Lô, Lez-Fontaine…)"
    content = _content(words)
    if content and all(w in GRAMMAR_WORDS for w in content):
        return "grammar words only (Y, Eu, Vers…)"
    if territories._is_common(key):
        return "ordinary words (Confort, Pont-de-Vaux…)"
    if len(content) <= 1:
        return "one word (Izernore, Le Thou…)"
    return "other"


def outcome(territories: Territories, code: str, question: str, shared: bool = False) -> str:
    """read, asked, other or none (see the module docstring); shared: the name has homonyms."""
    found = territories.resolve(question)
    if found.commune is not None:
        return "read" if found.commune.code == code and not shared else "other"
    if found.candidates:
        return "asked" if code in {c.code for c in found.candidates} else "other"
    return "other" if found.found or found.epci_candidates else "none"


def measure(territories: Territories, examples: int = 0) -> dict:
    """{template/form: {read, asked, other, none, names, by_kind: {kind: failing}, examples: {kind: [names]}}}."""
    figures: dict[str, dict] = {}
    spelled = Counter(normalize(c.name) for c in territories.communes.values())
    for commune in territories.communes.values():
        kind = None
        shared = spelled[normalize(commune.name)] > 1  # « Le Crozet » is not « Crozet »: the article counts
        for key, question in questions(commune.name).items():
            f = figures.setdefault(key, {"read": 0, "asked": 0, "other": 0, "none": 0, "by_kind": Counter(), "examples": {}})
            verdict = outcome(territories, commune.code, question, shared)
            f[verdict] += 1
            if verdict in ("other", "none"):
                kind = kind or _kind(territories, commune.name)
                f["by_kind"][kind] += 1
                shown = f["examples"].setdefault(kind, [])
                if len(shown) < examples:
                    shown.append(f"{question} ({commune.departement}, {commune.population} hab.): {verdict}")
    for f in figures.values():
        f["names"] = f["read"] + f["asked"] + f["other"] + f["none"]
        f["by_kind"] = dict(f["by_kind"].most_common())
        if not examples:
            del f["examples"]
    return figures


if __name__ == "__main__":
    print(json.dumps(measure(Territories.load(ROOT / "corpus"), 8 if "--failures" in sys.argv else 0),
                     indent=1, ensure_ascii=False))
