"""Labelled examples for the scope classifier, each with its source, from evals/datasets/ and the corpus.

Labels: "projet" (a funding/engineering question or title of a local project), "collectivite-autre"
(local government, another subject), "particulier" (a private person's own affair).

Two levels of provenance:
- `source`: where the text comes from (service-public.fr fiches, CNIL FAQ, DGCL grants, the corpus,
  our written questions, the gold set…). Leave-one-source-out validation holds out a whole source.
- `group`: a sub-source inside a file (a service-public rubrique, a département of the grants). The
  fixed split puts whole groups in `test` (about a quarter, by a hash of the group): the committed
  model never sees them and `aiguillage eval` measures on them. Gold follows its own dev/test split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from assistant.scope.doors import door_of_row

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "evals" / "datasets"
PARTICULIERS = DATASETS / "hors-champ-particuliers.csv"
COLLECTIVITES = DATASETS / "hors-champ-collectivites.csv"
DOTATIONS = DATASETS / "dotations-2018-projets.csv"
FONDS_VERT = DATASETS / "fonds-vert-2023-projets.csv"
QUESTIONS = DATASETS / "questions-projets.csv"
PARLIAMENTARY = DATASETS / "questions-parlementaires.csv"
GOLD = DATASETS / "gold.jsonl"
CLASSES = ["projet", "collectivite-autre", "particulier"]
TEST_SHARE = 0.25
SEED = 2018
TITLES_PER_SOURCE = {"dotations-2018": 2500, "fonds-vert-2023": 1500}  # training sample of each title file

# Gold out-of-scope cases: the kind of asker (the gold set only says « refusal »).
GOLD_LOCAL_GOVERNMENT = {"g166": "prefecture", "g173": "prefecture", "g183": "cdg"}

PARTICULIER_SOURCES = {
    "service-public_question_fiche": "sp-particuliers",
    "cnil_faq_title": "cnil-particuliers",
    "service-public_help_faq": "sp-aide",
    "labour_law_faq_question": "code-du-travail",
}


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str
    group: str
    split: str  # "train" or "test"
    door: str | None = None  # door id for local-government examples
    ref: str = ""  # id in its file


def test_group(group: str, share: float = TEST_SHARE) -> bool:
    """Deterministic: the same group is always on the same side (md5 of the group name)."""
    return int(hashlib.md5(group.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def _split(group: str) -> str:
    return "test" if test_group(group) else "train"


def particuliers(path: Path = PARTICULIERS) -> list[Example]:
    out = []
    for row in _rows(path):
        source = PARTICULIER_SOURCES[row["genre"]]
        group = f"{source}:{row['rubrique'] or row['id'].split('-')[0]}"
        out.append(Example(row["question"], "particulier", source, group, _split(group), "particulier", row["id"]))
    return out


def _collectivite_source(genre: str) -> str:
    if genre.startswith("cnil"):
        return "cnil-collectivites"
    if "public-sector staff" in genre:
        return "sp-fonction-publique"
    if "citizen question" in genre:
        return "sp-citoyen-collectivite"
    if genre.startswith("service-public"):
        return "sp-professionnels"
    return "prefecture-atd"


def collectivites(path: Path = COLLECTIVITES) -> list[Example]:
    out = []
    for row in _rows(path):
        source = _collectivite_source(row["genre"])
        group = f"{source}:{row['rubrique']}"
        door = door_of_row(row["genre"], row["rubrique"])
        out.append(Example(row["question"], "collectivite-autre", source, group, _split(group), door, row["id"]))
    return out


def _titles(rows: list[dict], source: str, title_key: str, group_key: str) -> list[Example]:
    out = []
    for row in rows:
        title = (row.get(title_key) or "").strip()
        if title:
            group = f"{source}:{(row.get(group_key) or '').strip().zfill(2)}"
            out.append(Example(title, "projet", source, group, _split(group), None, row.get("id") or row.get("numero_dossier_ds", "")))
    return out


def dotations(path: Path = DOTATIONS) -> list[Example]:
    return _titles(_rows(path), "dotations-2018", "titre", "departement")


def fonds_vert(path: Path = FONDS_VERT) -> list[Example]:
    return _titles(_rows(path), "fonds-vert-2023", "nom_du_projet", "code_departement")


WRITTEN = "questions-ecrites"  # the source of questions-projets.csv rows written before the `source` column


def written_questions(path: Path = QUESTIONS) -> list[Example]:
    """Our questions (questions-projets.csv): all for training; leave-one-source-out measures them,
    one source per set written together (`source` column: « questions-ecrites-outils »…). A private
    person's question names service-public.fr (door « particulier »), whatever its row says."""
    out = []
    for r in _rows(path):
        source = r.get("source") or WRITTEN
        door = "particulier" if r["label"] == "particulier" else r["door"] or None
        out.append(Example(r["question"], r["label"], source, source, "train", door, r["id"]))
    return out


# Real written questions of Parliament (questions-parlementaires.csv): one source per house. Those of a
# house listed here are trained on; the others are held out (split « test ») and measured by `aiguillage eval`
# and by the training's fixed split. The Assemblée nationale's are learnt, the Sénat's never.
PARLIAMENT_TRAINED: tuple[str, ...] = ("an",)
NATIONAL = "hors-sujet-national"  # national policy a mayor would not ask the assistant: counted, never scored


PARLIAMENT_PREFIX = "parlement-"


def parliament_source(house: str) -> str:
    """« an » -> « parlement-an », the Example source of a house's questions."""
    return PARLIAMENT_PREFIX + house


def is_parliament(source: str) -> bool:
    return source.startswith(PARLIAMENT_PREFIX)


def parliamentary_questions(path: Path = PARLIAMENTARY, trained: tuple[str, ...] = PARLIAMENT_TRAINED) -> list[Example]:
    """Parliamentary written questions (Assemblée nationale, Sénat), each a whole group (validated
    one by one); rows labelled `NATIONAL` are left out. The houses in `trained` go to `train`, the
    others to `test`; a private person's question names service-public.fr (door « particulier »)."""
    out = []
    for r in _rows(path):
        if r["label"] == NATIONAL:
            continue
        source = parliament_source(r["source"])
        door = "particulier" if r["label"] == "particulier" else r["door"] or None
        out.append(Example(r["question"], r["label"], source, f"{source}:{r['id']}", "train" if r["source"] in trained else "test", door, r["id"]))
    return out


def parliamentary_national(path: Path = PARLIAMENTARY) -> int:
    """How many rows of questions-parlementaires.csv are national policy (left out of every figure)."""
    return sum(r["label"] == NATIONAL for r in _rows(path))


def is_written(source: str) -> bool:
    return source.startswith(WRITTEN)


def gold(path: Path = GOLD) -> list[Example]:
    """Every user message of the gold set except attacks (they are the guardrails' regexes): in-scope
    cases (all turns), out-of-scope cases; dev trains, test is held out."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line) if line.strip() else None
        if not case or case["kind"] == "adversarial" and "refusal" in case["checks"]:
            continue
        refused = "refusal" in case["checks"]
        for i, turn in enumerate(case["turns"]):
            last = i == len(case["turns"]) - 1
            if refused and (last or case["kind"] == "out_of_scope"):
                door = GOLD_LOCAL_GOVERNMENT.get(case["id"])
                label, door = ("collectivite-autre", door) if door else ("particulier", "particulier")
            else:
                label, door = "projet", None
            out.append(Example(turn, label, "gold", f"gold:{case['split']}", "train" if case["split"] == "dev" else "test", door, f"{case['id']}#{i + 1}"))
    return out


OFFER_ASKS = [
    "{name} : notre commune est-elle éligible ?",
    "Comment bénéficier de {name} pour notre collectivité ?",
    "Qui contacter pour {name} ?",
    "{name}, c'est encore ouvert cette année ?",
    "Qui instruit le dossier {name} ?",
    "C'est quand la date limite pour {name} ?",
    "{name} : quel montant maximum ?",
    "Est-ce que {name} est cumulable avec d'autres aides ?",
    "On nous a parlé de {name}, c'est quoi exactement ?",
    "{name} c'est payant ou gratuit ?",
    "Où déposer la demande {name} ?",
    "Quels délais pour avoir une réponse sur {name} ?",
]
# A project title asked as a mayor asks it: the in-scope class must not be « short titles » only.
TITLE_ASKS = [
    "Quelles aides pour {t} ?",
    "{T} : qui peut financer ?",
    "Comment financer {t} ? Nous sommes une commune de {n} habitants.",
    "Notre commune prévoit {t}, quelles subventions ?",
    "Bonjour, projet de {t}, vers qui se tourner ?",
    "{T} : est-ce qu'on peut avoir une subvention ?",
    "La mairie voudrait lancer ce projet : {t}. Par où commencer ?",
    "On a un projet ({t}), il manque {k} 000 € dans le plan de financement.",
    "{T} - quelles aides et quel interlocuteur ?",
    "Notre intercommunalité porte {t}, un prêt est possible ?",
    "Qui peut nous accompagner pour {t} ?",
    "{T}, c'est éligible à quoi ?",
]
TITLE_QUESTION_SHARE = 0.3


def as_question(title: str, rng: random.Random) -> str:
    """'Construction d'une cantine' -> e.g. « Quelles aides pour construction d'une cantine ? »"""
    title = title.strip().rstrip(".")
    lower = title[:1].lower() + title[1:]
    return rng.choice(TITLE_ASKS).format(t=lower, T=title[:1].upper() + title[1:], n=rng.choice([300, 800, 1500, 4000, 12000]), k=rng.choice([50, 120, 300]))


def corpus_questions(corpus_dir: Path) -> list[Example]:
    """In-scope texts from the corpus: offer titles and summaries, and question forms built from the
    offer names and the theme labels (the wording of a mayor's question, not only of a title)."""
    from ingest.corpus import load_corpus

    corpus = load_corpus(corpus_dir)
    rng = random.Random(SEED)
    texts: list[tuple[str, str]] = []
    for offer in sorted(corpus.offers.values(), key=lambda o: o.id):
        names = [offer.title] + [a for a in offer.aliases[:3] if len(a) > 12]  # no bare acronym
        texts.append((offer.id, offer.title))
        texts.append((offer.id, offer.summary.split(". ")[0]))
        for ask in rng.sample(OFFER_ASKS, 2):
            texts.append((offer.id, ask.format(name=rng.choice(names))))
    themes = [
        "Quelles aides pour {label} dans notre commune ?",
        "Notre intercommunalité cherche un accompagnement : {label}.",
        "Qui peut financer notre projet ({label}) ?",
    ]
    for theme in corpus.themes.themes:
        label = theme.label[0].lower() + theme.label[1:]
        for ask in themes:
            texts.append((f"theme:{theme.id}", ask.format(label=label)))
    return [Example(t, "projet", "corpus", "corpus", "train", None, ref) for ref, t in texts]


def load_examples(corpus_dir: Path, titles_per_source: dict[str, int] = TITLES_PER_SOURCE) -> list[Example]:
    """Every example; the title files are sampled (seeded) on each side of their split, and a share of
    the sampled titles is asked as a question (`TITLE_ASKS`)."""
    rng = random.Random(SEED)
    out = particuliers() + collectivites() + written_questions() + parliamentary_questions() + gold() + corpus_questions(corpus_dir)
    for source, rows in (("dotations-2018", dotations()), ("fonds-vert-2023", fonds_vert())):
        by_split = defaultdict(list)
        for e in rows:
            by_split[e.split].append(e)
        n = titles_per_source[source]
        for split, size in (("train", n), ("test", n // 3)):
            for e in rng.sample(by_split[split], min(size, len(by_split[split]))):
                text = as_question(e.text, rng) if rng.random() < TITLE_QUESTION_SHARE else e.text
                out.append(Example(text, e.label, e.source, e.group, e.split, e.door, e.ref))
    return out
