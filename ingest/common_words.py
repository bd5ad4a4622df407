"""Commune and département names that are also ordinary French words (« Sens », « Orange », « Somme »…).

Such a name counts as a place only with a place cue (assistant.territory). The list is derived
from data, not written by hand: the names of current communes (corpus/territoires/communes.json.gz)
and of départements (departements.json) intersected with a French dictionary, the Debian package `hunspell-fr-classical` read by the
`hunspell` program (`apt-get install hunspell hunspell-fr-classical`). A name is ordinary when
every word of it, apart from articles and prepositions, is accepted in lower case by the
dictionary: lower case, because a dictionary entry with a capital is a proper noun (« France »),
not a word someone writes in a sentence. Only needed to regenerate the committed list.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

from assistant.territory import JOINERS, SAINTS, normalize

DEFAULT_DICTIONARY = "/usr/share/hunspell/fr"
HEADER = (
    "# Noms de communes et de départements qui sont aussi des mots français ordinaires (un par ligne, forme normalisée).\n"
    "# Généré par « aiguillage territories common-words » : noms des communes actuelles et des départements\n"
    "# croisés avec le dictionnaire hunspell-fr-classical (Debian). Ne pas modifier à la main.\n"
)


def accepted_words(words: set[str], dictionary: str = DEFAULT_DICTIONARY) -> set[str]:
    """The words `hunspell -d DICTIONARY -G` accepts (raises RuntimeError when hunspell is absent)."""
    binary = shutil.which("hunspell")
    if binary is None:
        raise RuntimeError("hunspell introuvable : apt-get install hunspell hunspell-fr-classical")
    run = subprocess.run(
        [binary, "-d", dictionary, "-G"], input="\n".join(sorted(words)), capture_output=True, text=True, check=True
    )
    return set(run.stdout.split())


def ordinary_names(names: list[str], dictionary: str = DEFAULT_DICTIONARY) -> list[str]:
    """Normalised commune names whose every content word is an ordinary (lower-case) French word.

    Only names of one content word, with or without article (« Sens », « La Flèche »): a name of
    several words (« Bar-le-Duc ») is not written by chance in a sentence. Content words are checked
    with their accents (« réunion »), on the name as INSEE spells it.
    """
    spellings: dict[str, set[str]] = {}  # normalised name -> its content word as each commune spells it
    for name in names:
        spelled = [w for w in name.lower().replace("-", " ").replace("'", " ").replace("’", " ").split() if w]
        key = normalize(name)
        words = [w for w, k in zip(spelled, key.split()) if k not in JOINERS]
        if len(spelled) != len(key.split()) or len(words) != 1 or normalize(words[0]) in SAINTS or len(key) < 2:
            continue
        spellings.setdefault(key, set()).add(words[0])
    accepted = accepted_words(set().union(*spellings.values()), dictionary)
    # « Ville » (Oise) and « Villé » (Bas-Rhin) share a key: one ordinary spelling makes it ordinary.
    return sorted(k for k, words in spellings.items() if words & accepted)


def write_common_words(territories_dir: Path, dictionary: str = DEFAULT_DICTIONARY) -> dict:
    """Regenerate territories_dir/noms-communs.txt; returns {"path", "names"}."""
    columns = json.loads(gzip.decompress((territories_dir / "communes.json.gz").read_bytes()))
    departements = [d["nom"] for d in json.loads((territories_dir / "departements.json").read_text(encoding="utf-8"))]
    names = ordinary_names(sorted(set(columns["nom"]) | set(departements)), dictionary)
    path = territories_dir / "noms-communs.txt"
    path.write_text(HEADER + "".join(f"{n}\n" for n in names), encoding="utf-8")
    return {"path": str(path), "names": len(names)}
