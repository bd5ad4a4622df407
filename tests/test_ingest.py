"""Incremental, atomic ingest on a copy of the real corpus and a real embedded Chroma."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from assistant.config import Settings
from assistant.retrieval import HybridRetriever, IndexHandle
from ingest.corpus import CorpusError
from ingest.indexer import ingest, read_manifest
from tests.conftest import CORPUS

SEED = "anct/anct-ingenierie-sur-mesure.yaml"


class CountingEmbeddings:
    """The real embedder, counting the passages it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.documents = inner, 0
        self.signature = inner.signature

    def embed_documents(self, texts):
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture
def workspace(tmp_path, embeddings):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=corpus, _env_file=None)
    counting = CountingEmbeddings(embeddings)
    first = ingest(settings, counting, progress=False)
    counting.documents = 0
    return settings, counting, first


def edit(path, **changes):
    card = yaml.safe_load(path.read_text(encoding="utf-8"))
    card.update(changes)
    path.write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_unchanged_corpus_embeds_nothing(workspace):
    settings, counting, first = workspace
    report = ingest(settings, counting, progress=False)
    assert report.unchanged and counting.documents == 0
    assert read_manifest(settings)["collection"] == first.collection


def test_changed_offer_is_the_only_one_reembedded(workspace):
    settings, counting, first = workspace
    edit(settings.corpus_dir / "offers" / SEED, summary="Un appui gratuit aux petites communes pour préparer leurs projets de piscine municipale.")
    report = ingest(settings, counting, progress=False)
    assert report.embedded_offers == ["anct-ingenierie-sur-mesure"]
    assert 0 < counting.documents <= 8
    assert report.passages == first.passages
    index = IndexHandle(settings).current()
    assert "piscine" in index.passage_texts(["anct-ingenierie-sur-mesure#card"])["anct-ingenierie-sur-mesure#card"]
    assert "piscine" in index.offers["anct-ingenierie-sur-mesure"].summary


def _assert_mirror_is_the_collection(settings) -> None:
    """The live generation's vector mirror holds every vector of the Chroma collection (live and retired
    passages), with its offer, at unit length, and its document; the server finds it consistent."""
    from assistant.mirror import VectorMirror
    from ingest.indexer import index_dir

    index = IndexHandle(settings).current()
    mirror = VectorMirror.read(index_dir(settings), index.generation)
    assert mirror is not None and index.mirror is not None and index.mirror_problem() is None
    stored = index.collection.get(include=["embeddings", "metadatas", "documents"])
    assert sorted(mirror.ids) == sorted(stored["ids"]) and len(mirror.ids) == len(stored["ids"])
    row = {stored_id: i for i, stored_id in enumerate(mirror.ids)}
    texts = mirror.texts(row[stored_id] for stored_id in stored["ids"])
    for stored_id, vector, metadata, document, text in zip(stored["ids"], stored["embeddings"], stored["metadatas"],
                                                           stored["documents"], texts, strict=True):
        vector = np.asarray(vector, dtype=np.float32)
        assert np.allclose(mirror.vectors[row[stored_id]], vector / np.linalg.norm(vector), atol=1e-6)
        assert mirror.offers[row[stored_id]] == metadata["offer_id"]
        assert text == document


def test_the_vector_mirror_is_the_collection_after_each_build(workspace):
    """Full build, one card changed (its old passages retired, the others taken from the previous mirror),
    and a generation that lost its mirror (written again from Chroma by the next ingest)."""
    from ingest.indexer import index_dir

    settings, counting, _ = workspace
    _assert_mirror_is_the_collection(settings)
    edit(settings.corpus_dir / "offers" / SEED, summary="Un appui gratuit aux petites communes pour préparer leurs projets de piscine municipale.")
    assert ingest(settings, counting, progress=False).embedded_offers == ["anct-ingenierie-sur-mesure"]
    assert read_manifest(settings)["retired"]
    _assert_mirror_is_the_collection(settings)
    for path in index_dir(settings).glob(f"{read_manifest(settings)['generation']}.texts.*"):
        path.unlink()  # as a mirror written before it held the texts (docs/decisions/0001-exact-vector-mirror.md)
    assert IndexHandle(settings).current().mirror is None
    assert ingest(settings, counting, progress=False).unchanged
    _assert_mirror_is_the_collection(settings)


def _mirror_files(settings) -> set[str]:
    from assistant.mirror import MIRROR_SUFFIXES
    from ingest.indexer import index_dir

    return {p.name for p in index_dir(settings).iterdir() if p.name.endswith(MIRROR_SUFFIXES)}


def test_a_collection_over_the_mirrors_bound_is_served_by_chroma_and_gets_a_mirror_back_under_it(workspace, monkeypatch):
    """The bound (assistant.mirror.MIRROR_MAX_BYTES) set at the corpus's own vectors: exactly at it, a
    build writes the mirror; one byte under, the next generation has none and is searched, read and
    checked through Chroma (/readyz ready), and older generations' mirror files go with their other
    files; raised again, the next ingest writes the mirror back from Chroma, with nothing re-encoded."""
    from assistant import mirror
    from assistant.service import Assistant

    settings, counting, _ = workspace
    index = IndexHandle(settings).current()
    # Editing the seed's summary retires its passages for one generation and adds as many.
    rows = index.manifest["passages"] + index.mirror.offers.count("anct-ingenierie-sur-mesure")
    bound = rows * index.mirror.vectors.shape[1] * 4
    seed = settings.corpus_dir / "offers" / SEED
    monkeypatch.setattr(mirror, "MIRROR_MAX_BYTES", bound)
    edit(seed, summary="Un appui gratuit aux petites communes pour leurs projets de piscine municipale.")
    ingest(settings, counting, progress=False)
    _assert_mirror_is_the_collection(settings)
    with_mirror = read_manifest(settings)["generation"]

    monkeypatch.setattr(mirror, "MIRROR_MAX_BYTES", bound - 1)
    for summary in ("Un appui gratuit aux petites communes pour leurs projets de patinoire.",
                    "Un appui gratuit aux petites communes pour leurs projets de médiathèque."):
        edit(seed, summary=summary)
        assert ingest(settings, counting, progress=False).embedded_offers == ["anct-ingenierie-sur-mesure"]
        generation = read_manifest(settings)["generation"]
        assert not any(name.startswith(generation) for name in _mirror_files(settings))
        served = Assistant(settings, embeddings=counting.inner)
        current = served.handle.current()
        assert current.mirror is None and served.readiness()["ready"] is True
        assert "ingénierie" in current.passage_texts(["anct-ingenierie-sur-mesure#card"])["anct-ingenierie-sur-mesure#card"].lower()
        assert "anct-ingenierie-sur-mesure" in [h.offer.id for h in served.search("médiathèque patinoire ingénierie ANCT")]
    # Two builds later, the mirror of the last generation that had one is gone with its other files.
    assert _mirror_files(settings) == set()
    assert not (settings.data_dir / "index" / f"{with_mirror}.offers.json").exists()

    monkeypatch.setattr(mirror, "MIRROR_MAX_BYTES", bound)
    counting.documents = 0
    assert ingest(settings, counting, progress=False).unchanged and counting.documents == 0
    _assert_mirror_is_the_collection(settings)


def test_removed_offer_disappears_from_the_index(workspace):
    settings, counting, _ = workspace
    (settings.corpus_dir / "offers" / SEED).unlink()
    report = ingest(settings, counting, progress=False)
    assert report.removed_offers == ["anct-ingenierie-sur-mesure"] and counting.documents == 0
    ids = {h.offer.id for h in HybridRetriever(IndexHandle(settings), counting, settings).search("ingénierie sur mesure ANCT", limit=20)}
    assert "anct-ingenierie-sur-mesure" not in ids


def test_invalid_card_stops_ingest_and_keeps_the_old_index(workspace):
    settings, counting, first = workspace
    edit(settings.corpus_dir / "offers" / SEED, status="ouvert")
    edit(settings.corpus_dir / "offers" / "anah" / "anah-maprimeadapt.yaml", themes=["theme-inexistant"])
    (settings.corpus_dir / "offers" / "ademe" / "ademe-fonds-chaleur.yaml").unlink()
    with pytest.raises(CorpusError) as error:
        ingest(settings, counting, progress=False)
    problems = {(p.path.split("/")[-1], p.field) for p in error.value.problems}
    assert ("anct-ingenierie-sur-mesure.yaml", "status") in problems
    assert ("anah-maprimeadapt.yaml", "themes") in problems
    assert counting.documents == 0
    assert read_manifest(settings)["collection"] == first.collection
    hits = HybridRetriever(IndexHandle(settings), counting, settings).search("réseau de chaleur biomasse", limit=3)
    assert "ademe-fonds-chaleur" in {h.offer.id for h in hits}


def test_embedder_failure_midway_leaves_the_live_index(workspace):
    settings, counting, first = workspace
    edit(settings.corpus_dir / "offers" / SEED, summary="Texte modifié pour forcer un nouvel encodage de cette offre.")

    class Broken(CountingEmbeddings):
        def embed_documents(self, texts):
            raise ConnectionError("embedder down")

    with pytest.raises(ConnectionError):
        ingest(settings, Broken(counting.inner), progress=False)
    assert read_manifest(settings)["collection"] == first.collection
    assert HybridRetriever(IndexHandle(settings), counting, settings).search("ingénierie", limit=1)


def test_a_running_assistant_reads_which_needs_only_a_door_serves_from_the_new_generation(workspace):
    """A theme no offer carried (only a signpost door serves it) that a re-ingested card now carries
    is no longer door-only for the running assistant, without a restart."""
    from assistant.service import Assistant

    settings, counting, _ = workspace
    assistant = Assistant(settings, embeddings=counting.inner)
    theme = sorted(assistant.signpost_finder.door_themes)[0]
    path = settings.corpus_dir / "offers" / SEED
    edit(path, themes=[*yaml.safe_load(path.read_text(encoding="utf-8"))["themes"], theme])
    ingest(settings, counting, progress=False)
    assert theme not in assistant.signpost_finder.door_themes
