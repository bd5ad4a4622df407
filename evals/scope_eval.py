"""Scope section of `aiguillage eval`: does the assistant refuse, with a door, what is outside its
field, and answer the real titles of commune projects? Measured through `Assistant.chat`, on the parts
of each dataset the committed scope model never saw (the `test` side of assistant/scope/data.py:
whole rubriques and départements held out).

Figures (report key `assistant.scope.*`, gated in evals/thresholds.toml):
  particuliers_refused   — private persons' questions refused with a door named (no referral, no clarification);
  collectivites_refused  — local-government questions outside funding/engineering, same test;
  titles_not_refused     — DETR/DSIL 2018 and Fonds vert 2023 project titles not refused by the scope decision;
  titles_answered        — the same titles answered with at least one offer or a clarification (informative:
                           « no offer » is also the ranking's business);
  door_right             — local-government refusals naming the door of the row's rubrique (assistant/scope/doors.py).
Fast mode: a stratified sample (seeded) of each held-out part; --full: every held-out row.

Parliamentary written questions (questions-parlementaires.csv, every row in both modes), on the houses
the scope model was not trained on (assistant/scope/data.py PARLIAMENT_TRAINED), key `parlementaires_*`:
  collectivites_refused / door_right / particuliers_refused — as above, on the real questions of Parliament;
  projets_not_refused / projets_answered — a local authority's funding question not refused / answered with an
offer or a clarification. The same figures per house (trained or not) are kept in `parlementaires.per_source`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from tqdm import tqdm

from assistant.guardrails import DOOR_SENTENCE, to
from assistant.scope import data as D
from assistant.scope.doors import DOORS

SAMPLE = {"particuliers": 160, "collectivites": 200, "titles": 200}  # rows per dataset in fast mode
SEED = 2026


def held_out_rows(full: bool, seed: int = SEED) -> dict[str, list[D.Example]]:
    """dataset -> held-out examples (stratified by source in fast mode)."""
    rng = random.Random(seed)
    sets = {
        "particuliers": [e for e in D.particuliers() if e.split == "test"],
        "collectivites": [e for e in D.collectivites() if e.split == "test"],
        "titles": [e for e in D.dotations() + D.fonds_vert() if e.split == "test"],
    }
    if full:
        return sets
    out = {}
    for name, rows in sets.items():
        by_source = defaultdict(list)
        for e in rows:
            by_source[e.source].append(e)
        share = min(1.0, SAMPLE[name] / max(1, len(rows)))
        out[name] = [e for s in sorted(by_source) for e in rng.sample(by_source[s], max(1, round(share * len(by_source[s]))))]
    return out


def _outcome(result) -> str:
    if result.kind == "refusal":
        return "refus avec porte" if DOOR_SENTENCE.search(result.answer.text if result.answer else "") else "refus sans porte"
    if result.kind == "clarification":
        return "précision"
    return "orientation" if result.referrals else "aucune offre"


def evaluate(assistant, full: bool, bar: dict) -> dict:
    """The scope block of the report: rates, counts, per-source outcome tables and the errors."""
    sets = held_out_rows(full)
    per_source: dict[str, Counter] = defaultdict(Counter)
    errors: list[dict] = []
    rates: dict[str, list[bool]] = defaultdict(list)
    door_right: list[bool] = []
    for name, rows in sets.items():
        for e in tqdm(rows, desc=f"Champ ({name})", unit="question", **bar):
            result = assistant.chat(e.text)
            outcome = _outcome(result)
            per_source[f"{name}:{e.source}"][outcome] += 1
            if name == "titles":
                ok = outcome != "refus avec porte" and outcome != "refus sans porte"
                rates["titles_not_refused"].append(ok)
                rates["titles_answered"].append(outcome in {"orientation", "précision"})
            else:
                ok = outcome == "refus avec porte"
                rates[f"{name}_refused"].append(ok)
                if name == "collectivites" and ok:
                    door_right.append(to(DOORS[e.door]) in result.answer.text)  # as the refusal words it
            if not ok:
                errors.append({"dataset": name, "source": e.source, "id": e.ref, "text": e.text, "outcome": outcome})
    parliament = _parliament(assistant, bar, rates, errors)
    block = {k: sum(v) / len(v) for k, v in rates.items() if v}
    block["door_right"] = sum(door_right) / len(door_right) if door_right else None
    block["n"] = {k: len(v) for k, v in rates.items()}
    block["parlementaires"] = parliament
    block["per_source"] = {k: dict(v) for k, v in sorted(per_source.items())}
    block["errors"] = errors
    block["sampling"] = "toutes les lignes tenues à l'écart" if full else f"échantillon stratifié par source, graine {SEED}"
    return block


PARLIAMENT_KEYS = ["collectivites_refused", "door_right", "particuliers_refused", "projets_not_refused", "projets_answered"]
PARLIAMENT_FIGURES = {
    "collectivite-autre": "collectivites_refused",
    "particulier": "particuliers_refused",
    "projet": "projets_not_refused",
}


def _parliament(assistant, bar: dict, rates: dict, errors: list[dict]) -> dict:
    """Every parliamentary question through the assistant: the held-out houses' outcomes go to `rates`
    (key `parlementaires_*`); returns every house's figures (per source, with its split) and the count
    of national-policy rows left out."""
    rows = D.parliamentary_questions()
    per_source: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    split_of: dict[str, str] = {}
    for e in tqdm(rows, desc="Champ (questions parlementaires)", unit="question", **bar):
        result = assistant.chat(e.text)
        outcome = _outcome(result)
        refused = outcome == "refus avec porte"
        figures = {PARLIAMENT_FIGURES[e.label]: not refused and outcome != "refus sans porte" if e.label == "projet" else refused}
        if e.label == "projet":
            figures["projets_answered"] = outcome in {"orientation", "précision"}
        if e.label == "collectivite-autre" and refused:
            figures["door_right"] = to(DOORS[e.door]) in result.answer.text
        split_of[e.source] = e.split
        for key, ok in figures.items():
            per_source[e.source][key].append(ok)
            if e.split == "test":
                rates[f"parlementaires_{key}"].append(ok)
        if not figures[PARLIAMENT_FIGURES[e.label]] or figures.get("door_right") is False:
            errors.append({"dataset": "parlementaires", "source": e.source, "id": e.ref, "text": e.text,
                           "outcome": outcome if "door_right" not in figures else f"{outcome} (porte attendue : {e.door})"})
    return {
        "per_source": {
            source: {"split": split_of[source]} | {k: round(sum(v) / len(v), 4) for k, v in sorted(keys.items())}
            | {"n": {k: len(v) for k, v in sorted(keys.items())}}
            for source, keys in sorted(per_source.items())
        },
        "hors_sujet_national": D.parliamentary_national(),
    }


def scope_html(report: dict) -> str:
    """The report's « Champ » section: rates, per-source outcomes, errors (HTML fragment)."""
    from html import escape

    block = report.get("systems", {}).get("assistant", {}).get("scope")
    if not block:
        return ""
    labels = {
        "particuliers_refused": "Particuliers refusés avec une porte",
        "collectivites_refused": "Collectivités hors financement refusées avec une porte",
        "titles_not_refused": "Titres de projets non refusés",
        "titles_answered": "Titres de projets avec une offre ou une précision",
        "door_right": "Bonne porte pour les collectivités refusées",
        "parlementaires_collectivites_refused": "Questions parlementaires de collectivités hors financement refusées avec une porte",
        "parlementaires_door_right": "Questions parlementaires : bonne porte pour les collectivités refusées",
        "parlementaires_particuliers_refused": "Questions parlementaires de particuliers refusées avec une porte",
        "parlementaires_projets_not_refused": "Questions parlementaires de financement de projet non refusées",
        "parlementaires_projets_answered": "Questions parlementaires de financement de projet avec une offre ou une précision",
    }
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{block[k]:.3f}</td><td>{block['n'].get(k, '')}</td></tr>"
        for k, label in labels.items() if block.get(k) is not None
    )
    outcomes = ["refus avec porte", "refus sans porte", "précision", "orientation", "aucune offre"]
    table = "".join(
        f"<tr><td>{escape(source)}</td>" + "".join(f"<td>{counts.get(o, 0)}</td>" for o in outcomes) + "</tr>"
        for source, counts in block["per_source"].items()
    )
    parliament = block.get("parlementaires", {})
    houses = "".join(
        f"<tr><td>{escape(source)}</td><td>{'entraînée' if v['split'] == 'train' else 'tenue à l’écart'}</td>"
        + "".join(f"<td>{v[k]:.3f} ({v['n'][k]})</td>" if k in v else "<td></td>" for k in PARLIAMENT_KEYS) + "</tr>"
        for source, v in parliament.get("per_source", {}).items()
    )
    errors = "".join(
        f"<tr><td>{escape(e['dataset'])}</td><td>{escape(e['source'])}</td><td>{escape(e['text'])}</td><td>{escape(e['outcome'])}</td></tr>"
        for e in block["errors"][:200]
    )
    return (
        "<h2>Champ : hors champ refusé, projets répondus</h2>"
        f"<p class='note'>Parties jamais vues par le modèle de champ (rubriques et départements tenus à l'écart) ; {escape(block['sampling'])}. "
        "Les matrices de l'entraînement (une source retirée à la fois) sont affichées par <code>aiguillage scope train</code> "
        "et gardées dans <code>assistant/scope/model.json</code>.</p>"
        f"<table><tr><th>mesure</th><th>valeur</th><th>n</th></tr>{rows}</table>"
        "<h3>Par source : ce que reçoit la question</h3>"
        "<table><tr><th>jeu : source</th>" + "".join(f"<th>{o}</th>" for o in outcomes) + f"</tr>{table}</table>"
        "<h3>Questions écrites du Parlement, par assemblée</h3>"
        f"<p class='note'>{parliament.get('hors_sujet_national', 0)} questions de politique nationale qu'un maire ne poserait pas à l'assistant sont comptées à part, hors des chiffres.</p>"
        "<table><tr><th>source</th><th>modèle de champ</th>" + "".join(f"<th>{escape(k)}</th>" for k in PARLIAMENT_KEYS) + f"</tr>{houses}</table>"
        f"<h3>Erreurs ({len(block['errors'])})</h3><table><tr><th>jeu</th><th>source</th><th>texte</th><th>reçu</th></tr>{errors}</table>"
    )
