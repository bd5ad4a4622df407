"""Conversations, turns, feedback, console tokens and reviews in SQL (SQLite by default, PostgreSQL
by URL) through SQLAlchemy. The schema is owned by the Alembic migrations in assistant/migrations/:
`Database.create_schema()` upgrades a database to the latest revision.

The conversation row carries the dialogue state (profile, last query, clarifications in a row) so
that a restarted server picks a conversation up where it was.

For the agents' console, each turn's referrals and themes are also written as rows
(`turn_referrals`, `turn_themes`) and the conversation keeps its folded searchable text
(`search_text`): the console filters, counts and pages in SQL instead of reading the JSON of every
turn (assistant/console.py).

Turns are written by `Database.save_turn`: the turn number is taken inside the write transaction
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the conversation row locked `FOR UPDATE`), a unique index
on (conversation_id, number) backs it, and a conflict is retried — so concurrent messages on one
conversation get distinct, consecutive numbers. When the database refuses the write (locked,
read-only, full, unreachable), the turn is spooled as a JSON file and written later by
`flush_pending`, and the conversation's next turns wait behind it (its order is kept): the user
still gets the answer and nothing acknowledged is lost. A turn the spool's disk refuses too is held
in memory until the database accepts it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import random
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import orjson
from sqlalchemy import (
    JSON, Date, DateTime, ForeignKey, Index, Integer, String, Text, bindparam, create_engine, delete, event, insert, inspect,
    select, update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
INITIAL_REVISION = "0001"
KEY_CHARS = 80  # partner and theme keys in the console's tables
CONFLICT_RETRIES = 20  # concurrent turns on one conversation: each conflict costs one retry
WAL_CHECKPOINT_PAGES = 4000  # a log longer than ≈ 16 MB (4 KiB pages) is copied back with the writers held: _Checkpointer
WAL_CHECKPOINT_PERIOD_S = 1.0  # the log is copied into the file at most once a second while turns are written
SQLITE_BUSY_MS = 5000  # pysqlite's default timeout (5 s): how long a statement waits for SQLite's locks
WAL_SIZE_LIMIT_BYTES = 64 * 2**20  # the log file is cut back to this size once copied (journal_size_limit)
log = logging.getLogger("aiguillage.store")


def json_text(value: object) -> str:
    """The text of a JSON column (the engine's json_serializer): orjson's, which json.loads reads back as
    the same value, ≈ 5× faster than json.dumps on the payloads of a turn (≈ 15 KB, written on every chat
    request). Compact and UTF-8 (no spaces, no \\u escapes); keys that are not strings are written as
    strings, as json.dumps writes them; NaN and infinities, which JSON has no word for (PostgreSQL refuses
    json.dumps's NaN), are written null. What orjson refuses and json.dumps writes (a lone surrogate in
    a string, an integer beyond 64 bits: both reach a profile sent to the API) is written by json.dumps,
    as before orjson. TypeError for a value JSON cannot hold, as json.dumps."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


_REVISION_LINE = re.compile(r"^(down_revision|revision) = (?:\"([^\"]+)\"|None)$", re.M)


def head_revision(versions: Path = MIGRATIONS_DIR / "versions") -> str:
    """The latest migration's revision id, read from the files of assistant/migrations/versions (their
    `revision = "…"` and `down_revision = "…"` lines) without importing alembic: the one no other names
    as its parent. ValueError when there is not exactly one (tests compare it with alembic's own head)."""
    revisions, parents = set(), set()
    for path in versions.glob("*.py"):
        found = dict((name, value) for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        revisions.add(found["revision"])
        parents.add(found.get("down_revision") or None)
    heads = revisions - parents
    if len(heads) != 1:
        raise ValueError(f"migrations: {len(heads)} heads in {versions}")
    return heads.pop()


def new_conversation_id() -> str:
    """A conversation id issued by the server: 32 URL-safe characters, about 192 random bits (secrets),
    starting with a letter or digit: an id starting with « - » would reach the console's CSV export
    guarded against formulas (« '-… »), so an agent copying it from a spreadsheet would get a wrong id."""
    while not (conversation_id := secrets.token_urlsafe(24))[0].isalnum():
        pass
    return conversation_id


def utcnow() -> dt.datetime:
    """Now in UTC, naive (as the DateTime columns hold it). datetime.utcnow, not now(UTC).replace(tzinfo=None):
    the same value, without the replace (≈ 6 µs on this interpreter, three times per turn written).
    Deprecated from Python 3.12, which pyproject's requires-python excludes."""
    return dt.datetime.utcnow()


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_conversation_id)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    profile: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    departement_code: Mapped[str | None] = mapped_column(String(3), index=True)
    region_code: Mapped[str | None] = mapped_column(String(3), index=True)
    review_status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")  # see search_text(): the console's free-text filter
    turns: Mapped[list[Turn]] = relationship(back_populates="conversation", order_by="Turn.number", cascade="all, delete-orphan")
    reviews: Mapped[list[Review]] = relationship(
        back_populates="conversation", order_by="Review.id", cascade="all, delete-orphan"
    )


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (Index("ux_turns_conversation_number", "conversation_id", "number", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24), index=True)  # answer, clarification, refusal, no_match
    generator: Mapped[str] = mapped_column(String(16), default="grounded")
    referrals: Mapped[list] = mapped_column(JSON, default=list)
    retrieved: Mapped[list] = mapped_column(JSON, default=list)
    profile: Mapped[dict] = mapped_column(JSON, default=dict)
    themes: Mapped[list] = mapped_column(JSON, default=list)
    usage: Mapped[dict] = mapped_column(JSON, default=dict)
    clarification: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # {question, options}
    # Imported aids shown and hidden behind a card (assistant.pipeline.catalogue.CatalogueFindings.payload)
    catalogue: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    feedback: Mapped[list[Feedback]] = relationship(back_populates="turn", cascade="all, delete-orphan")


class TurnReferral(Base):
    """One offer proposed in a turn (a row per entry of Turn.referrals, duplicates kept): the console
    filters and counts referrals by partner, département and day without reading the JSON."""

    __tablename__ = "turn_referrals"
    __table_args__ = (
        Index("ix_turn_referrals_partner_conversation", "partner", "conversation_id"),
        Index("ix_turn_referrals_day_partner", "day", "partner"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)  # the turn's UTC day
    partner: Mapped[str] = mapped_column(String(KEY_CHARS))


class TurnTheme(Base):
    """One theme detected in a turn, with its place in Turn.themes (0 = the first, which groups
    unmet needs)."""

    __tablename__ = "turn_themes"
    __table_args__ = (Index("ix_turn_themes_theme_conversation", "theme", "conversation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    theme: Mapped[str] = mapped_column(String(KEY_CHARS))


def referral_rows(referrals: list | None) -> list[dict]:
    """Turn.referrals -> [{"partner": str}], one per referral in order (a partner enum gives its
    value; cut to KEY_CHARS so that a strange value can never make a turn unwritable)."""
    return [{"partner": str(getattr(r["partner"], "value", r["partner"]))[:KEY_CHARS]} for r in referrals or []]


def theme_rows(themes: list | None) -> list[dict]:
    """Turn.themes -> [{"position": 0-based place, "theme": str}]."""
    return [{"position": n, "theme": str(theme)[:KEY_CHARS]} for n, theme in enumerate(themes or [])]


def search_text(conversation_id: str, profile: dict | None, messages: list[str]) -> str:
    """What the console's free-text filter searches: the id, the collectivity's name and every
    message in order, joined by spaces and folded (lowercase, no accents: assistant.text.fold), so
    that a folded needle is found with SQL `LIKE '%needle%'` on SQLite and PostgreSQL alike. Each part
    is folded alone, which gives the same text (folding never reaches across a space) and reads the
    turn's message from fold's memo."""
    from assistant.text import fold

    return " ".join(map(fold, [conversation_id, (profile or {}).get("name") or "", *messages]))


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    rating: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    turn: Mapped[Turn] = relationship(back_populates="feedback")


class ApiToken(Base):
    """A console access token. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))  # agent, admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Review(Base):
    """An agent's verdict on one answer: validated as is, or corrected with the right offers."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(16))  # validated, corrected
    primary: Mapped[list] = mapped_column(JSON, default=list)
    acceptable: Mapped[list] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(80))
    conversation: Mapped[Conversation] = relationship(back_populates="reviews")
    turn: Mapped[Turn] = relationship()


class DatabaseUnavailable(RuntimeError):
    """The database could not be read: the API answers 503 in French."""


READ_ONLY_SQLSTATE = "25006"  # PostgreSQL read_only_sql_transaction (a standby, or default_transaction_read_only)


def refused_by_database(exc: DBAPIError) -> bool:
    """True when the error comes from the database's state (locked, read-only, full, unreachable),
    not from the statement: SQLAlchemy's OperationalError, or PostgreSQL's read-only transaction
    (raised as InternalError). The API answers those with a French 503 to retry."""
    return isinstance(exc, OperationalError) or getattr(exc.orig, "sqlstate", None) == READ_ONLY_SQLSTATE


class Database:
    def __init__(self, url: str, spool_dir: Path | None = None):
        sqlite = url.startswith("sqlite")
        connect_args = {"check_same_thread": False} if sqlite else {}
        # hide_parameters: an SQL error never quotes the user's message (e-mails, phone numbers) in a log.
        # pool_pre_ping: a server connection may have been dropped between two requests; a SQLite
        # file cannot, and the ping would be one more statement on every turn.
        self.engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not sqlite, hide_parameters=True,
                                    json_serializer=json_text)
        self._sqlite = sqlite
        database = make_url(url).database if sqlite else None
        on_file = bool(database) and database != ":memory:"  # a SQLite file (not in memory, not PostgreSQL)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        if spool_dir is None and on_file:
            spool_dir = Path(database).resolve().parent / "pending-turns"
        self.spool_dir = spool_dir
        # PostgreSQL's writers run side by side (row locks); a SQLite file has one writer at a time.
        self._writer = _WriterLock(Path(f"{Path(database).resolve()}.writer")) if on_file else nullcontext()
        self._checkpointer = _Checkpointer(self.engine, self._writer) if on_file else None
        self._held: list[dict] = []  # turns neither the database nor the spool's disk accepted
        self._held_lock = threading.Lock()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False)
        self._prepared = _Prepared(self.engine.dialect)

    def create_schema(self) -> None:
        """Bring the database to the latest migration (a database made before migrations is adopted).
        A database already there is only read (alembic, ≈ 0.3 s of CPU to import, is not loaded)."""
        with self.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            if "alembic_version" in tables:
                stamped = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
                if stamped == [head_revision()]:
                    return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            tables = set(inspect(connection).get_table_names())
            if "conversations" in tables and "alembic_version" not in tables:
                command.stamp(config, INITIAL_REVISION)
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction for reading (SQLite: a deferred BEGIN, readers never wait)."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction that writes: on SQLite it takes the write lock first (BEGIN IMMEDIATE), so
        it waits for another writer instead of failing with « database is locked » when a read
        transaction would have to upgrade after someone else committed; before that, it queues on the
        file's writer lock with the turn writers (_WriterLock)."""
        with self._writer, self._writes() as session, session.begin():
            yield session
        self._wrote()

    def _wrote(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    def checkpoint(self) -> tuple[int, int] | None:
        """Copy SQLite's write-ahead log into the database file now (what the background checkpointer
        does after writes): returns (frames in the log, frames copied), None when not a SQLite file."""
        return None if self._checkpointer is None else self._checkpointer.checkpoint()

    def conversation_known(self, conversation_id: str) -> bool:
        """True when the conversation is stored, or has a turn waiting (spool or memory).
        Raises DatabaseUnavailable when the database cannot be read."""
        if self._waiting(conversation_id):
            return True
        try:
            with self.session() as session:
                return session.get(Conversation, conversation_id) is not None
        except DBAPIError as exc:
            raise DatabaseUnavailable(type(exc.orig).__name__) from exc

    def save_turn(self, conversation_id: str, conversation: dict, turn: dict) -> int | None:
        """Store one turn and update its conversation; returns the turn number given in the transaction.

        `conversation`: profile, state, departement_code, region_code; `turn`: the Turn columns but
        conversation_id and number. Conflicts (two turns at once) are retried; when the database
        refuses the write (locked, read-only, full, unreachable), the turn goes to the spool and None
        is returned (written by flush_pending). When the spool's disk refuses it too, the turn is held
        in this process's memory until the database accepts it (lost only if the process dies first).
        """
        if self._waiting(conversation_id):
            self.flush_pending()  # its earlier turns first: a conversation's order is kept
        if self._waiting(conversation_id):
            reason = "earlier turns of the conversation still waiting"
        else:
            try:
                number = self._write_turn(conversation_id, conversation, turn)
            except (OperationalError, DBAPIError) as exc:
                if self.spool_dir is None:
                    raise
                reason = f"database write failed ({type(exc.orig).__name__})"
            else:
                self.flush_pending()
                return number
        payload = {"conversation_id": conversation_id, "conversation": conversation,
                   "turn": {"created_at": utcnow().isoformat(), **turn}}  # the time the user got the answer
        try:
            path = self._spool(payload)
        except OSError as disk:
            with self._held_lock:
                self._held.append(payload)
            log.error("%s and the spool refused the turn (%s): turn held in memory, written when the database accepts it",
                      reason, type(disk).__name__)
            return None
        log.warning("%s: turn kept in %s, written later", reason, path.name)
        return None

    def _waiting(self, conversation_id: str) -> bool:
        """True when turns of this conversation wait in the spool or in memory."""
        if self.spool_dir is not None:
            # Names compared as strings: a glob pattern per conversation would compile a regex per turn.
            prefix = f"{_spool_stem(conversation_id)}."
            try:
                names = os.listdir(self.spool_dir)
            except OSError:  # no spool yet, or a spool the disk refuses (as glob, find nothing there)
                names = []
            if any(n.startswith(prefix) and n.endswith(".json") and len(n) >= len(prefix) + 5 for n in names):
                return True
        return any(p["conversation_id"] == conversation_id for p in list(self._held))

    def _write_turn(self, conversation_id: str, conversation: dict, turn: dict) -> int:
        for attempt in range(CONFLICT_RETRIES):
            try:
                # One transaction on a pooled driver connection, statements compiled once and run on
                # its cursor (_Prepared): a turn is written on every chat request, and SQLAlchemy's
                # execution machinery cost more CPU than the database's own work (1.8 -> 0.6 ms per
                # turn; its Connection and transaction alone ≈ 0.05 ms, against 0.01 here).
                conversations, turns = Conversation.__table__, Turn.__table__
                with self._write_transaction() as cursor:
                    sql = self._prepared
                    row = sql.run(cursor, "conversation", lambda: select(conversations.c.profile).where(
                        conversations.c.id == bindparam("conversation_id")).with_for_update(),
                        {"conversation_id": conversation_id}).fetchone()
                    earlier = [] if row is None else sql.run(  # a new conversation has no turn
                        cursor, "earlier", lambda: select(turns.c.number, turns.c.message)
                        .where(turns.c.conversation_id == bindparam("conversation_id")).order_by(turns.c.number),
                        {"conversation_id": conversation_id}).fetchall()
                    number = (earlier[-1][0] if earlier else 0) + 1
                    profile = (conversation["profile"] if "profile" in conversation
                               else sql.loaded(conversations.c.profile, row[0]) if row else None)
                    values = {**conversation, "updated_at": utcnow(),
                              "search_text": search_text(conversation_id, profile, [*(t[1] for t in earlier), turn["message"]])}
                    if row is None:
                        sql.insert(cursor, conversations, [{"id": conversation_id, **values}])
                    else:
                        keys = tuple(values)
                        sql.run(cursor, ("update", keys), lambda: update(conversations)
                                .where(conversations.c.id == bindparam("conversation_id")).values(
                                    {k: bindparam(k) for k in keys}), {"conversation_id": conversation_id, **values})
                    stored = {"created_at": utcnow(), **turn}
                    turn_id = sql.insert(cursor, turns, [{"conversation_id": conversation_id, "number": number, **stored}], returning=True)
                    day = stored["created_at"].date()
                    sql.insert(cursor, TurnReferral.__table__, [{"turn_id": turn_id, "conversation_id": conversation_id, "day": day, **r}
                                                                 for r in referral_rows(stored.get("referrals"))])
                    sql.insert(cursor, TurnTheme.__table__, [{"turn_id": turn_id, "conversation_id": conversation_id, **t}
                                                              for t in theme_rows(stored.get("themes"))])
                return number
            except IntegrityError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # another turn took the number
        raise AssertionError("unreachable")

    @contextmanager
    def _write_transaction(self) -> Iterator:
        """A write transaction on a driver connection of the engine's pool (its connect events applied):
        yields its cursor, commits at the end, rolls back on any error. On SQLite it takes the write
        lock first (BEGIN IMMEDIATE, as `writing`); PostgreSQL's driver begins at the first statement.
        A driver error is raised as SQLAlchemy's (OperationalError, IntegrityError…): _Prepared.driver."""
        with self._writer:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                if self._sqlite:
                    self._prepared.driver(cursor.execute, "BEGIN IMMEDIATE")
                yield cursor
                self._prepared.driver(lambda _sql: connection.commit(), "COMMIT")
            except BaseException:
                with suppress(Exception):  # a connection the error broke is invalidated by the pool on return
                    connection.rollback()
                raise
            finally:
                connection.close()  # back to the pool
        self._wrote()

    def _spool(self, payload: dict) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        path = self.spool_dir / f"{_spool_stem(payload['conversation_id'])}.{stamp}.json"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return path

    def pending(self) -> list[Path]:
        """Spooled turns, oldest first (a turn's order within its conversation is kept)."""
        if self.spool_dir is None or not self.spool_dir.exists():
            return []
        return sorted(self.spool_dir.glob("*.json"), key=lambda p: p.name.split(".", 1)[1])

    def flush_pending(self) -> int:
        """Write the spooled turns the database now accepts, then those held in memory (oldest
        first); returns how many were written. Each file is claimed by an atomic rename, so several
        workers may flush the same spool."""
        written = 0
        for path in self.pending():
            claimed = path.with_name(f"{path.name}.{os.getpid()}.claimed")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:  # another worker took it
                continue
            payload = json.loads(claimed.read_text(encoding="utf-8"))
            if not self._write_payload(payload):
                os.rename(claimed, path)
                return self._flushed(written)
            claimed.unlink()
            written += 1
        with self._held_lock:
            while self._held and self._write_payload(self._held[0]):
                self._held.pop(0)
                written += 1
        return self._flushed(written)

    def _write_payload(self, payload: dict) -> bool:
        try:
            self._write_turn(payload["conversation_id"], payload["conversation"], _revive(payload["turn"]))
        except DBAPIError:
            return False
        return True

    @staticmethod
    def _flushed(written: int) -> int:
        if written:
            log.info("%d spooled turn(s) written to the database", written)
        return written

    def purge_older_than(self, days: int) -> int:
        limit = utcnow() - dt.timedelta(days=days)
        with self.writing() as session:
            old = session.scalars(select(Conversation.id).where(Conversation.updated_at < limit)).all()
            if old:
                session.execute(delete(Conversation).where(Conversation.id.in_(old)))
            return len(old)


class _Prepared:
    """Statements compiled once for a dialect and run on a DBAPI cursor (Database._write_transaction).

    The SQL text of each statement is the same on every call, so the driver reuses its prepared
    statement (sqlite3's statement cache, psycopg's prepared statements). Values go through each
    column type's bind processor (JSON, DateTime), and an insert's missing columns take their Python
    default, as Core would; a driver error is raised as SQLAlchemy's (IntegrityError,
    OperationalError…), parameters hidden, so callers handle it as before.
    """

    def __init__(self, dialect):
        self.dialect = dialect
        self._compiled: dict[object, tuple] = {}

    def _statement(self, key, build, keys) -> tuple:
        """(SQL text, positional, ((bind name, its bind processor or None), …) in the driver's order) of
        `build()` for bind names `keys`, compiled on the first call for this key."""
        if key not in self._compiled:
            compiled = build().compile(dialect=self.dialect, column_keys=list(keys))
            names = compiled.positiontup if compiled.positional else list(compiled.binds)
            binds = tuple((n, compiled.binds[n].type.dialect_impl(self.dialect).bind_processor(self.dialect)) for n in names)
            self._compiled[key] = (compiled.string, compiled.positional, binds)
        return self._compiled[key]

    @staticmethod
    def _bound(statement: tuple, values: dict):
        """The driver's parameters for one row of values (bind name -> value): tuple or dict."""
        _, positional, binds = statement
        if positional:
            return tuple(process(values[n]) if process else values[n] for n, process in binds)
        return {n: process(values[n]) if process else values[n] for n, process in binds}

    def driver(self, call, sql: str, *params):
        """call(sql, *params) (a cursor's execute or executemany, a connection's commit through a lambda):
        its result, a driver error raised as SQLAlchemy's (IntegrityError, OperationalError…), parameters hidden."""
        try:
            return call(sql, *params)
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, params[0] if params else None, exc, self.dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=self.dialect) from exc

    def run(self, cursor, key, build, values: dict):
        """Execute the statement `build()` (compiled on the first call for this key) with `values`
        (bind name -> value); returns the cursor."""
        statement = self._statement(key, build, values)
        self.driver(cursor.execute, statement[0], self._bound(statement, values))
        return cursor

    def insert(self, cursor, table, rows: list[dict], returning: bool = False) -> object:
        """Insert rows with the same columns (columns left out take their Python default) in one driver
        call (executemany for several; none: nothing is run). `returning`: one row, whose generated
        primary key (its `id`) is returned; otherwise None."""
        if not rows:
            return None
        missing = [c for c in table.columns if c.key not in rows[0] and c.default is not None]
        if missing:
            rows = [{**row, **{c.key: c.default.arg(None) if c.default.is_callable else c.default.arg for c in missing}}
                    for row in rows]
        keys = tuple(rows[0])
        statement = self._statement((table.name, keys, returning), lambda: insert(table).returning(table.c.id) if returning
                                    else insert(table), keys)
        if returning:
            (row,) = rows
            self.driver(cursor.execute, statement[0], self._bound(statement, row))
            return cursor.fetchone()[0]
        self.driver(cursor.executemany, statement[0], [self._bound(statement, row) for row in rows])
        return None

    def loaded(self, column, value):
        """A value read from `column` as SQLAlchemy would give it (JSON text decoded on SQLite)."""
        process = column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
        return process(value) if process else value


def _spool_stem(conversation_id: str) -> str:
    return conversation_id.replace("/", "_").replace(".", "_")


def _revive(turn: dict) -> dict:
    if isinstance(turn.get("created_at"), str):
        turn = {**turn, "created_at": dt.datetime.fromisoformat(turn["created_at"])}
    return turn


class _WriterLock:
    """One writer at a time on a SQLite file (turns, feedback, reviews, tokens, purge: every write
    transaction of Database), across the threads of this process (a lock) and the processes that share
    the file (flock on `<database>.writer`). A writer waiting here sleeps in the kernel and is woken as
    soon as the lock is released; on the file's own lock, BEGIN IMMEDIATE polls through SQLite's busy
    handler (sleeps of 1, 2, 5, 10… ms), and under load the cores then idle while requests queue
    (`aiguillage bench --throughput`, 16 clients, 2 workers: p95 206 → 114 ms). Not re-entrant: a write
    transaction never opens another. SQLite's lock still guards the file against writers that do not
    take this one (migrations, other programs)."""

    def __init__(self, path: Path):
        self._thread = threading.Lock()
        self._path: Path | None = path
        self._fd: int | None = None

    def __enter__(self) -> _WriterLock:
        self._thread.acquire()
        try:
            if self._fd is None and self._path is not None:
                try:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError:  # a read-only directory: SQLite's own lock is left (the write will fail and spool)
                    self._path = None
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


class _Checkpointer:
    """Copies a SQLite file's write-ahead log into the file from a thread of its own, so that no turn
    waits for it (one per process and file, started by the first write, ended after IDLE_S without one).

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, with the writer
    lock held: that turn waited for the copy and its two fsyncs, and every other worker's turn waited
    behind the lock while the cores idled (2 workers, 16 clients: 14 % of the machine idle, 343
    requests/s; 412-414/s and 2-3 % idle with this thread — `python -m evals.load` on a virtio
    disk). Here, at most once every `period_s` after writes, a PASSIVE checkpoint copies what the log
    holds while writers go on appending. SQLite restarts its log only when it is wholly copied and
    no reader still uses it, which writers that never pause beside busy readers prevent (the log
    grew to 1 GB in 20 s of load). So when the log passes `limit_pages`, the checkpointer runs a
    RESTART checkpoint with the writers held (_WriterLock): it copies the few frames written since
    the PASSIVE pass and waits at most RESTART_WAIT_MS for the readers still on the log, a short
    stall; the next write restarts the log, and journal_size_limit cuts its file back. A failed
    checkpoint is logged and retried after the next write: the turns are in the log, which SQLite
    reads and copies later (at the latest when the last connection closes)."""

    IDLE_S = 30.0
    RESTART_WAIT_MS = 100  # readers still on the log get this long to finish while the writers are held

    def __init__(self, engine, writer: _WriterLock, limit_pages: int = WAL_CHECKPOINT_PAGES,
                 period_s: float = WAL_CHECKPOINT_PERIOD_S):
        self.engine, self.writer = engine, writer
        self.limit_pages, self.period_s = limit_pages, period_s
        self._wake = threading.Event()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        """After a committed write: wake the thread (start it when none runs)."""
        self._wake.set()  # before reading _thread: a thread about to end sees it (_run)
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(self.IDLE_S):
                with self._start:
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            time.sleep(self.period_s)  # one copy for the writes of a period
            self._wake.clear()
            try:
                self.checkpoint()
            except (DBAPIError, sqlite3.Error) as exc:  # opening the connection, or the pragma
                log.warning("checkpoint of the SQLite log failed (%s): retried after the next write", type(exc).__name__)

    def checkpoint(self) -> tuple[int, int]:
        """One pass: returns (frames in the log, frames copied into the file)."""
        frames, copied = self._pragma("PASSIVE")
        if frames > self.limit_pages:
            with self.writer:
                frames, copied = self._pragma("RESTART", busy_ms=self.RESTART_WAIT_MS)
        return frames, copied

    def _pragma(self, mode: str, busy_ms: int | None = None) -> tuple[int, int]:
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if busy_ms is not None:
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            try:
                _busy, frames, copied = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            finally:
                if busy_ms is not None:
                    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cursor.close()
            return frames, copied
        finally:
            connection.close()


def _sqlite_pragmas(connection, _record) -> None:
    connection.isolation_level = None  # transactions are begun by _sqlite_begin, not by pysqlite
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL's recommended durability: a commit is not fsynced (the log is, at each checkpoint). A turn
    # written survives a crash of the process; a power cut may lose the last turns, never the file.
    # A synced commit held the write lock for its fsync (tens of ms on a busy disk): every worker's
    # turn waited behind it.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The log is copied into the file by _Checkpointer's thread, not inside the COMMIT of a turn.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # A turn write takes the write lock first (BEGIN IMMEDIATE): reading the last turn number and
    # inserting the next one cannot interleave with another writer, and SQLite's busy timeout applies.
    immediate = connection.get_execution_options().get("sqlite_immediate")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
