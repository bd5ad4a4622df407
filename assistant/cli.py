"""The `aiguillage` command: ingest, serve, ask, corpus, eval, bench, tokens."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from assistant.config import get_settings

# Typer writes its help screens in English; everything the user reads is in French.
HELP_OPTION_TEXT = "Afficher cette aide et quitter."
USAGE_PREFIX = "Utilisation : "
# Labels of Typer's help screens, module constants of typer.rich_utils read when a screen is drawn
# (typer==0.29.1 pinned; tests/test_cli_french.py reads every screen).
HELP_SCREEN_LABELS = {
    "COMMANDS_PANEL_TITLE": "Commandes",
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "DEFAULT_STRING": "[défaut : {}]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "DEPRECATED_STRING": "(obsolète) ",
}


class _FrenchHelp:
    """Mixin for Typer's command classes: the --help option reads HELP_OPTION_TEXT, the usage line
    starts with USAGE_PREFIX and the help screen's labels are HELP_SCREEN_LABELS."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), prefix=USAGE_PREFIX)

    def format_help(self, ctx, formatter) -> None:
        _set_screen_labels(HELP_SCREEN_LABELS)
        return super().format_help(ctx, formatter)

    # A usage error (missing argument, bad value, unknown option or command) rises through the parsing
    # of the group's or the command's arguments, or the group's choice of a command: rewritten in
    # French on its way up (assistant.cli_errors), once, with the context of its command.
    def parse_args(self, ctx, args):
        with _french_usage_errors(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with _french_usage_errors(ctx):
            return super().invoke(ctx)


def _set_screen_labels(labels: dict[str, str]) -> None:
    from typer import rich_utils  # imported by Typer for a help or error screen only (rich: not at start-up)

    for name, label in labels.items():
        setattr(rich_utils, name, label)


@contextlib.contextmanager
def _french_usage_errors(ctx):
    from typer._click.exceptions import UsageError

    try:
        yield
    except UsageError as error:
        from assistant.cli_errors import ERROR_SCREEN_LABELS, FrenchUsageError, french_usage_error

        # Typer prints no error for its « no arguments: show the help » signal (matched by class name).
        if isinstance(error, FrenchUsageError) or type(error).__name__ == "NoArgsIsHelpError":
            raise
        _set_screen_labels(ERROR_SCREEN_LABELS)
        raise french_usage_error(error, ctx) from None


class FrenchCommand(_FrenchHelp, TyperCommand):
    pass


class FrenchGroup(_FrenchHelp, TyperGroup):
    pass


class FrenchTyper(typer.Typer):
    """typer.Typer whose group and every command registered with .command() have French help screens."""

    def __init__(self, **options):
        super().__init__(cls=FrenchGroup, subcommand_metavar="COMMANDE [ARGUMENTS]...", **options)

    def command(self, *args, **options):
        return super().command(*args, cls=FrenchCommand, **options)


app = FrenchTyper(no_args_is_help=True, add_completion=False, help="Aiguillage : orienter les collectivités.")
corpus_app = FrenchTyper(no_args_is_help=True, help="Vérifier et décrire le corpus.")
app.add_typer(corpus_app, name="corpus")
territories_app = FrenchTyper(no_args_is_help=True, help="Tables des territoires (communes, EPCI…).")
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


def _embeddings_while_importing(settings, modules: tuple[str, ...]):
    """The embeddings, built in a second thread while this one imports `modules` (those that do
    not need the model). Decompressing the model's weights and its first pass run outside the
    interpreter lock, so start-up overlaps them with the imports. numpy and the embeddings module are
    imported before the thread starts: numpy imported from two threads at once fails."""
    import importlib
    from concurrent.futures import ThreadPoolExecutor

    import numpy  # noqa: F401

    import assistant.embeddings  # noqa: F401

    with ThreadPoolExecutor(1, thread_name_prefix="aiguillage-model") as pool:
        pending = pool.submit(_embeddings, settings)
        for module in modules:
            importlib.import_module(module)
        return pending.result()


@app.command(help="Construire ou mettre à jour l'index de recherche à partir du corpus (incrémental).")
def ingest() -> None:
    """Build or update the search index from the corpus (incremental)."""
    settings = get_settings()
    _ensure_index(settings, _embeddings(settings))


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_thread_limits(workers: int, cpus: int | None = None) -> dict[str, str]:
    """BLAS/OpenMP threads per worker so that N workers do not each spawn one thread per core
    (oversubscription: throughput then falls as clients grow). Variables already set win."""
    import os

    per_worker = str(max(1, (cpus or os.cpu_count() or 1) // workers))
    return {name: os.environ.get(name, per_worker) for name in THREAD_VARIABLES}


@app.command(help="Mettre l'index à jour si besoin, puis servir l'API et la page de discussion (N processus).")
def serve(
    host: str = typer.Option(None, help="Adresse d'écoute (défaut : réglage, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (défaut : réglage, 8000)."),
    workers: int = typer.Option(None, min=1, max=64, help="Processus de travail (défaut : réglage, 1)."),
) -> None:
    """Update the index if needed, then serve the API and the chat page (N worker processes)."""
    import os

    import uvicorn

    settings = get_settings()
    workers = workers or settings.workers
    host, port = host or settings.host, port or settings.port
    _check_port_free(host, port)  # before the index and the model: a taken port is said at once, in French
    embeddings = _embeddings_while_importing(settings, ("ingest.indexer", "api.app") if workers == 1 else ("ingest.indexer",))
    from assistant.mirror import has_mirror
    from ingest.indexer import current_report, index_dir

    # Once, under the build lock, before any worker starts; not even Chroma's client when the index is
    # current and has its vector mirror (read from the files: chromadb is not imported).
    report = current_report(settings, embeddings)
    if report is not None:
        typer.echo(report.summary(), err=True)
    else:
        report = _ensure_index(settings, embeddings)
    if workers == 1 and not has_mirror(index_dir(settings), report.generation):
        # The first read of the collection loads Chroma's stored vectors outside the interpreter lock:
        # started now, it runs beside the app's construction and warm-up (which waits for it).
        from assistant.vectorstore import chroma_client, read_in_background

        read_in_background(chroma_client(settings).get_collection(report.collection))
    os.environ.update(worker_thread_limits(workers))
    # Each worker's handler threads, resolved here where the number of workers is known (a spawned worker
    # reads its settings from the environment, without --workers).
    threads = settings.handler_threads(workers)
    os.environ["AIGUILLAGE_WORKER_THREADS"] = str(threads)
    # proxy_headers=False: X-Forwarded-For is read by the app, only from AIGUILLAGE_TRUSTED_PROXIES.
    options = {"host": host, "port": port, "log_level": "info", "proxy_headers": False}
    if workers == 1:
        from api.app import create_app
        from assistant.service import Assistant

        settings = settings.model_copy(update={"worker_threads": threads})
        uvicorn.run(create_app(settings, Assistant(settings, embeddings=embeddings)), **options)
    else:
        # Each worker builds its app from the same settings (environment); limits need a shared
        # AIGUILLAGE_RATE_LIMIT_STORAGE (redis://…) to hold across workers.
        uvicorn.run("api.app:create_app", factory=True, workers=workers, **options)


def _check_port_free(host: str, port: int) -> None:
    """Exit 2 with a French message when (host, port) cannot be bound (another server listens there)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(f"Impossible d'écouter sur {host}:{port} ({exc.strerror}) : un autre serveur l'occupe peut-être. "
                       "Choisir un autre port avec --port ou AIGUILLAGE_PORT.", err=True)
            raise typer.Exit(2) from None


def _http(settings, method: str, path: str, body: bytes | None = None, timeout: float = 60.0) -> tuple[int, str, bytes]:
    """(status, content type, body) of one request to AIGUILLAGE_HOST:AIGUILLAGE_PORT, with the standard
    library's client (httpx costs ≈ 0.1 s of CPU to import); OSError or HTTPException when nothing answers."""
    import http.client

    connection = http.client.HTTPConnection(settings.host, settings.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _ask_server(settings, question: str, conversation: str | None) -> dict | None:
    """The /v1/chat body from a server already running at AIGUILLAGE_HOST:AIGUILLAGE_PORT, or None if none answers."""
    import http.client
    import json

    try:
        if json.loads(_http(settings, "GET", "/healthz", timeout=0.5)[2]) != {"status": "ok"}:
            return None
        request = json.dumps({"message": question, "conversation_id": conversation}).encode()
        status, kind, raw = _http(settings, "POST", "/v1/chat", request)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    if status >= 400:
        detail = json.loads(raw).get("detail") if kind.startswith("application/json") else None
        typer.echo(detail or f"Le serveur a répondu {status}.", err=True)
        raise typer.Exit(2)
    return json.loads(raw)


def _ask_locally(settings, question: str, conversation: str | None) -> dict:
    """Answer in this process: the index is updated if needed, nothing else than a turn needs is loaded
    (neither the web framework nor, when the index generation has its vector mirror, Chroma)."""
    import gc

    from api.models import InvalidMessage, message_text

    try:
        message = message_text(question, settings.max_message_chars)
    except InvalidMessage as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    # One short-lived turn: the cyclic collector would only walk, again and again, the tens of
    # thousands of objects the imports and the territory tables create (≈ 0.4 s of CPU); memory is
    # freed by reference counting meanwhile, and the collector is back on when the answer is built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        embeddings = _embeddings_while_importing(settings, ("assistant.service", "api.presenters"))
        from api.presenters import chat_response
        from assistant.service import Assistant
        from ingest.indexer import current_report

        if current_report(settings, embeddings) is None:  # read from the files: Chroma is not opened
            _ensure_index(settings, embeddings, quiet=True)
        assistant = Assistant(settings, embeddings=embeddings)
        return chat_response(assistant.chat(message, conversation)).model_dump(mode="json")
    finally:
        if collecting:
            gc.enable()


@app.command(help="Poser une question dans le terminal (par le serveur en marche s'il répond).")
def ask(
    question: str = typer.Argument(..., help="La question, entre guillemets."),
    as_json: bool = typer.Option(False, "--json", help="Afficher le corps de réponse de l'API."),
    conversation: str = typer.Option(None, help="Identifiant de conversation pour enchaîner."),
) -> None:
    """Ask one question in the terminal (through a running server when one answers)."""
    import json

    settings = get_settings()
    body = _ask_server(settings, question, conversation) or _ask_locally(settings, question, conversation)
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    typer.echo(body["answer"])
    for option in (body.get("clarification") or {}).get("options", []):
        typer.echo(f"  → {option['label']}")
    typer.echo(f"\n(conversation {body['conversation_id']})", err=True)


@corpus_app.command("check", help="Valider chaque fiche ; code de sortie 1 s'il y a une erreur.")
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
    typer.echo(f"{len(corpus.signposts)} portes d'entrée hors partenaires")
    if errors:
        raise typer.Exit(1)


@corpus_app.command("stats", help="Tables de couverture, portes hors partenaires, fraîcheur et besoins que rien ne sert.")
def corpus_stats(corpus_dir: Path = typer.Option(None, help="Dossier du corpus (défaut : réglage).")) -> None:
    """Coverage tables, the doors outside the partners, freshness, and the needs nothing serves."""
    from ingest.corpus import load_corpus
    from ingest.stats import coverage_gaps, coverage_tables, freshness_tables, signpost_table

    corpus = load_corpus(corpus_dir or get_settings().corpus_dir)
    for block in (coverage_tables(corpus), signpost_table(corpus), freshness_tables(corpus), coverage_gaps(corpus)):
        typer.echo(block + "\n")


@app.command(help="Afficher les chiffres d'indexation, de démarrage, de latence et de mémoire de la configuration par défaut.")
def bench(
    questions: int = typer.Option(40, help="Nombre de questions du jeu d'évaluation utilisées."),
    rounds: int = typer.Option(3, help="Passages sur ces questions."),
    scale: int = typer.Option(1, min=1, max=1000, help="Corpus copié N fois (×100 ≈ 11 000 offres)."),
    peer: bool = typer.Option(False, "--peer", help="Comparer le CPU par question à un RAG LangChain naïf."),
    throughput: bool = typer.Option(False, "--throughput", help="Requêtes par seconde à 1, 4 et 16 clients, 1 et 2 processus."),
    embedder: str = typer.Option(
        "use", help="use : l'encodeur réglé ; hash : un encodeur factice instantané (×100 indexé en minutes, coût d'encodage exclu) ; "
        "standin : index de vecteurs factices de la dimension de l'encodeur réglé, démarrage du vrai `serve` (modèle compris) seul mesuré."
    ),
) -> None:
    """Print ingest, cold-start, latency and memory figures for the default configuration."""
    from evals.bench import format_report, run_bench

    if embedder not in ("use", "hash", "standin"):
        raise typer.BadParameter("« use », « hash » ou « standin »", param_hint="--embedder")
    if embedder == "standin" and (peer or throughput):
        raise typer.BadParameter("standin ne mesure que le démarrage : sans --peer ni --throughput", param_hint="--embedder")
    typer.echo(format_report(run_bench(get_settings(), questions, rounds, scale, peer, throughput, embedder)))


# Import name -> distribution of each package of the `eval` extra (pyproject.toml): evaluation and
# model training need them, the assistant does not install them.
EVAL_EXTRA = {"matplotlib": "matplotlib", "ranx": "ranx", "sklearn": "scikit-learn"}


def eval_extra_missing(command: str) -> str | None:
    """The French message naming the `eval` extra when one of its packages is not installed (checked
    without importing them), for `command` as the user typed it; None when all are there."""
    import importlib.util

    missing = [distribution for module, distribution in EVAL_EXTRA.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"`{command}` a besoin des paquets de l'option « eval », absents de cette installation "
            f"({', '.join(missing)}). Installez-les avec : .venv/bin/pip install -e \".[eval]\"")


def _require_eval_extra(command: str) -> None:
    """Exit 2 with eval_extra_missing's message, instead of a traceback a minute into the run."""
    if message := eval_extra_missing(f"aiguillage {command}"):
        typer.echo(message, err=True)
        raise typer.Exit(2)


scope_app = FrenchTyper(no_args_is_help=True, help="Décision de champ (modèle appris sur evals/datasets/).")
app.add_typer(scope_app, name="scope")


@scope_app.command("train", help="Entraîner le modèle de champ, afficher les matrices de confusion par source, écrire assistant/scope/model.*.")
def scope_train() -> None:
    """Fit the scope classifier, print per-source confusion matrices, write assistant/scope/model.*."""
    _require_eval_extra("scope train")
    from assistant.scope.train import train

    settings = get_settings()
    train(settings.corpus_dir, _embeddings(settings), cache_dir=settings.data_dir / "scope", log=typer.echo)


@app.command("eval", help="Évaluer la qualité des réponses (jeu gold, titres Fonds vert, références) ; code 1 sous les seuils.")
def eval_command(
    out: Path = typer.Option(..., "--out", help="Dossier où écrire report.json et report.html."),
    full: bool = typer.Option(False, "--full", help="Tout le jeu gold et toutes les lignes du Fonds vert."),
    split: str = typer.Option(None, help="Partie du jeu gold : test, dev ou all (défaut : test, all avec --full)."),
    previous: Path = typer.Option(None, help="report.json d'une évaluation précédente, pour comparer."),
    csv: Path = typer.Option(None, help="CSV Fonds vert 2023 (défaut : evals/datasets/fonds-vert-2023-projets.csv)."),
    generator: str = typer.Option("grounded", help="Générateur de réponse : grounded ou llm."),
    check: Path = typer.Option(None, help="Vérifier un report.json existant contre les seuils, sans rien relancer."),
) -> None:
    """Evaluate answer quality (gold set, Fonds vert titles, baselines); exit 1 under the thresholds."""
    _require_eval_extra("eval")
    from evals.run import Options, main, regate

    if check is not None:
        raise typer.Exit(regate(check))
    if generator not in {"grounded", "llm"}:
        typer.echo("--generator doit valoir grounded ou llm", err=True)
        raise typer.Exit(2)
    code = main(Options(out=out, full=full, split=split, previous=previous, csv=csv, generator=generator))
    raise typer.Exit(code)


@territories_app.command("build", help="Reconstruire corpus/territoires/ à partir de l'archive du paquet npm.")
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


@territories_app.command("common-words", help="Régénérer noms-communs.txt : noms de communes et de départements qui sont des mots courants.")
def territories_common_words(
    out: Path = typer.Option(Path("corpus/territoires"), help="Dossier des tables (communes.json.gz)."),
    dictionary: str = typer.Option("/usr/share/hunspell/fr", help="Dictionnaire hunspell (sans .dic/.aff)."),
) -> None:
    """Regenerate noms-communs.txt: commune and département names that are ordinary French words
    (needs `apt-get install hunspell hunspell-fr-classical`)."""
    import json

    from ingest.common_words import write_common_words

    try:
        typer.echo(json.dumps(write_common_words(out, dictionary), ensure_ascii=False))
    except RuntimeError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


# ---- national catalogue ----------------------------------------------------------------------
catalogue_app = FrenchTyper(no_args_is_help=True, help="Catalogues nationaux d'aides (Aides-territoires).")
app.add_typer(catalogue_app, name="catalogue")


@catalogue_app.command("sync", help="Lire tout le catalogue Aides-territoires dans un instantané daté sous DATA_DIR (tout ou rien).")
def catalogue_sync(source: str = typer.Argument(..., help="Catalogue à synchroniser : aides-territoires.")) -> None:
    """Read the whole Aides-territoires catalogue into a dated snapshot under DATA_DIR (all or nothing)."""
    from ingest.aides_territoires import AidesTerritoiresClient, SyncError, sync

    if source != "aides-territoires":
        typer.echo(f"Catalogue inconnu : {source} (seul « aides-territoires » existe).", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    if not settings.aides_territoires_token:
        typer.echo("AIGUILLAGE_AIDES_TERRITOIRES_TOKEN est requis (jeton de l'API Aides-territoires).", err=True)
        raise typer.Exit(2)
    client = AidesTerritoiresClient(settings.aides_territoires_url, settings.aides_territoires_token)
    try:
        report = sync(client, settings.data_dir, log=lambda line: typer.echo(line, err=True))
    except SyncError as exc:
        typer.echo(f"ERREUR {exc}. L'instantané précédent est conservé, rien n'a été supprimé.", err=True)
        raise typer.Exit(1) from None
    typer.echo(report.summary())
    _index_catalogue(settings)


@catalogue_app.command("index", help="(Ré)indexer le dernier instantané complet : seules les aides nouvelles ou modifiées sont encodées.")
def catalogue_index() -> None:
    """(Re)index the last complete snapshot: only new or changed aids are embedded, removed ones deleted."""
    settings = get_settings()
    try:
        _index_catalogue(settings)
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _index_catalogue(settings) -> None:
    from assistant.embeddings import build_embeddings
    from assistant.perimeter import PerimeterResolver
    from assistant.territory import Territories
    from ingest.catalogue_index import index_catalogue

    resolver = PerimeterResolver(Territories.load(settings.corpus_dir, settings.data_dir / "cache"))
    report = index_catalogue(settings, build_embeddings(settings), resolver, log=lambda line: typer.echo(line, err=True))
    typer.echo(report.summary())


# ---- console tokens and data retention -------------------------------------------------------
tokens_app = FrenchTyper(no_args_is_help=True, help="Jetons d'accès à la console des agents.")
app.add_typer(tokens_app, name="tokens")


def _database(settings):
    from assistant.store import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.sqlalchemy_url)
    database.create_schema()
    return database


@tokens_app.command("create", help="Créer un jeton de console ; le secret est affiché une fois, seule son empreinte est gardée.")
def tokens_create(
    name: str = typer.Option(..., "--name", help="Qui utilisera le jeton (ex. « Agent ANCT Cantal »)."),
    role: str = typer.Option("agent", "--role", help="agent (consulter, relire, exporter) ou admin (et effacer)."),
) -> None:
    """Create a console token; the secret is printed once and only its hash is stored."""
    from assistant.auth import ROLES, create_token

    if role not in ROLES:
        typer.echo(f"Rôle inconnu : {role} (agent ou admin).", err=True)
        raise typer.Exit(2)
    try:
        secret, row = create_token(_database(get_settings()), name, role)
    except ValueError as exc:
        typer.echo(f"Jeton non créé : {exc}.", err=True)
        raise typer.Exit(2) from None
    typer.echo(secret)
    typer.echo(f"Jeton n° {row.id} « {row.name} » ({row.role}) créé. Conservez-le : il ne sera plus affiché.", err=True)


@tokens_app.command("list", help="Lister les jetons de console (jamais leur secret).")
def tokens_list() -> None:
    """List console tokens (never their secret)."""
    from assistant.auth import list_tokens

    for row in list_tokens(_database(get_settings())):
        state = f"révoqué le {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "actif"
        used = f"utilisé le {row.last_used_at:%Y-%m-%d}" if row.last_used_at else "jamais utilisé"
        typer.echo(f"{row.id}\t{row.role}\t{row.name}\t{state}\t{used}")


@tokens_app.command("revoke", help="Révoquer un jeton de console, immédiatement.")
def tokens_revoke(token_id: int = typer.Argument(..., help="Numéro du jeton (voir `tokens list`).")) -> None:
    """Revoke a console token at once."""
    from assistant.auth import revoke_token

    if not revoke_token(_database(get_settings()), token_id):
        typer.echo(f"Aucun jeton actif n° {token_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Jeton n° {token_id} révoqué.")


@app.command(help="Supprimer les conversations restées sans mise à jour plus longtemps que la durée de conservation.")
def purge(
    days: int = typer.Option(None, help="Durée de conservation en jours (défaut : réglage, 180)."),
) -> None:
    """Delete conversations not updated for longer than the retention period."""
    from assistant.privacy import purge as purge_conversations

    settings = get_settings()
    retention = days or settings.conversation_retention_days
    removed = purge_conversations(_database(settings), retention)
    typer.echo(f"{removed} conversation(s) de plus de {retention} jours supprimée(s).")


if __name__ == "__main__":
    sys.exit(app())
