"""The `aiguillage` command: ingest, serve, ask, corpus, eval, bench, tokens."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import typer

from assistant.config import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Aiguillage : orienter les collectivités.")
corpus_app = typer.Typer(no_args_is_help=True, help="Vérifier et décrire le corpus.")
app.add_typer(corpus_app, name="corpus")
territories_app = typer.Typer(no_args_is_help=True, help="Tables des territoires (communes, EPCI…).")
app.add_typer(territories_app, name="territories")


def _ensure_index(settings, embeddings, quiet: bool = False):
    """Build or update the index when it is missing or stale; a bad corpus stops here with its errors."""
    from ingest.corpus import CorpusError
    from ingest.indexer import ingest

    try:
        report = ingest(settings, embeddings, progress=not quiet, log=lambda m: None if quiet else typer.echo(m, err=True))
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(f"ERREUR {problem}", err=True)
        typer.echo("Corpus invalide : l'index existant n'a pas été modifié.", err=True)
        raise typer.Exit(1) from None
    if not quiet:
        typer.echo(report.summary(), err=True)
    return report


def _embeddings(settings):
    from assistant.embeddings import EmbeddingUnavailable, build_embeddings

    try:
        return build_embeddings(settings)
    except EmbeddingUnavailable as exc:
        typer.echo(f"ERREUR embeddings : {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def ingest() -> None:
    """Build or update the search index from the corpus (incremental)."""
    settings = get_settings()
    _ensure_index(settings, _embeddings(settings))


@app.command()
def serve(
    host: str = typer.Option(None, help="Adresse d'écoute (défaut : réglage, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (défaut : réglage, 8000)."),
) -> None:
    """Update the index if needed, then serve the API and the chat page."""
    import uvicorn

    from api.app import create_app
    from assistant.service import Assistant

    settings = get_settings()
    embeddings = _embeddings(settings)
    _ensure_index(settings, embeddings)
    application = create_app(settings, Assistant(settings, embeddings=embeddings))
    uvicorn.run(application, host=host or settings.host, port=port or settings.port, log_level="info")


@app.command()
def ask(
    question: str,
    as_json: bool = typer.Option(False, "--json", help="Afficher le corps de réponse de l'API."),
    conversation: str = typer.Option(None, help="Identifiant de conversation pour enchaîner."),
) -> None:
    """Ask one question in the terminal."""
    from api.deps import check_message
    from api.presenters import chat_response
    from assistant.service import Assistant
    from fastapi import HTTPException

    settings = get_settings()
    embeddings = _embeddings(settings)
    _ensure_index(settings, embeddings, quiet=True)
    assistant = Assistant(settings, embeddings=embeddings)
    try:
        message = check_message(question, settings.max_message_chars)
    except HTTPException as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(2) from None
    response = chat_response(assistant.chat(message, conversation))
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    typer.echo(response.answer)
    if response.clarification:
        for option in response.clarification.options:
            typer.echo(f"  → {option.label}")
    typer.echo(f"\n(conversation {response.conversation_id})", err=True)


@corpus_app.command("check")
def corpus_check(corpus_dir: Path = typer.Option(None, help="Dossier du corpus (défaut : réglage).")) -> None:
    """Validate every card; exit 1 on any error."""
    from ingest.corpus import CorpusError, load_corpus, quality_warnings

    corpus_dir = corpus_dir or get_settings().corpus_dir
    try:
        corpus = load_corpus(corpus_dir)
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(f"ERREUR {problem}", err=True)
        raise typer.Exit(1) from None
    errors, warnings = quality_warnings(corpus)
    for problem in warnings:
        typer.echo(f"AVERTISSEMENT {problem}", err=True)
    for problem in errors:
        typer.echo(f"ERREUR {problem}", err=True)
    counts = Counter(offer.partner for offer in corpus.offers.values())
    typer.echo(f"{len(corpus.offers)} offres : " + ", ".join(f"{p} {n}" for p, n in sorted(counts.items())))
    if errors:
        raise typer.Exit(1)


@corpus_app.command("stats")
def corpus_stats(corpus_dir: Path = typer.Option(None)) -> None:
    """Partner × support type and partner × theme tables, to see gaps at a glance."""
    from ingest.corpus import load_corpus
    from ingest.stats import coverage_tables

    corpus = load_corpus(corpus_dir or get_settings().corpus_dir)
    typer.echo(coverage_tables(corpus))


@territories_app.command("build")
def territories_build(
    tarball: Path = typer.Argument(..., help="Archive de `npm pack @etalab/decoupage-administratif`."),
    out: Path = typer.Option(Path("corpus/territoires"), help="Dossier de sortie."),
) -> None:
    """Rebuild corpus/territoires/ from the npm package tarball."""
    import json

    from ingest.territories import build_territories

    if not tarball.is_file():
        typer.echo(f"Archive introuvable : {tarball}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(build_territories(tarball, out), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    sys.exit(app())
