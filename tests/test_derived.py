"""The structures persisted with an index generation (assistant.derived: lexicon, name automaton, names as
phrases; the BM25 model; the cards read without validation): what a server reads is what a full rebuild
from the cards gives, after incremental builds too; a stale or corrupt artefact is never used, is rebuilt
with a French warning, and nothing is lost. Real corpus, real Chroma, HashEmbeddings for speed."""

from __future__ import annotations

import json
import logging
import pickle
import shutil

import pytest
import yaml

from assistant.bm25 import bm25_arrays, read_bm25_counts
from assistant.config import Settings
from assistant.derived import DerivedUnusable, build_derived, encode_snapshot, read_derived
from assistant.offer_names import OfferNames
from assistant.pipeline.judge.notices import PremiseIndex
from assistant.pipeline.rank import can_target
from assistant.retrieval import HybridRetriever, IndexHandle, LoadedIndex, corpus_lexicon
from assistant.text import fold
from evals.scaled import HashEmbeddings
from ingest.corpus import load_corpus
from ingest.indexer import bm25_path, derived_path, ingest, read_manifest, snapshot_path, tokens_path
from tests.conftest import CORPUS
from tests.test_startup import postings

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
    assert list(index.offers) == sorted(offers)
    # What ranking and the doors read of every card before any is parsed: as from the validated cards.
    assert index.facets == {i: (o.status, frozenset(o.support_types), can_target(o)) for i, o in offers.items()}
    assert index.by_theme == {t: [i for i in sorted(offers) if t in offers[i].themes] for t in index.by_theme}
    assert set(index.by_theme) == {t for o in offers.values() for t in o.themes}
    assert index.active_themes == {t for o in offers.values() if o.status == "active" for t in o.themes}
    assert index.name_lists == {i: [o.title, *o.aliases] for i, o in offers.items()}
    assert index.premise_offers == [i for i in sorted(offers) if offers[i].outdated_premises]
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


def test_the_snapshot_is_the_json_of_the_cards_and_each_span_holds_its_card(workspace):
    """A snapshot reads as json.dumps of the cards (same bytes, same digest however it was written),
    reusing the bytes of unchanged cards changes nothing, and each span parses to its card."""
    generation = read_manifest(workspace)["generation"]
    raw = snapshot_path(workspace, generation).read_bytes()
    cards = json.loads(raw)
    encoded, spans = encode_snapshot(cards)
    assert encoded == raw == json.dumps(cards, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert list(spans) == list(cards) and all(json.loads(raw[a:b]) == cards[i] for i, (a, b) in spans.items())
    first, last = sorted(cards)[0], sorted(cards)[-1]
    assert encode_snapshot(cards, {first: raw[slice(*spans[first])], last: raw[slice(*spans[last])]}) == (raw, spans)
    assert read_derived(derived_path(workspace, generation), generation, read_manifest(workspace)["snapshot_digest"]).spans == spans


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
    raw = snapshot_path(workspace, index.generation).read_bytes()
    cards = json.loads(raw)
    assert encode_snapshot(cards)[0] == raw  # unchanged cards' bytes reused: the same file
    stored, rebuilt = read_derived(derived_path(workspace, index.generation), index.generation,
                                   read_manifest(workspace)["snapshot_digest"]), build_derived(cards)
    assert stored.counts == rebuilt.counts and stored.phrases == rebuilt.phrases
    assert stored.lexicon.spelling == rebuilt.lexicon.spelling
    assert index.names.find(fold("notre ingenierie zephyrine")).by_any_name == {"anct-ingenierie-sur-mesure"}
    assert_as_rebuilt(workspace, index)
    # The BM25 model updated from the previous generation's is the one built from every passage.
    tokens = pickle.loads(tokens_path(workspace, index.generation).read_bytes())
    assert [p for i in sorted(tokens) for p in tokens[i][1]] == index.passage_ids
    every = bm25_arrays([t or ["∅"] for i in sorted(tokens) for t in tokens[i][2]])
    assert postings(read_bm25_counts(bm25_path(workspace, index.generation))) == postings(every)


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
