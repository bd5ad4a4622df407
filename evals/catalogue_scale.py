"""Full sync and indexing of a large catalogue from the fake Aides-territoires server (no network).

The fake server (evals/fake_aides_territoires.py) serves the 274 public aids plus generated ones up to
--aids, in the real API's pages of 100. Prints the sync's wall time and its peak Python memory
(tracemalloc: what the sync itself holds, the in-process server's aid list excluded), then the same for
the indexing, with the bundled embedder (`--embedder use`, the real cost) or a hash embedder
(`--embedder hash`, to see the cost of everything but encoding). Progress bars go to stderr.
Run: `python -m evals.catalogue_scale --aids 10000 --embedder hash`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).parents[1]


def turn_cost(settings, embeddings) -> str:
    """Median time of a chat turn with and without the catalogue, and of the catalogue stage alone, in ms."""
    import statistics

    from assistant.catalogue import CardNames, CatalogueHandle
    from assistant.service import Assistant
    from evals.catalogue_before_after import QUESTIONS
    from ingest.indexer import ingest

    ingest(settings, embeddings, progress=False)
    assistant = Assistant(settings, embeddings=embeddings)
    profiles = [(q, assistant.profile_for(None, insee)) for q, insee in QUESTIONS]
    for question, profile in profiles:  # warm-up: models, caches, first load of the catalogue
        assistant.chat(question, profile=profile)

    def median_ms(run) -> float:
        times = []
        for _ in range(3):
            for question, profile in profiles:
                started = time.perf_counter()
                run(question, profile)
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    catalogue, index = assistant.catalogue.current(), assistant.handle.current()
    cards = CardNames(index.offers, index.names)
    stage = median_ms(lambda q, p: assistant.catalogue_stage.find(catalogue, q, embeddings.embed_query(q), p, cards))
    with_catalogue = median_ms(lambda q, p: assistant.chat(q, profile=p))
    assistant.catalogue = CatalogueHandle(settings.model_copy(update={"data_dir": settings.data_dir / "absent"}))
    without = median_ms(lambda q, p: assistant.chat(q, profile=p))
    return f"tour sans catalogue {without:.0f} ms, avec {with_catalogue:.0f} ms ; étape catalogue seule {stage:.0f} ms (encodage de la question compris)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aids", type=int, default=10_000)
    parser.add_argument("--embedder", choices=["use", "hash"], default="hash")
    parser.add_argument("--data-dir", type=Path, help="keep the data directory here (default: a temporary one)")
    args = parser.parse_args()

    from assistant.config import Settings
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.aides_territoires import AidesTerritoiresClient, sync
    from ingest.catalogue_index import index_catalogue
    from evals.fake_aides_territoires import TOKEN, FakeAidesTerritoires, generated_aids

    if args.embedder == "use":
        from assistant.embeddings import UniversalSentenceEncoderEmbeddings

        embeddings = UniversalSentenceEncoderEmbeddings()
    else:
        from evals.scaled import HashEmbeddings

        embeddings = HashEmbeddings()
    resolver = PerimeterResolver(Territories.load(ROOT / "corpus"))
    with tempfile.TemporaryDirectory(prefix="aiguillage-catalogue-") as tmp, FakeAidesTerritoires(generated_aids(args.aids)) as fake:
        settings = Settings(data_dir=args.data_dir or Path(tmp), corpus_dir=ROOT / "corpus", _env_file=None)
        tracemalloc.start()
        started = time.perf_counter()
        report = sync(AidesTerritoiresClient(fake.url, TOKEN), settings.data_dir)
        sync_s, (_, sync_peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        indexed = index_catalogue(settings, embeddings, resolver)
        index_s, (_, index_peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
        tracemalloc.stop()  # re-indexing times below without its tracing (which triples them)
        started = time.perf_counter()
        again = index_catalogue(settings, embeddings, resolver, progress=False)
        again_s = time.perf_counter() - started
        fake.aids[0] = {**fake.aids[0], "description": "Description modifiée pour le banc d'essai."}
        sync(AidesTerritoiresClient(fake.url, TOKEN), settings.data_dir, progress=False)
        started = time.perf_counter()
        one = index_catalogue(settings, embeddings, resolver, progress=False)
        one_s = time.perf_counter() - started
        turn_costs = turn_cost(settings, embeddings) if args.embedder == "use" else None
        snapshot_mb = sum(p.stat().st_size for p in (settings.data_dir / "catalogue").rglob("*") if p.is_file()) / 2**20
    print(report.summary())
    print(indexed.summary())
    print(f"synchronisation : {sync_s:.1f} s, pic mémoire Python {sync_peak / 2**20:.1f} Mo (fichiers du catalogue : {snapshot_mb:.1f} Mo)")
    print(f"indexation ({args.embedder}) : {index_s:.1f} s, pic mémoire Python {index_peak / 2**20:.1f} Mo ; "
          f"réindexation sans changement : {again_s:.1f} s ({again.embedded} encodée(s)) ; "
          f"une aide modifiée : {one_s:.1f} s ({one.embedded} encodée(s))")
    if turn_costs:
        print("par tour (dix questions de evals/catalogue_before_after.py, médiane sur 3 passes) : " + turn_costs)


if __name__ == "__main__":
    main()
