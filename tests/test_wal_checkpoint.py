"""SQLite's write-ahead log is copied into the database file by a thread of its own
(assistant.store._Checkpointer), not inside the COMMIT of a turn: the file alone holds the turns soon
after they are written, and writers that never pause still keep the log bounded."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

from sqlalchemy import select

from assistant.store import Database, Turn, _Checkpointer

PAGE = 4096


def _turn(message: str) -> dict:
    return {"message": message, "answer": "Voici les pistes de financement. " * 40, "kind": "answer", "generator": "grounded",
            "referrals": [], "retrieved": [], "profile": {}, "themes": []}


def _database(tmp_path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    db.create_schema()
    return db


def _messages_in_file_alone(tmp_path) -> list[str]:
    """The turns a copy of the database file, without its -wal, holds (what a plain file backup keeps)."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(tmp_path / "turns.db", copy)
    with sqlite3.connect(copy) as connection:
        return [m for (m,) in connection.execute("SELECT message FROM turns")]


def test_requests_never_checkpoint_sqlites_log_themselves(tmp_path):
    db = _database(tmp_path)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert connection.exec_driver_sql("PRAGMA journal_size_limit").scalar() == 64 * 2**20  # README


def test_the_database_file_alone_holds_a_turn_soon_after_it_is_written(tmp_path):
    db = _database(tmp_path)
    frames, copied = db.checkpoint()  # the schema, written by the migrations, into the file
    assert frames == copied
    db.save_turn("a" * 32, {"profile": {}, "state": {}}, _turn("Quelle aide pour rénover le pont communal ?"))
    assert "Quelle aide pour rénover le pont communal ?" not in _messages_in_file_alone(tmp_path)  # still in the log
    deadline = time.monotonic() + 30  # the thread copies it after WAL_CHECKPOINT_PERIOD_S (1 s)
    while "Quelle aide pour rénover le pont communal ?" not in _messages_in_file_alone(tmp_path):
        assert time.monotonic() < deadline, "the log was never copied into the database file"
        time.sleep(0.2)


class _OnDemand(_Checkpointer):
    """The checkpointer without its thread: the test says when a pass runs, so the figure does not
    depend on how the machine schedules threads."""

    def wrote(self) -> None:
        pass


def test_writers_that_never_pause_beside_readers_keep_the_log_bounded(tmp_path):
    """SQLite restarts its log only when it is wholly copied and no reader still uses it: with turns
    written back to back and a reader always busy, copying alone seldom gets there (without the held
    restart the log reached 760 to 1,680 pages in these 400 turns, and grew without bound in a
    server; 360 to 390 with it). Past `limit_pages` the checkpointer holds the writers and waits for
    the readers, and the log starts again."""
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    db.create_schema()
    db._checkpointer = _OnDemand(db.engine, db._writer, limit_pages=200)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with db.session() as session:
                session.execute(select(Turn.id).limit(1)).all()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(400):
            db.save_turn(f"{i % 40:032d}", {"profile": {}, "state": {}}, _turn(f"Question numéro {i} sur la voirie"))
            if i % 25 == 24:
                db.checkpoint()  # what the thread does once a second in a server
    finally:
        stop.set()
        reader.join()
    log_pages = (tmp_path / "turns.db-wal").stat().st_size / PAGE
    assert log_pages < 500, f"the log reached {log_pages:.0f} pages"
    with db.session() as session:
        assert len(session.scalars(select(Turn.id)).all()) == 400
