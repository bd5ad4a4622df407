"""`aiguillage scope train`: fit the scope classifier on evals/datasets/ and the corpus, validate it
source by source, choose its threshold on held-out sources, write the committed artefact.

Never the same source (or sub-source) in training and measure:
1. threshold on a validation split: a quarter of the `train` part (whole rubriques and départements;
   single written questions and gold dev cases) is held out, a model fitted on the rest scores it,
   and the threshold is the lowest P(out of scope) at which the real in-scope questions (written and
   gold) and the in-scope titles are each still answered at `ANSWER_TARGET` — an in-scope mayor
   refused costs more than an off-topic question answered;
2. the fixed split (assistant/scope/data.py): the committed model is fitted on the whole `train`
   part and measured on the `test` part (rubriques, départements and gold test cases it never saw);
3. leave-one-source-out (LOSO), the pessimistic figure: for each source, a model fitted on every
   other source scores it (a whole kind of wording never seen), at the same threshold.
2 and 3 are printed as per-source confusion matrices (rows: true class, columns: decision) and kept
in model.json (`validation`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from assistant.scope.data import CLASSES, Example, is_parliament, is_written, load_examples, test_group
from assistant.scope.doors import DOORS, PARTICULIER
from assistant.scope.features import N_FEATURES, char_grams, combine, dense_part
from assistant.scope.model import IN_SCOPE, MODEL_JSON, MODEL_NPZ

EMBEDDING_WEIGHT = 1.0
C = 4.0
ANSWER_TARGET = 0.985
THRESHOLD_GRID = [round(0.30 + 0.01 * i, 2) for i in range(66)]  # 0.30 … 0.95
# Real questions the threshold must answer (corpus forms are synthetic: trained on, not a target). The
# later written sets (questions-ecrites-outils…) are trained on and measured source by source only:
# each holds a few contrast sentences of a kind, too few to set the threshold on.
QUESTION_SOURCES = {"questions-ecrites", "gold"}
TITLE_SOURCES = {"dotations-2018", "fonds-vert-2023"}


def embed_all(texts: list[str], embeddings, cache_dir: Path | None, log: Callable[[str], None]) -> np.ndarray:
    """(len(texts), dim) float32 query vectors, as the retriever computes them; cached per text."""
    from assistant.embeddings import embeddings_signature

    signature = embeddings_signature(embeddings)
    cache: dict[str, np.ndarray] = {}
    path = cache_dir / f"embeddings-{hashlib.md5(signature.encode()).hexdigest()[:8]}.npz" if cache_dir else None
    if path and path.is_file():
        with np.load(path) as data:
            cache = dict(zip(json.loads(str(data["texts"])), data["vectors"]))
    todo = [t for t in dict.fromkeys(texts) if t not in cache]
    if todo:
        log(f"Encodage de {len(todo)} textes ({signature})…")
        # USE encodes a query and a document the same way: batch them; other backends add prompts.
        batch = embeddings.embed_documents if signature == "use-multilingual-v3" else (lambda b: [embeddings.embed_query(t) for t in b])
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            cache.update(zip(chunk, np.asarray(batch(chunk), dtype=np.float32)))
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(cache)
            np.savez_compressed(path, texts=json.dumps(keys), vectors=np.stack([cache[k] for k in keys]))
    return np.stack([cache[t] for t in texts]).astype(np.float32)


def names_offer(texts: list[str], corpus_dir: Path) -> np.ndarray:
    """1.0 where the text names an offer of the corpus (title, acronym or other name), else 0.0."""
    from assistant.offer_names import OfferNames
    from assistant.text import fold
    from ingest.corpus import load_corpus

    names = OfferNames(load_corpus(corpus_dir).offers.values())
    return np.array([float(bool(names.find(fold(t)).by_any_name)) for t in texts], dtype=np.float32)


def validation_group(e: Example) -> str:
    """Rows of a file go to validation by whole rubrique or département; written questions, questions
    of Parliament, corpus forms and gold dev cases one by one (each is its own text)."""
    return e.ref if is_written(e.source) or is_parliament(e.source) or e.source in {"gold", "corpus"} else e.group


def sample_weights(examples: list[Example]) -> np.ndarray:
    """Each example weighs 1/√(size of its source), then each class gets the same total: a big title
    file does not drown the questions, and the few local-government rows count as much as the rest."""
    per_source = Counter(e.source for e in examples)
    w = np.array([1.0 / np.sqrt(per_source[e.source]) for e in examples])
    labels = np.array([e.label for e in examples])
    for label in set(labels):
        w[labels == label] *= len(examples) / len(set(labels)) / w[labels == label].sum()
    return w


def fit(X, examples: list[Example], labels: list[str] | None = None) -> LogisticRegression:
    y = labels or [e.label for e in examples]
    model = LogisticRegression(C=C, max_iter=3000)
    model.fit(X, y, sample_weight=sample_weights(examples))
    return model


def out_probability(model: LogisticRegression, X) -> np.ndarray:
    return 1.0 - model.predict_proba(X)[:, list(model.classes_).index(IN_SCOPE)]


def decisions(model: LogisticRegression, X, threshold: float) -> list[str]:
    """Decided class per row: projet under the threshold, else the likeliest out-of-scope class."""
    probs = model.predict_proba(X)
    classes = list(model.classes_)
    out = 1.0 - probs[:, classes.index(IN_SCOPE)]
    others = [c for c in classes if c != IN_SCOPE]
    return [IN_SCOPE if o < threshold else max(others, key=lambda c: p[classes.index(c)]) for o, p in zip(out, probs)]


def choose_threshold(examples: list[Example], out: np.ndarray) -> float:
    """Lowest threshold at which in-scope questions and in-scope titles are each answered ≥ ANSWER_TARGET
    (out-of-fold scores): the most refusals the in-scope constraint allows."""
    pools = [
        np.array([e.label == IN_SCOPE and e.source in QUESTION_SOURCES for e in examples]),
        np.array([e.label == IN_SCOPE and e.source in TITLE_SOURCES for e in examples]),
    ]
    for t in THRESHOLD_GRID:
        if all((out[p] < t).mean() >= ANSWER_TARGET for p in pools if p.any()):
            return t
    return THRESHOLD_GRID[-1]


def confusion(examples: list[Example], decided: list[str]) -> dict[str, dict]:
    """source -> {"n", "matrix": {true: {decided: count}}, "rate": share decided right (answered for
    projet, refused for the others)}."""
    out: dict[str, dict] = {}
    by_source: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e, d in zip(examples, decided):
        by_source[e.source].append((e.label, d))
    for source, pairs in sorted(by_source.items()):
        matrix = {t: dict(Counter(d for tt, d in pairs if tt == t)) for t in CLASSES if any(tt == t for tt, _ in pairs)}
        right = sum((t == IN_SCOPE) == (d == IN_SCOPE) for t, d in pairs)
        out[source] = {"n": len(pairs), "matrix": matrix, "rate": round(right / len(pairs), 4)}
    return out


def format_confusion(title: str, table: dict[str, dict], columns: list[str] = CLASSES) -> str:
    corner = "vrai / décidé"
    head = f"{'source':<26}{'n':>6}  {corner:<20}" + "".join(f"{c:>20}" for c in columns) + f"{'bonne décision':>16}"
    lines = [title, head]
    for source, row in table.items():
        for i, (true, counts) in enumerate(row["matrix"].items()):
            first = i == 0
            lines.append(
                f"{source if first else '':<26}{row['n'] if first else '':>6}  {true:<20}"
                + "".join(f"{counts.get(c, 0):>20}" for c in columns)
                + (f"{row['rate']:>16.3f}" if first else "")
            )
    return "\n".join(lines)


def _sparse_head(model: LogisticRegression, dense_dim: int, prefix: str) -> dict[str, np.ndarray]:
    coef = model.coef_.astype(np.float32)
    grams = coef[:, dense_dim:]
    index = np.flatnonzero(np.abs(grams).max(axis=0) > 1e-4).astype(np.int32)
    return {
        f"{prefix}_index": index,
        f"{prefix}_grams": grams[:, index].astype(np.float16),
        f"{prefix}_bias": model.intercept_.astype(np.float32),
        f"{prefix}_dense": coef[:, :dense_dim].astype(np.float16),
    }


def train(corpus_dir: Path, embeddings, cache_dir: Path | None = None, out_json: Path = MODEL_JSON,
          out_npz: Path = MODEL_NPZ, log: Callable[[str], None] = print) -> dict:
    """Fit, validate, write the artefact; returns model.json's content. Prints the confusion matrices."""
    from assistant.embeddings import embeddings_signature

    examples = load_examples(corpus_dir)
    log(f"{len(examples)} exemples : " + ", ".join(f"{s} {n}" for s, n in sorted(Counter(e.source for e in examples).items())))
    from assistant.retrieval import corpus_lexicon
    from ingest.corpus import load_corpus

    # Embedded as the service reads a question: in the cards' spelling (LoadedIndex.lexicon).
    lexicon = corpus_lexicon(load_corpus(corpus_dir).offers.values())
    vectors = embed_all([lexicon.canonical(e.text) for e in examples], embeddings, cache_dir, log)
    grams = char_grams([e.text for e in examples])
    named = names_offer([e.text for e in examples], corpus_dir)
    log(f"{int(named.sum())} exemples nomment une offre du corpus")
    dense = {"scope": dense_part(vectors, named, EMBEDDING_WEIGHT), "scope_grams": dense_part(None, named, EMBEDDING_WEIGHT)}
    heads = {name: combine(grams, d) for name, d in dense.items()}
    train_rows = np.array([e.split == "train" for e in examples])
    sources = sorted({e.source for e in examples})

    validation, thresholds, finals = {}, {}, {}
    for head, X in heads.items():
        oof = np.zeros(len(examples))
        for source in sources if head == "scope" else []:  # the fallback head: fixed split only
            held = np.array([e.source == source for e in examples])
            fit_rows = np.flatnonzero(train_rows & ~held)
            model = fit(X[fit_rows], [examples[i] for i in fit_rows])
            oof[held] = out_probability(model, X[np.flatnonzero(held)])
        val = np.array([e.split == "train" and test_group("validation:" + validation_group(e)) for e in examples])
        fit_rows, val_rows = np.flatnonzero(train_rows & ~val), np.flatnonzero(val)
        model = fit(X[fit_rows], [examples[i] for i in fit_rows])
        threshold = choose_threshold([examples[i] for i in val_rows], out_probability(model, X[val_rows]))
        thresholds[head] = threshold
        # Out-of-fold scores decide answer or refuse; the kind shown is that of the fixed split below.
        loso = _loso_table(examples, oof, threshold)
        final_rows = np.flatnonzero(train_rows)
        final = fit(X[final_rows], [examples[i] for i in final_rows])
        finals[head] = final
        test_rows = np.flatnonzero(~train_rows)
        held_out = confusion([examples[i] for i in test_rows], decisions(final, X[test_rows], threshold))
        validation[head] = {"threshold": threshold, "validation_rows": len(val_rows), "held_out": held_out}
        log(format_confusion(f"\n[{head}] seuil {threshold} (choisi sur {len(val_rows)} exemples de validation) — partie test : rubriques, départements et cas gold jamais vus", held_out))
        if head == "scope":
            validation[head]["leave_one_source_out"] = loso
            log(format_confusion(f"[{head}] une source retirée à la fois, même seuil (P(hors champ) ≥ seuil = refus)", loso, ["projet", "refus"]))

    val = np.array([e.split == "train" and test_group("validation:" + validation_group(e)) for e in examples])
    arrays, door_accuracy, door_tables = {}, {}, {}
    for head, X in heads.items():
        door_model, offset, tables = fit_doors(X, examples, train_rows, val, loso=head == "scope")
        door_accuracy[head] = {"offset_particulier": offset} | {k: t["all"] for k, t in tables.items()}
        door_tables[head] = tables
        for name, table in tables.items():
            log(format_doors(f"[{head}] porte des questions refusées — {DOOR_TABLES[name]} (décalage « particulier » {offset:+.2f}, choisi sur la validation)", table))
        dim = dense[head].shape[1]
        arrays |= _sparse_head(finals[head], dim, head) | _sparse_head(door_model, dim, f"door_{head}")
    meta = {
        "classes": list(finals["scope"].classes_),
        "doors": list(door_model.classes_),  # same classes for both door heads (sorted labels)
        "thresholds": thresholds,
        "embedding_signature": embeddings_signature(embeddings),
        "embedding_weight": EMBEDDING_WEIGHT,
        "n_features": N_FEATURES,
        "answer_target": ANSWER_TARGET,
        "trained": {
            "date": dt.date.today().isoformat(),
            "scikit_learn": sklearn.__version__,
            "C": C,
            "examples_train": dict(Counter(e.source for e in examples if e.split == "train")),
            "examples_test": dict(Counter(e.source for e in examples if e.split == "test")),
        },
        "door_accuracy": door_accuracy,
        "door_validation": door_tables,
        "validation": validation,
    }
    assert set(meta["doors"]) <= set(DOORS)
    np.savez_compressed(out_npz, **arrays)
    out_json.write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log(f"Modèle écrit : {out_npz} ({out_npz.stat().st_size // 1024} Kio), {out_json}")
    return meta


DOOR_TABLES = {
    "held_out": "partie test (rubriques jamais vues)",
    "leave_one_source_out": "une source retirée à la fois",
}
OFFSET_GRID = [round(-3.0 + 0.25 * i, 2) for i in range(25)]  # added to the « particulier » door's score


def door_label(e: Example) -> str:
    """The door an out-of-scope example should name: its row's door for local government, else
    service-public.fr for a private person (assistant/scope/doors.py)."""
    return e.door if e.label == "collectivite-autre" and e.door else PARTICULIER


def _door_scores(model: LogisticRegression, X) -> np.ndarray:
    return model.decision_function(X)


def _door_right(model: LogisticRegression, X, rows: np.ndarray, examples: list[Example], offset: float) -> np.ndarray:
    scores = _door_scores(model, X[rows]).copy()
    scores[:, list(model.classes_).index(PARTICULIER)] += offset
    chosen = np.array(model.classes_)[scores.argmax(axis=1)]
    return chosen == np.array([door_label(examples[i]) for i in rows])


def balanced(right: np.ndarray, rows: np.ndarray, examples: list[Example]) -> float:
    """Mean of the door accuracy on local-government rows and on private persons' rows."""
    local = np.array([examples[i].label == "collectivite-autre" for i in rows])
    parts = [right[m].mean() for m in (local, ~local) if m.any()]
    return float(np.mean(parts)) if parts else 0.0


def fit_doors(X, examples: list[Example], train_rows: np.ndarray, val: np.ndarray, loso: bool):
    """The door of a refused message, one decision over every door (local-government doors and
    service-public.fr for private persons): a logistic regression on the out-of-scope rows of `train`.
    Its only tuned number, an offset on the « particulier » score, is chosen on the validation rows
    (whole rubriques held out) for the best balanced accuracy (local government / private persons),
    ties towards 0. Returns (model with the offset in its bias, offset, per-source tables: the fixed
    split's `test` rows, and leave-one-source-out when `loso`)."""
    out = np.array([e.label != IN_SCOPE for e in examples])

    def fitted(rows: np.ndarray) -> LogisticRegression:
        return fit(X[rows], [examples[i] for i in rows], [door_label(examples[i]) for i in rows])

    model = fitted(np.flatnonzero(out & train_rows & ~val))
    val_rows = np.flatnonzero(out & val)
    offset = max(OFFSET_GRID, key=lambda o: (round(balanced(_door_right(model, X, val_rows, examples, o), val_rows, examples), 4), -abs(o)))
    final = fitted(np.flatnonzero(out & train_rows))
    final.intercept_[list(final.classes_).index(PARTICULIER)] += offset
    test_rows = np.flatnonzero(out & ~train_rows)
    tables = {"held_out": _door_table(examples, test_rows, _door_right(final, X, test_rows, examples, 0.0))}
    if loso:
        right = np.zeros(len(examples), dtype=bool)
        for source in sorted({examples[i].source for i in np.flatnonzero(out)}):
            held = np.array([e.source == source for e in examples])
            fold_model = fitted(np.flatnonzero(out & train_rows & ~held))
            rows = np.flatnonzero(out & held)
            right[rows] = _door_right(fold_model, X, rows, examples, offset)
        tables["leave_one_source_out"] = _door_table(examples, np.flatnonzero(out), right[np.flatnonzero(out)])
    return final, offset, tables


def _door_table(examples: list[Example], rows: np.ndarray, right: np.ndarray) -> dict:
    """{"all": share right, "balanced": …, "per_source": {source: {"n", "right"}}}."""
    per_source: dict[str, list[bool]] = defaultdict(list)
    for i, r in zip(rows, right):
        per_source[examples[i].source].append(bool(r))
    return {
        "all": round(float(right.mean()), 4) if len(right) else None,
        "balanced": round(balanced(right, rows, examples), 4),
        "per_source": {s: {"n": len(v), "right": round(sum(v) / len(v), 4)} for s, v in sorted(per_source.items())},
    }


def format_doors(title: str, table: dict) -> str:
    lines = [title, f"{'source':<30}{'n':>6}{'bonne porte':>14}"]
    lines += [f"{s:<30}{v['n']:>6}{v['right']:>14.3f}" for s, v in table["per_source"].items()]
    lines.append(f"{'ensemble':<30}{sum(v['n'] for v in table['per_source'].values()):>6}{table['all']:>14.3f}   (équilibré collectivités / particuliers : {table['balanced']:.3f})")
    return "\n".join(lines)


def _loso_table(examples: list[Example], oof: np.ndarray, threshold: float) -> dict[str, dict]:
    """Per held-out source: answered / refused counts per true class, and the share decided right."""
    out: dict[str, dict] = {}
    by_source: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for e, o in zip(examples, oof):
        by_source[e.source].append((e.label, o >= threshold))
    for source, pairs in sorted(by_source.items()):
        matrix = {
            t: {"projet": sum(1 for tt, r in pairs if tt == t and not r), "refus": sum(1 for tt, r in pairs if tt == t and r)}
            for t in CLASSES if any(tt == t for tt, _ in pairs)
        }
        right = sum((t == IN_SCOPE) != r for t, r in pairs)
        out[source] = {"n": len(pairs), "matrix": matrix, "rate": round(right / len(pairs), 4)}
    return out
