"""Train and calibrate the everyday-door models (assistant/everyday.py) and write assistant/models/everyday.json.

    python -m evals.door_training            # about a minute on 2 cores; prints the held-out figures
    python -m evals.door_training other-leads   # only the « Autres pistes » evidence, on the model in place
    python -m evals.door_training before-grants # only the floors before the everyday grants, on the model in place

Splits never put the same source in training and in the reported figures:
- 2018 DETR/DSIL titles and Fonds vert 2023 titles: by département (crc32 of the code, even = tune);
- out-of-scope questions: by service-public rubrique (crc32, even = tune);
- gold cases and portes.csv: their own dev/test split (dev = tune);
- portes-entrainement.csv and portes-entrainement-courant.csv: written for training, all tune;
  portes-tenus.csv is never read here
  (`aiguillage eval` measures generalisation on it).
Thresholds are chosen on out-of-fold predictions of the tune part only; the report part is read once,
for the figures written to the model file (`figures`).
"""

from __future__ import annotations

import csv
import json
import random
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from assistant.everyday import (EVIDENCE_FEATURES, MODEL_PATH, EverydayModel, char_analyzer, evidence_features,
                                evidence_probabilities)

DATASETS = Path(__file__).resolve().parent / "datasets"
NGRAMS = (2, 5)
MAX_FEATURES = 20000
GRANTS = {"etat-detr", "etat-dsil", "etat-dsid"}
NON_INVESTMENT_SUPPORTS = {"technical_engineering", "financial_engineering", "legal_engineering", "tool", "network",
                           "training", "label", "other"}
# Fonds vert measures whose funded titles are works (positives); the « Ingénierie » measure funds studies.
WORKS_MEASURES = {
    "Rénovation énergétique des bâtiments publics locaux", "Rénovation des parcs de luminaires d’éclairage public",
    "Renaturation des villes et des villages", "Recyclage foncier", "Développement du covoiturage",
    "Prévention des risques d’incendies de forêt et de végétation",
    "Soutien au tri à la source et à la valorisation des biodéchets",
}
STUDY_MEASURE = "Ingénierie"
# Question forms of a title (the same for both classes, so that a form never predicts the class).
QUESTION_FORMS = [
    "Bonjour, notre commune voudrait {t}. Quelles aides ?",
    "Nous avons un projet : {t}, qui peut nous aider ?",
    "{t} : comment le financer ?",
    "La communauté de communes prépare {t}, quels financements possibles ?",
]
QUESTION_SHARE = 0.15
SEED = 2018
# A door named beside offers on a gold question costs this much against a right door on portes.csv:
# extra text, not a wrong referral (a wrong door leading the answer is counted in full, « harmed »).
BESIDE_COST = 0.25
# Ordinary project titles (2018, tune départements) with no theme only a door serves: a door named
# there is noise (« Programme voirie » → EPF); each one costs this much against a right door.
NOISE_COST = 1.0
DOTATION_TITLES = 150
# Fonds vert 2023 titles per measure (each side of the département split): projects a corpus offer funded,
# so a door leading their answer is an error (calibrate_lead); the tune side is tuned on, the other reported.
FONDS_VERT_TITLES = 40
# A gold dev question whose expected offer leaves the first three beside a leading door costs this
# much against a door question answered without unrelated offers.
GOLD_LOSS_COST = 3.0
NEVER_LEADS = 99.0  # a lead gap no cosine reaches: the gap rule off
# The investment decision alone, as an EverydayModel (the other decisions are not fitted yet).
INVESTMENT_KEYS = ("ngram_range", "vocabulary", "idf", "coef", "intercept", "investment_threshold")
INVESTMENT_ONLY = dict(evidence_coef=[], evidence_intercept=0.0, evidence_floor=0.0, signpost_floor=0.0,
                       signpost_beside_floor=0.0, signpost_margin=0.0, signpost_bonus=0.0, signpost_lead_gap=0.0,
                       signpost_lead_floor=0.0,
                       evidence_beside_door=0.0, signpost_lead_theme_guard=False, figures={})
# Door questions: portes.csv (its dev part tunes, its test part reports) and questions written for
# training only (all tune). evals/datasets/portes-tenus.csv is never read here: it measures generalisation.
DOOR_SETS = {"portes.csv": "portes", "portes-entrainement.csv": "portes-entrainement",
             "portes-entrainement-courant.csv": "portes-entrainement-courant"}


def tune_half(key: str) -> bool:
    return zlib.crc32(key.encode("utf-8")) % 2 == 0


def read_csv(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def gold_cases() -> list[dict]:
    return [json.loads(line) for line in (DATASETS / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def investment_examples(offer_supports: dict[str, set[str]]) -> list[tuple[str, int, str, bool]]:
    """(text, label, source, tune) — 1 = an investment project, 0 = anything else."""
    data = []
    for row in read_csv("dotations-2018-projets.csv"):
        data.append((row["titre"], 1, "dotations-2018", tune_half(row["departement"])))
    for row in read_csv("fonds-vert-2023-projets.csv"):
        measure, dep = row["nom_demarche_ds"], row["code_departement"].zfill(2)
        if measure == STUDY_MEASURE:
            data.append((row["nom_du_projet"], 0, "fonds-vert-ingenierie", tune_half(dep)))
        elif measure in WORKS_MEASURES:
            data.append((row["nom_du_projet"], 1, "fonds-vert-travaux", tune_half(dep)))
    for name, source in (("hors-champ-particuliers.csv", "hors-champ-particuliers"), ("hors-champ-collectivites.csv", "hors-champ-collectivites")):
        for row in read_csv(name):
            data.append((row["question"], 0, source, tune_half(row["rubrique"] or row["genre"])))
    for case in gold_cases():
        expected = set(case["expected"]["primary"]) | set(case["expected"]["acceptable"])
        if expected & GRANTS:
            label = 1
        elif case["kind"] == "out_of_scope" or "refusal" in case["checks"]:
            label = 0
        elif expected and all(offer_supports.get(i, set()) <= NON_INVESTMENT_SUPPORTS for i in expected):
            label = 0  # engineering, tools, networks only: not an investment question
        else:
            continue  # a thematic grant without DETR/DSIL: the gold set does not say
        data.append((" ".join(case["turns"]), label, "gold", case["split"] == "dev"))
    rng = random.Random(SEED)
    forms = [
        (rng.choice(QUESTION_FORMS).format(t=text[:1].lower() + text[1:]), label, source + "-question", tune)
        for text, label, source, tune in data
        if source.startswith(("dotations", "fonds-vert")) and rng.random() < QUESTION_SHARE
    ]
    return data + forms


def per_source_accuracy(examples, probabilities, threshold: float) -> dict[str, dict]:
    by_source: dict[str, list[bool]] = defaultdict(list)
    for (_, label, source, _), p in zip(examples, probabilities):
        by_source[source].append((p >= threshold) == bool(label))
    return {s: {"accuracy": round(float(np.mean(v)), 4), "n": len(v)} for s, v in sorted(by_source.items())}


def train_investment(offer_supports: dict[str, set[str]], log) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    examples = investment_examples(offer_supports)
    tune = [e for e in examples if e[3]]
    report = [e for e in examples if not e[3]]
    analyzer = char_analyzer(NGRAMS)

    def fit(rows):
        vectorizer = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=3, max_features=MAX_FEATURES)
        matrix = vectorizer.fit_transform([r[0] for r in rows])
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000).fit(matrix, [r[1] for r in rows])
        return vectorizer, model

    # Threshold from out-of-fold predictions of the tune part (folds never split a source group).
    groups = [zlib.crc32(e[0].encode()) % 5 for e in tune]
    out_of_fold = np.zeros(len(tune))
    for train_idx, test_idx in GroupKFold(n_splits=5).split(tune, groups=groups):
        vectorizer, model = fit([tune[i] for i in train_idx])
        out_of_fold[test_idx] = model.predict_proba(vectorizer.transform([tune[i][0] for i in test_idx]))[:, 1]
    grid = [round(t, 2) for t in np.arange(0.2, 0.91, 0.05)]
    # Balanced over sources: the mean of per-source accuracies, so that 20 000 titles do not drown the questions.
    best = max(grid, key=lambda t: (np.mean([v["accuracy"] for v in per_source_accuracy(tune, out_of_fold, t).values()]), -t))
    vectorizer, model = fit(tune)
    held_out = model.predict_proba(vectorizer.transform([r[0] for r in report]))[:, 1]
    figures = {"threshold": best, "tune_out_of_fold": per_source_accuracy(tune, out_of_fold, best),
               "held_out": per_source_accuracy(report, held_out, best)}
    log(f"investissement : seuil {best}, hors réglage {json.dumps(figures['held_out'], ensure_ascii=False)}")
    vocabulary = {g: int(i) for g, i in vectorizer.vocabulary_.items()}
    return {
        "ngram_range": list(NGRAMS),
        "vocabulary": vocabulary,
        "idf": [round(float(v), 6) for v in vectorizer.idf_],
        "coef": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
        "investment_threshold": best,
        "figures": {"investment": figures},
    }


def sampled_titles(measure_themes: dict[str, list[str]]) -> list[dict]:
    """Rows {text, relevant (empty), split, source, profile; measure_themes for a Fonds vert title} of the
    project titles the door calibrations read: DOTATION_TITLES 2018 commune titles of the tune départements
    (split dev), then FONDS_VERT_TITLES Fonds vert 2023 titles per measure and side of the département split
    (dev: tune départements, test: the others); `measure_themes`: ThemeVocabulary.fonds_vert_measures."""
    from assistant.profile import Profile

    rng = random.Random(SEED)
    titles = [r for r in read_csv("dotations-2018-projets.csv") if r["echelon"] == "Commune" and tune_half(r["departement"])]
    rows = [{"text": row["titre"], "relevant": set(), "split": "dev", "source": "dotations",
             "profile": Profile(collectivity_type="commune", departement_code=row["departement"])}
            for row in rng.sample(titles, DOTATION_TITLES)]
    by_measure: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    for row in read_csv("fonds-vert-2023-projets.csv"):
        by_measure[(row["nom_demarche_ds"], tune_half(row["code_departement"].zfill(2)))].append(row)
    for (measure, tune), group in sorted(by_measure.items()):
        rows += [{"text": row["nom_du_projet"], "relevant": set(), "split": "dev" if tune else "test",
                  "source": "fonds-vert", "measure_themes": set(measure_themes.get(measure, ())),
                  "profile": Profile(collectivity_type="commune", departement_code=row["code_departement"].zfill(2))}
                 for row in rng.sample(group, min(FONDS_VERT_TITLES, len(group)))]
    return rows


def candidate_rows(assistant) -> list[dict]:
    """Gold single cases and portes.csv questions with their ranked candidates (before the door stage)."""
    from assistant.profile import Profile

    from ingest.corpus import load_corpus, load_themes

    signposts = load_corpus(assistant.settings.corpus_dir).signposts
    rows = []
    for case in gold_cases():
        if case["kind"] == "single":
            expected = set(case["expected"]["primary"]) | set(case["expected"]["acceptable"])
            rows.append({"text": case["turns"][-1], "relevant": expected, "split": case["split"], "source": "gold",
                         "profile": Profile()})
    for name, source in DOOR_SETS.items():
        for row in read_csv(name):
            relevant = set(row["offres_admises"].split()) | set(signposts[row["porte"]].complements)
            rows.append({"text": row["question"], "relevant": relevant, "split": row["split"],
                         "source": source, "porte": row["porte"],
                         "profile": Profile(collectivity_type=row["type"], departement_code=row["departement"])})
    rows += sampled_titles(load_themes(assistant.settings.corpus_dir).fonds_vert_measures)
    return read_rows(assistant, rows)


def read_rows(assistant, rows: list[dict]) -> list[dict]:
    """`rows` ({text, profile…}) read as the service reads a turn, before the door stage: each gains its
    themes, ranked hits, query and query vector, turn profile, signpost similarities and eligible offers."""
    from assistant.eligibility import evaluate
    from assistant.pipeline.normalise import normalise
    from assistant.pipeline.understand import understand

    for row in rows:
        text = normalise(row["text"])
        understood = understand(text, row["profile"], {}, assistant.themes, assistant.territories)
        row["themes"] = understood.profile.themes
        row["hits"] = assistant.rank(understood.query, understood.profile, text)
        # The doors read the question as the service does: its query vector, in the cards' spelling.
        vector = assistant.embeddings.embed_query(assistant.handle.current().lexicon.canonical(understood.query))
        row["similarities"] = assistant.signpost_finder.similarities(understood.query, vector)
        row["query"], row["vector"], row["turn_profile"] = understood.query, vector, understood.profile
        row["door_similarity"] = max(row["similarities"])
        # Open to the asker by the card's rules (the eligibility engine, the row's profile).
        row["eligible"] = {h.offer.id for h in row["hits"] if evaluate(h.offer, row["profile"]).status == "eligible"}
    return rows


def train_evidence(rows: list[dict], log) -> dict:
    """The evidence model: tuned on the dev rows (gold dev, portes.csv dev, portes-entrainement.csv),
    reported per source on the test rows (gold test, portes.csv test), never fitted there."""
    from sklearn.linear_model import LogisticRegression

    def dataset(split):
        triples = [(f, h.offer.id in r["relevant"], r["source"]) for r in rows if r["split"] == split and r["source"] not in {"dotations", "fonds-vert"}
                   for h, f in zip(r["hits"], evidence_features(r["hits"], r["door_similarity"])) if h.offer.id not in GRANTS]
        return (np.array([t[0] for t in triples]), np.array([t[1] for t in triples]), np.array([t[2] for t in triples]))

    x_tune, y_tune, s_tune = dataset("dev")
    x_report, y_report, s_report = dataset("test")
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x_tune, y_tune)
    p_tune, p_report = model.predict_proba(x_tune)[:, 1], model.predict_proba(x_report)[:, 1]
    # The highest floor that keeps 90 % of the offers expected by the gold tune questions (the project
    # questions whose offers the floor must keep; a door question's admitted offers are few, and its door
    # answers it).
    grid = [round(t, 2) for t in np.arange(0.1, 0.71, 0.02)]
    gold_tune = s_tune == "gold"
    floor = max([t for t in grid if (p_tune[y_tune & gold_tune] >= t).mean() >= 0.9] or [grid[0]])

    def rates(p, y, sources):
        out = {"relevant_kept": round(float((p[y] >= floor).mean()), 4), "unrelated_dropped": round(float((p[~y] < floor).mean()), 4),
               "n": int(len(y))}
        for source in sorted(set(sources)):
            mask = sources == source
            out[source] = {"relevant_kept": round(float((p[mask & y] >= floor).mean()), 4),
                           "unrelated_dropped": round(float((p[mask & ~y] < floor).mean()), 4), "n": int(mask.sum())}
        return out

    figures = {"floor": floor, "features": EVIDENCE_FEATURES, "tune": rates(p_tune, y_tune, s_tune),
               "held_out": rates(p_report, y_report, s_report)}
    log(f"preuve : plancher {floor}, hors réglage {figures['held_out']}")
    coef, intercept = [round(float(c), 6) for c in model.coef_[0]], round(float(model.intercept_[0]), 6)
    for r in rows:  # the calibrated evidence of every candidate, for the door's calibration
        r["evidence"] = evidence_probabilities(coef, intercept, r["hits"], r["door_similarity"])
    return {"evidence_coef": coef, "evidence_intercept": intercept, "evidence_floor": floor, "figures": {"evidence": figures}}


def calibrate_signposts(rows: list[dict], finder, floor_: float, log) -> dict:
    """Floor, margin and bonus that name the right door on the dev questions of portes.csv, at the
    least cost on the gold dev questions: a door that would lead there (no evidenced offer, or a
    door-only theme) while an expected offer is among the three best but under the evidence floor
    (it would be dropped)."""
    portes = [r for r in rows if "porte" in r]
    gold = [r for r in rows if r["source"] == "gold"]

    def evidenced(r, hit) -> bool:
        return r["evidence"][hit.offer.id] >= floor_

    ordinary = [r for r in rows if r["source"] == "dotations" and not set(r["themes"]) & finder.door_themes]
    bonuses = [0.05, 0.1, 0.15]
    scored = {b: {id(r): finder.scores(r["text"], r["themes"], b, r["similarities"]) for r in rows} for b in bonuses}
    for r in gold:
        kept = [h for h in r["hits"] if evidenced(r, h)]
        r["at_risk"] = any(h.offer.id in r["relevant"] and not evidenced(r, h) for h in r["hits"][:3])
        r["no_evidence"] = not kept

    def named(r, b, floor, margin):
        s = scored[b][id(r)]
        return [p for score, p in s[:2] if score >= floor and s[0][0] - score <= margin]

    def right(split, b, floor, margin):
        part = [r for r in portes if r["split"] == split]
        return float(np.mean([r["porte"] in {p.id for p in named(r, b, floor, margin)} for r in part]))

    def harmed(split, b, floor):
        part = [r for r in gold if r["split"] == split]
        def leads(r):
            doors = named(r, b, floor, 0.0)
            return bool(doors) and (r["no_evidence"] or bool(set(doors[0].themes) & finder.door_themes & set(r["themes"])))
        return float(np.mean([leads(r) and r["at_risk"] for r in part]))

    def noise(b, floor):
        return float(np.mean([bool(named(r, b, floor, 0.0)) for r in ordinary]))

    grid = [(b, round(f, 2), m) for b in bonuses for f in np.arange(0.2, 0.61, 0.02) for m in (0.0, 0.02, 0.05)]
    best = max(grid, key=lambda g: (right("dev", *g) - harmed("dev", g[0], g[1]) - NOISE_COST * noise(g[0], g[1]), -g[2], g[1]))
    b, floor, margin = best

    # Beside offers that answer (the door does not lead), one door is named, above a floor of its own:
    # the one that names the right door on portes.csv at the least rate of doors named on gold questions.
    def beside_doors(r, beside, margin_):
        return {p.id for p in named(r, b, beside, margin_)[:1]}

    def right_beside(split, beside):
        part = [r for r in portes if r["split"] == split]
        return float(np.mean([r["porte"] in beside_doors(r, beside, margin) or r["porte"] in
                              {p.id for p in named(r, b, floor, margin) if leads_for(r, p)} for r in part]))

    def leads_for(r, door):
        no_evidence = not any(evidenced(r, h) for h in r["hits"])
        return no_evidence or bool(set(door.themes) & finder.door_themes & set(r["themes"]))

    def fired_beside(split, beside):
        part = [r for r in gold if r["split"] == split]
        return float(np.mean([bool(beside_doors(r, beside, 0.0)) for r in part]))

    besides = [round(t, 2) for t in np.arange(floor, 0.71, 0.02)]
    beside = max(besides, key=lambda t: (right_beside("dev", t) - BESIDE_COST * fired_beside("dev", t) - NOISE_COST * noise(b, t), t))
    figures = {"bonus": b, "floor": floor, "margin": margin, "beside_floor": beside,
               "ordinary_titles_with_a_door": noise(b, floor),
               "tune": {"right_body": right_beside("dev", beside), "gold_harmed": harmed("dev", b, floor),
                        "gold_door_beside": fired_beside("dev", beside)},
               "held_out": {"right_body": right_beside("test", beside), "gold_harmed": harmed("test", b, floor),
                            "gold_door_beside": fired_beside("test", beside)}}
    log(f"portes : {json.dumps(figures, ensure_ascii=False)}")
    return {"signpost_floor": floor, "signpost_beside_floor": beside, "signpost_margin": margin, "signpost_bonus": b,
            "figures": {"signposts": figures}}


def calibrate_lead(rows: list[dict], finder, evidence_floor: float, signposts: dict, log) -> dict:
    """When a door leads the answer, and what is shown beside it (assistant/pipeline/door.py):
    - `signpost_lead_gap`: a door passing its floor also leads when its score exceeds the best
      offer's dense similarity by this much (the question is the door's more than any offer's)
      and passes `signpost_lead_floor` (the needs phrases bring ordinary works and studies near a
      door too, but less near than its own questions);
    - `evidence_beside_door`: beside a leading door, an offer that is not one of the door's
      complements needs this evidence to be shown.
    Chosen on the dev rows: right body named on the door questions (portes.csv dev and
    portes-entrainement.csv) minus the rates of unrelated offers shown there and marked « éligible »
    (the issue's target: 0), minus GOLD_LOSS_COST
    per gold dev question whose expected offer leaves the first three, minus NOISE_COST per ordinary
    2018 title a door would lead, among the settings under which no Fonds vert 2023 title of the tune
    départements (a project an offer funded) has its first offer lose its measure's theme (a door
    leading it pushed that offer aside: what `aiguillage eval` measures as theme@1, issue 10's no-loss
    reference); the test
    rows (gold test, portes.csv test, Fonds vert titles of the other départements) are reported.
    The theme guard is kept on: in an investment project, neither the gap nor a door-only theme makes a
    door lead when an evidenced offer carries a theme of the question the door does not carry
    (« éclairage public du stade »: the lighting offer answers, the sports door is named beside); the
    best setting without it is reported (`best_without`)."""
    b, floor, margin, beside = (signposts[k] for k in ("signpost_bonus", "signpost_floor", "signpost_margin",
                                                        "signpost_beside_floor"))
    for r in rows:
        r["scored"] = finder.scores(r["text"], r["themes"], b, r["similarities"])
        r["best_dense"] = max([h.dense_similarity for h in r["hits"] if h.offer.id not in GRANTS] or [0.0])

    def outcome(r, gap, beside_door, guard, lead_floor):
        """(offers shown without the grants, doors named, whether a door leads)."""
        ids = [h.offer.id for h in r["hits"] if h.offer.id not in GRANTS]
        weak = {i for i in ids if r["evidence"][i] < evidence_floor}
        scored = r["scored"]
        doors = [p for score, p in scored[:2] if score >= floor and scored[0][0] - score <= margin]
        leads = False
        if doors:
            door_theme = bool(set(doors[0].themes) & finder.door_themes & set(r["themes"]))
            own = set(r["themes"]) - set(doors[0].themes)
            themed = r["investment"] and any(set(h.offer.themes) & own for h in r["hits"]
                                             if h.offer.id in ids and h.offer.id not in weak)
            gap_leads = scored[0][0] - r["best_dense"] >= gap and scored[0][0] >= lead_floor
            leads = len(weak) == len(ids) or ((door_theme or gap_leads) and not (guard and themed))
            if not leads:
                doors = [p for score, p in scored[:1] if score >= beside]
        complements = set(doors[0].complements) if leads else set()
        kept = [i for i in ids if not (leads and (i in weak or (i not in complements and r["evidence"][i] < beside_door)))]
        return sorted(kept, key=lambda i: i in weak)[:3], [p.id for p in doors], leads

    door_rows = [r for r in rows if "porte" in r]
    gold = [r for r in rows if r["source"] == "gold" and r["relevant"]]
    ordinary = [r for r in rows if r["source"] == "dotations" and not set(r["themes"]) & finder.door_themes]
    funded = [r for r in rows if r["source"] == "fonds-vert"]
    offer_themes = {h.offer.id: set(h.offer.themes) for r in funded for h in r["hits"]}

    def theme_first(r, shown) -> bool:
        """The first offer shown (grants aside) carries a theme of the title's Fonds vert measure."""
        return bool(shown) and bool(offer_themes[shown[0]] & r["measure_themes"])

    for r in funded:  # the first offer without any door leading (the gap rule off)
        r["theme_first_before"] = theme_first(r, outcome(r, float("inf"), 0.0, False, floor)[0])

    def marked_eligible(r, offer_id, beside_door) -> bool:
        """« éligible » in the answer: open to the asker, and not kept « à vérifier » for its relevance (its
        evidence under `beside_door` while a door card is closer to the question: door.py)."""
        hit = next(h for h in r["hits"] if h.offer.id == offer_id)
        return offer_id in r["eligible"] and not (r["evidence"][offer_id] < beside_door
                                                 and hit.dense_similarity < r["door_similarity"])

    def measure(split, gap, beside_door, guard, lead_floor):
        args = (gap, beside_door, guard, lead_floor)
        doors = [(r, outcome(r, *args)) for r in door_rows if r["split"] == split]
        golds = [(r, outcome(r, *args)) for r in gold if r["split"] == split]
        titles = [(r, outcome(r, *args)) for r in funded if r["split"] == split]
        return {
            "right_body": float(np.mean([r["porte"] in named for r, (_, named, _) in doors])),
            "unrelated_shown": float(np.mean([bool(set(shown) - r["relevant"]) for r, (shown, _, _) in doors])),
            "unrelated_eligible": float(np.mean([any(marked_eligible(r, i, beside_door) for i in set(shown) - r["relevant"])
                                                 for r, (shown, _, _) in doors])),
            "gold_expected_in_3": float(np.mean([bool(set(shown) & r["relevant"]) for r, (shown, _, _) in golds])),
            "ordinary_titles_led": float(np.mean([outcome(r, *args)[2] for r in ordinary])) if split == "dev" else None,
            "fonds_vert_titles_led": float(np.mean([led for _, (_, _, led) in titles])),
            "fonds_vert_theme_lost": float(np.mean([r["theme_first_before"] and not theme_first(r, shown)
                                                    for r, (shown, _, _) in titles])),
        }

    baseline = measure("dev", float("inf"), 0.0, False, floor)

    def objective(g):
        m = measure("dev", *g)
        if m["fonds_vert_theme_lost"] > 0:
            return float("-inf")  # no loss: a setting that costs a funded project its offer is not a candidate
        return (m["right_body"] - m["unrelated_shown"] - m["unrelated_eligible"] - GOLD_LOSS_COST * max(0.0, baseline["gold_expected_in_3"] - m["gold_expected_in_3"])
                - NOISE_COST * m["ordinary_titles_led"])

    # Lead floors: from the door floor up (the gap off, the lead floor does not matter: the door floor).
    lead_floors = [round(float(t), 2) for t in np.arange(floor, 0.71, 0.05)]
    grid = [(gap, round(t, 2), guard, lead) for gap in (float("inf"), 0.1, 0.08, 0.05, 0.02, 0.0)
            for t in np.arange(evidence_floor, 0.96, 0.01) for guard in (False, True)
            for lead in (lead_floors if gap != float("inf") else lead_floors[:1])]
    values = {g: objective(g) for g in grid}
    # The guard is kept on (a door leading an investment project an evidenced offer answers on its own theme
    # is the defect the guard prevents; its value without the guard is reported in `best_without`).
    gap, _, guard, _ = max((g for g in grid if g[2]), key=lambda g: (values[g], g[0], -g[1]))
    # The lead floor: the median of those that reach the best value (between two dev questions, no single
    # one decides its exact place).
    best = max(v for g, v in values.items() if g[0] == gap and g[2] == guard)
    leads = sorted({g[3] for g in grid if g[0] == gap and g[2] == guard and values[g] == best})
    lead_floor = leads[(len(leads) - 1) // 2]
    # Beside a leading door, the lowest evidence of those that reach the best value: an offer is hidden
    # only as far as the tune questions ask for it (hiding more costs nothing there, and is unmeasured).
    plateau = [g[1] for g in grid if g[0] == gap and g[2] == guard and g[3] == lead_floor and values[g] == best]
    beside_door = round(float(min(plateau)), 2)
    chosen = (gap, beside_door, guard, lead_floor)
    gap = gap if gap != float("inf") else NEVER_LEADS
    other = max((g for g in grid if g[2] != guard), key=lambda g: (values[g], g[0], -g[1]))
    figures = {"lead_gap": gap, "lead_floor": lead_floor, "evidence_beside_door": beside_door, "theme_guard": guard,
               "tune": measure("dev", *chosen), "tune_before": baseline,
               "held_out": measure("test", *chosen),
               "held_out_before": measure("test", float("inf"), 0.0, False, floor),
               "best_without" if guard else "best_with": {"gap": other[0] if other[0] != float("inf") else NEVER_LEADS,
                                                          "evidence_beside_door": other[1], "lead_floor": other[3],
                                                          "objective": round(values[other], 4),
                                                          "tune": measure("dev", *other), "held_out": measure("test", *other)},
               "objective": round(best, 4)}
    log(f"porte en tête : {json.dumps(figures, ensure_ascii=False)}")
    return {"signpost_lead_gap": gap, "signpost_lead_floor": lead_floor, "evidence_beside_door": beside_door,
            "signpost_lead_theme_guard": guard, "figures": {"lead": figures}}


# « Autres pistes » must cost no tune-side relevant offer its place: no gold tune question loses an expected
# offer from its first three, no Fonds vert 2023 title of the tune départements loses its measure's theme from
# its first three (`aiguillage eval`'s offer_top3 and theme@3: hiding a right offer costs a referral tool more
# than showing an unrelated one beside it).
OTHER_LEADS_SOURCES = ("gold", "fonds-vert", *DOOR_SETS.values())


def other_leads(rows: list[dict], assistant, model: EverydayModel, threshold: float,
                tune_only: bool = False) -> Iterator[tuple[dict, list[str], list[str]]]:
    """(row, ids of the offers the door stage recommends, ids of its « Autres pistes »: the recommended
    offers after the first, neither vouched for by a door nor named) of each gold, Fonds vert and
    door-question row (`tune_only`: the dev rows), with `threshold` as model.evidence_other_leads (the door
    stage run as the service runs it, on copies of the row's hits). A generator: a caller may stop early."""
    from dataclasses import replace as with_fields

    from assistant.eligibility import evaluate
    from assistant.pipeline.door import open_door

    index, chosen = assistant.handle.current(), with_fields(model, evidence_other_leads=threshold)
    for r in rows:
        if r["source"] not in OTHER_LEADS_SOURCES or (tune_only and r["split"] != "dev"):
            continue
        hits = [with_fields(h, adjustments=dict(h.adjustments)) for h in r["hits"]]
        verdicts = {h.offer.id: evaluate(h.offer, r["turn_profile"]) for h in hits}
        door = open_door(hits, verdicts, r["turn_profile"], r["query"], index, chosen, assistant.signpost_finder,
                         assistant.settings.max_referrals, r["vector"])
        yield (r, [h.offer.id for h in door.recommended],
               [h.offer.id for h in door.recommended[1:] if not {"everyday_door", "door_complement", "named"} & set(h.adjustments)])


def right_in_three(r: dict, shown: list[str], offer_themes: dict[str, set[str]]) -> bool:
    """A gold question's expected offer, or a Fonds vert title's measure theme, among the first three offers."""
    if r["source"] == "fonds-vert":
        return any(offer_themes[i] & r["measure_themes"] for i in shown[:3])
    return bool(set(shown[:3]) & r["relevant"])


def calibrate_other_leads(rows: list[dict], assistant, model: EverydayModel, log) -> dict:
    """`evidence_other_leads`: the highest evidence (grid 0.01 to 0.90, step 0.01) at which no tune row —
    gold dev question with expected offers, Fonds vert title of the tune départements — loses from its first
    three the right offer (the expected one, one carrying the measure's theme) it has with no such threshold.
    Reported per source and split: relevant « Autres pistes » kept and unrelated ones shown per question (gold,
    door questions), rows that lose their right offer from the first three (gold, Fonds vert)."""
    offer_themes = {h.offer.id: set(h.offer.themes) for r in rows for h in r["hits"]}
    before = {id(r): (shown, ids) for r, shown, ids in other_leads(rows, assistant, model, 0.0)}
    was_right = {id(r): right_in_three(r, before[id(r)][0], offer_themes) for r in rows
                 if id(r) in before and (r["source"] == "fonds-vert" or r["relevant"])}

    def costs_a_place(threshold) -> bool:
        return any(was_right.get(id(r)) and not right_in_three(r, shown, offer_themes)
                   for r, shown, _ in other_leads(rows, assistant, model, threshold, tune_only=True))

    grid = [round(t, 2) for t in np.arange(0.90, 0.0, -0.01)]
    chosen = next((t for t in grid if not costs_a_place(t)), 0.0)
    at = {id(r): (shown, ids) for r, shown, ids in other_leads(rows, assistant, model, chosen)}

    def table(split):
        out = {}
        for source in OTHER_LEADS_SOURCES:
            part = [r for r in rows if r["split"] == split and r["source"] == source and id(r) in before]
            if not part:
                continue
            figures = {"questions": len(part)}
            if source != "fonds-vert":
                def count(shown, relevant, part=part):
                    return sum((i in r["relevant"]) == relevant for r in part for i in shown[id(r)][1])
                figures |= {"relevant_kept": round(count(at, True) / max(count(before, True), 1), 4),
                            "unrelated_per_question": round(count(at, False) / len(part), 4),
                            "unrelated_per_question_before": round(count(before, False) / len(part), 4)}
            if source in ("gold", "fonds-vert"):
                figures["right_lost_from_three"] = sum(was_right.get(id(r), False)
                                                       and not right_in_three(r, at[id(r)][0], offer_themes) for r in part)
            out[source] = figures
        return out

    figures = {"threshold": chosen, "rule": "no tune-side right offer lost from the first three",
               "tune": table("dev"), "held_out": table("test")}
    log(f"autres pistes : preuve {chosen}, hors réglage {json.dumps(figures['held_out'], ensure_ascii=False)}")
    return {"evidence_other_leads": chosen, "figures": {"other_leads": figures}}


# Everyday grants first: the grid of `evidence_before_grants` and `dense_before_grants` (0 = the rule off).
BEFORE_GRANTS_EVIDENCE = [round(t, 2) for t in np.arange(0.30, 0.711, 0.02)]
BEFORE_GRANTS_DENSE = [round(t, 2) for t in np.arange(0.0, 0.411, 0.02)]
DOTATION_GRANTS = {"etat-detr", "etat-dsil"}


def held_out_dotation_rows(assistant) -> list[dict]:
    """The 2018 DETR/DSIL commune and EPCI titles `aiguillage eval` asks (evals.realdata.dotation_rows: départements
    not tuned on, a stratified sample), each with the widget's profile, read before the door stage (split test)."""
    from assistant.profile import Profile

    from evals.realdata import ECHELONS, dotation_rows

    rows = [{"text": r["titre"], "relevant": set(), "split": "test", "source": "dotations",
             "profile": Profile(collectivity_type=ECHELONS[r["echelon"]], departement_code=r["departement"])}
            for r in dotation_rows(False)]
    return read_rows(assistant, rows)


def calibrate_before_grants(rows: list[dict], assistant, model: EverydayModel, log) -> dict:
    """`evidence_before_grants` and `dense_before_grants` (assistant/pipeline/door.py `after_grants`): in an
    investment project, an offer with no theme of the question, not named, ranks after the everyday grants when
    its evidence or its dense similarity is under these. Chosen on the tune rows: the pair that puts DETR or DSIL
    first on the most 2018 commune titles of the tune départements (their object is ordinary works the grants
    funded) among the pairs at which no gold dev question loses its expected offer from the first place or the
    first three and no Fonds vert 2023 title of the tune départements loses its measure's theme from them (the
    same right offers `aiguillage eval` counts: partner@1, offer_top3, theme@1, theme@3); ties: the least
    intervention (lower dense floor, then lower evidence). Reported on the rows never tuned on: gold test, Fonds
    vert titles of the other départements, and the 2018 commune/EPCI titles `aiguillage eval` asks (the other
    départements): DETR or DSIL first, overall and on the titles with no theme, and a household's aid first."""
    from assistant.eligibility import evaluate
    from assistant.pipeline.door import open_door

    index, finder = assistant.handle.current(), assistant.signpost_finder
    offer_themes = {o.id: set(o.themes) for o in index.offers.values()}
    residents = {o.id for o in index.offers.values() if o.eligibility.beneficiaries == "residents"}
    kept = [r for r in rows if r["source"] in ("gold", "fonds-vert", "dotations") and (r["source"] != "gold" or r["relevant"])]
    for r in kept:
        r["before_grants"] = {}  # memo: the offers a pair may put after the grants -> the recommended ids
        r["evidence_now"] = model.evidence(r["hits"], r["door_similarity"])

    def recommended(r, evidence_floor, dense_floor) -> list[str]:
        # The door stage reads the pair only through the unthemed offers under one of the two floors.
        key = frozenset(h.offer.id for h in r["hits"] if "theme" not in h.adjustments
                        and (r["evidence_now"][h.offer.id] < evidence_floor or h.dense_similarity < dense_floor))
        if key not in r["before_grants"]:
            chosen = replace(model, evidence_before_grants=evidence_floor, dense_before_grants=dense_floor)
            hits = [replace(h, adjustments=dict(h.adjustments)) for h in r["hits"]]
            verdicts = {h.offer.id: evaluate(h.offer, r["turn_profile"]) for h in hits}
            door = open_door(hits, verdicts, r["turn_profile"], r["query"], index, chosen, finder,
                             assistant.settings.max_referrals, r["vector"])
            r["before_grants"][key] = [h.offer.id for h in door.recommended]
        return r["before_grants"][key]

    def right(r, shown, top) -> bool:
        if r["source"] == "fonds-vert":
            return any(offer_themes[i] & r["measure_themes"] for i in shown[:top])
        return bool(set(shown[:top]) & r["relevant"])

    def measure(split, pair) -> dict:
        out: dict[str, list[bool]] = defaultdict(list)
        for r in kept:
            if r["split"] != split:
                continue
            shown = recommended(r, *pair)
            if r["source"] == "dotations":
                out["grant_first"].append(bool(shown) and shown[0] in DOTATION_GRANTS)
                out["residents_first"].append(bool(shown) and shown[0] in residents)
                if not r["themes"]:
                    out["grant_first_no_theme"].append(bool(shown) and shown[0] in DOTATION_GRANTS)
            else:
                out[f"{r['source']}_right_first"].append(right(r, shown, 1))
                out[f"{r['source']}_right_in_three"].append(right(r, shown, 3))
        return {k: round(float(np.mean(v)), 4) for k, v in sorted(out.items())} | {"n_dotations": len(out["grant_first"])}

    off = (0.0, 0.0)
    guarded = [k for k in measure("dev", off) if k.startswith(("gold_", "fonds-vert_"))]
    tune_before = measure("dev", off)

    def costs_a_place(pair) -> bool:
        tune = measure("dev", pair)
        return any(tune[k] < tune_before[k] for k in guarded)

    tune_titles = [r for r in kept if r["split"] == "dev" and r["source"] == "dotations"]

    def grant_first(pair) -> float:
        return float(np.mean([bool(s) and s[0] in DOTATION_GRANTS for s in (recommended(r, *pair) for r in tune_titles)]))

    pairs = [(t, d) for t in BEFORE_GRANTS_EVIDENCE for d in BEFORE_GRANTS_DENSE]
    chosen = max((p for p in pairs if not costs_a_place(p)), key=lambda p: (grant_first(p), -p[1], -p[0]), default=off)
    figures = {"evidence_before_grants": chosen[0], "dense_before_grants": chosen[1],
               "rule": "most tune 2018 titles with DETR or DSIL first, no tune rate of right offers first or in the first three lowered",
               "tune": measure("dev", chosen), "tune_before": tune_before,
               "held_out": measure("test", chosen), "held_out_before": measure("test", off)}
    log(f"dotations d'abord : {json.dumps(figures, ensure_ascii=False)}")
    return {"evidence_before_grants": chosen[0], "dense_before_grants": chosen[1], "figures": {"before_grants": figures}}


def main_before_grants(out: Path = MODEL_PATH, log=print) -> dict:
    """Calibrate only `evidence_before_grants` and `dense_before_grants` on the model in place (the other weights
    untouched)."""
    import tempfile

    from assistant.config import get_settings
    from assistant.service import Assistant
    from assistant.store import Database

    model = EverydayModel.load(out)
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{tmp}/training.db")
        database.create_schema()
        assistant = Assistant(get_settings(), database=database)
        rows = candidate_rows(assistant) + held_out_dotation_rows(assistant)
        result = calibrate_before_grants(rows, assistant, model, log)
    data = json.loads(out.read_text(encoding="utf-8"))
    data |= {k: result[k] for k in ("evidence_before_grants", "dense_before_grants")}
    data["figures"].update(result["figures"])
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    log(f"écrit : {out}")
    return data


def main_other_leads(out: Path = MODEL_PATH, log=print) -> dict:
    """Calibrate only `evidence_other_leads` on the model in place (the other weights untouched)."""
    import tempfile

    from assistant.config import get_settings
    from assistant.service import Assistant
    from assistant.store import Database

    model = EverydayModel.load(out)
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{tmp}/training.db")
        database.create_schema()
        assistant = Assistant(get_settings(), database=database)
        result = calibrate_other_leads(candidate_rows(assistant), assistant, model, log)
    data = json.loads(out.read_text(encoding="utf-8"))
    data["evidence_other_leads"] = result["evidence_other_leads"]
    data["figures"].update(result["figures"])
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    log(f"écrit : {out}")
    return data


def main(out: Path = MODEL_PATH, log=print) -> dict:
    import tempfile

    from assistant.config import get_settings
    from assistant.service import Assistant
    from assistant.store import Database
    from ingest.corpus import load_corpus

    settings = get_settings()
    corpus = load_corpus(settings.corpus_dir)
    supports = {i: set(o.support_types) for i, o in corpus.offers.items()}
    result = train_investment(supports, log)
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{tmp}/training.db")
        database.create_schema()
        assistant = Assistant(settings, database=database)
        rows = candidate_rows(assistant)
        investment = EverydayModel(**{k: result[k] for k in INVESTMENT_KEYS}, **INVESTMENT_ONLY)
        for r in rows:  # the guard of the lead (calibrate_lead) holds for investment projects only
            r["investment"] = investment.is_investment(r["text"])
        evidence = train_evidence(rows, log)
        signposts = calibrate_signposts(rows, assistant.signpost_finder, evidence["evidence_floor"], log)
        lead = calibrate_lead(rows, assistant.signpost_finder, evidence["evidence_floor"], signposts, log)
        fitted = EverydayModel(**{k: v for part in (result, evidence, signposts, lead) for k, v in part.items()
                                  if k != "figures"}, figures={})
        others = calibrate_other_leads(rows, assistant, fitted, log)
        fitted = replace(fitted, evidence_other_leads=others["evidence_other_leads"])
        grants_first = calibrate_before_grants(rows + held_out_dotation_rows(assistant), assistant, fitted, log)
    parts = [result, evidence, signposts, lead, others, grants_first]
    figures = {k: v for part in parts for k, v in part.pop("figures").items()}
    model = {k: v for part in parts for k, v in part.items()} | {"figures": figures}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    log(f"écrit : {out} ({out.stat().st_size // 1024} Kio)")
    return model


if __name__ == "__main__":
    import sys

    from assistant.cli import eval_extra_missing

    if message := eval_extra_missing("python -m evals.door_training"):
        print(message, file=sys.stderr)
        sys.exit(2)
    commands = {"other-leads": main_other_leads, "before-grants": main_before_grants}
    commands[sys.argv[1]]() if sys.argv[1:2] and sys.argv[1] in commands else main()
