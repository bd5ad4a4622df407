"""The structures persisted with an index generation (assistant.derived: lexicon, name automaton, names as
phrases; the BM25 model; the cards read without validation): what a server reads is what a full rebuild
from the cards gives, after incremental builds too; a stale or corrupt artefact is never used, is rebuilt
with a French warning, and nothing is lost. Real corpus, real Chroma, HashEmbeddings for speed."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import yaml

from assistant.config import Settings
from assistant.derived import DerivedUnusable, build_derived, read_derived
from assistant.offer_names import OfferNames
from assistant.pipeline.judge.notices import PremiseIndex
from assistant.retrieval import HybridRetriever, IndexHandle, LoadedIndex, corpus_lexicon
from assistant.text import fold
from evals.scaled import HashEmbeddings
from ingest.corpus import load_corpus
from ingest.indexer import derived_path, ingest, read_manifest, snapshot_path
from tests.conftest import CORPUS

MESSAGES = [
    "Le Programme national Ponts travaux et le recensement des ponts de la commune",
    "On m'a dit que les OPAH c'est fini, et l'OPAH-RU ?",
    "ECOLE a renover, quelle aide du FONDS VERT ou de la DETR ?",
    "Les ZRR existent encore ? Et MaPrimeRénov' copropriété ?",
]


@pytest.fixture
def workspace(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=corpus, _env_file=None)
    ingest(settings, HashEmbeddings(), progress=False)
    return settings


def load(settings: Settings) -> LoadedIndex:
    return LoadedIndex(settings, read_manifest(settings))


def assert_as_rebuilt(settings: Settings, index: LoadedIndex) -> None:
    """The generation's structures equal those built from the corpus on disk, validated card by card."""
    offers = load_corpus(settings.corpus_dir).offers
    assert dict(index.offers) == offers
    assert index.lexicon.spelling == corpus_lexicon(offers.values()).spelling
    names = OfferNames(offers.values())
    premises = PremiseIndex({i: offers[i] for i in sorted(offers)})  # a generation's order: by id
    ours = PremiseIndex.from_phrases([index.offers[i] for i in index.premise_offers], index.name_phrases)
    for message in MESSAGES:
        assert index.names.find(fold(message)) == names.find(fold(message)), message
        assert ours.outdated_premises(message) == premises.outdated_premises(message), message
    assert [(p.offer.id, p.subjects, p.claims, set(p.longer)) for p in ours.premises] == [
        (p.offer.id, p.subjects, p.claims, set(p.longer)) for p in premises.premises]


def edit(path, **changes):
    card = yaml.safe_load(path.read_text(encoding="utf-8"))
    card.update(changes)
    path.write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_persisted_structures_are_those_of_the_cards(workspace):
    index = load(workspace)
    assert derived_path(workspace, index.generation).exists()
    assert_as_rebuilt(workspace, index)


def test_incremental_builds_lose_nothing(workspace):
    """A changed card (new words, a new alias), a removed one and a new one: the lexicon counts and
    the phrases updated card by card equal a rebuild from every card."""
    offers = workspace.corpus_dir / "offers"
    edit(offers / "anct" / "anct-ingenierie-sur-mesure.yaml", aliases=["Ingénierie Zéphyrine"],
         summary="Un appui GRATUIT aux Communes pour préparer la Zéphyrine et d'autres projets.")
    removed = sorted(offers.glob("cerema/*.yaml"))[0]
    removed.unlink()
    copy = yaml.safe_load((offers / "anct" / "anct-ingenierie-sur-mesure.yaml").read_text(encoding="utf-8"))
    copy.update(id="anct-ingenierie-sur-mesure-bis", title="Ingénierie sur mesure bis", aliases=[])
    (offers / "anct" / "anct-ingenierie-sur-mesure-bis.yaml").write_text(
        yaml.safe_dump(copy, allow_unicode=True, sort_keys=False), encoding="utf-8")
    report = ingest(workspace, HashEmbeddings(), progress=False)
    assert report.removed_offers == [removed.stem] and len(report.embedded_offers) == 2
    index = load(workspace)
    cards = json.loads(snapshot_path(workspace, index.generation).read_text(encoding="utf-8"))
    stored, rebuilt = read_derived(derived_path(workspace, index.generation), index.generation,
                                   read_manifest(workspace)["snapshot_digest"]), build_derived(cards)
    assert stored.counts == rebuilt.counts and stored.phrases == rebuilt.phrases
    assert stored.lexicon.spelling == rebuilt.lexicon.spelling
    assert index.names.find(fold("notre ingenierie zephyrine")).by_any_name == {"anct-ingenierie-sur-mesure"}
    assert_as_rebuilt(workspace, index)


def test_a_stale_artefact_is_rebuilt(workspace, caplog):
    """The previous generation's artefact copied over the live one (same file name, other cards) is
    refused and rebuilt: the new alias is found."""
    first = read_manifest(workspace)["generation"]
    edit(workspace.corpus_dir / "offers" / "anct" / "anct-ingenierie-sur-mesure.yaml", aliases=["Ingénierie Zéphyrine"])
    ingest(workspace, HashEmbeddings(), progress=False)
    live = read_manifest(workspace)["generation"]
    shutil.copy(derived_path(workspace, first), derived_path(workspace, live))  # kept one generation
    with caplog.at_level(logging.WARNING, logger="aiguillage.index"):
        index = load(workspace)
    assert "artefact périmé" in caplog.text and "reconstruits" in caplog.text
    assert index.names.find(fold("Ingénierie Zéphyrine")).by_any_name == {"anct-ingenierie-sur-mesure"}
    assert_as_rebuilt(workspace, index)
    read_derived(derived_path(workspace, live), live, read_manifest(workspace)["snapshot_digest"])  # written again


@pytest.mark.parametrize("damage", [b"", b"not a pickle", "truncated"])
def test_a_corrupt_artefact_is_refused_with_a_french_message_and_rebuilt(workspace, caplog, damage):
    generation = read_manifest(workspace)["generation"]
    path = derived_path(workspace, generation)
    path.write_bytes(path.read_bytes()[:100] if damage == "truncated" else damage)
    with pytest.raises(DerivedUnusable, match="illisible"):
        read_derived(path, generation, read_manifest(workspace)["snapshot_digest"])
    with caplog.at_level(logging.WARNING, logger="aiguillage.index"):
        index = load(workspace)
    assert "artefact illisible" in caplog.text and "corrompu" in caplog.text
    assert_as_rebuilt(workspace, index)
    read_derived(path, generation, read_manifest(workspace)["snapshot_digest"])  # written again, readable
    hits = HybridRetriever(IndexHandle(workspace), HashEmbeddings(), workspace).search("ÉCLAIRAGE PUBLIC", limit=3)
    assert hits and all(h.offer.id in index.offers for h in hits)


def test_a_missing_artefact_is_rebuilt(workspace):
    generation = read_manifest(workspace)["generation"]
    derived_path(workspace, generation).unlink()
    assert_as_rebuilt(workspace, load(workspace))
    assert derived_path(workspace, generation).exists()


def test_a_snapshot_edited_since_the_build_is_validated_whole(workspace):
    """Cards are read without validation only when the snapshot is the one the indexer wrote (its
    digest): an edited snapshot with an invalid card fails the load, never a turn."""
    generation = read_manifest(workspace)["generation"]
    path = snapshot_path(workspace, generation)
    cards = json.loads(path.read_text(encoding="utf-8"))
    first = sorted(cards)[-1]
    cards[first]["status"] = "peut-être"
    path.write_text(json.dumps(cards, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="status"):
        load(workspace)
