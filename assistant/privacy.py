"""Personal data hygiene: emails and phone numbers typed by users never reach the logs (message,
arguments, and the text of an attached exception and stack — a database error quotes its SQL
parameters, hence the user's message), and stored conversations are purged after the retention
period."""

from __future__ import annotations

import asyncio
import logging
import re

from assistant.store import Database

log = logging.getLogger("aiguillage.privacy")

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# French numbers (01 23 45 67 89, 01.23.45.67.89, +33 1 23 45 67 89, 0033…) and other international ones.
PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)33[\s.-]?(?:\(0\)[\s.-]?)?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)|(?<![\w+])\+\d{1,3}(?:[\s.-]?\d){7,12}(?!\d)")
DAY_SECONDS = 24 * 3600


def redact(text: str) -> str:
    return PHONE.sub("[téléphone masqué]", EMAIL.sub("[email masqué]", text))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with emails and phone numbers masked (for handlers or loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_FORMATTER = logging.Formatter()


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it to logging's own error path
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None:
        # Formatters print exc_text when it is set: render the traceback once, masked.
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = True


_installed = False


def install_log_redaction() -> None:
    """Redact every log record when it is created, whatever logger or handler it goes through."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def purge(db: Database, retention_days: int) -> int:
    removed = db.purge_older_than(retention_days)
    if removed:
        log.info("purged %d conversation(s) older than %d days", removed, retention_days)
    return removed


async def purge_daily(db: Database, retention_days: int, every: float = DAY_SECONDS) -> None:
    """Background task: purge now, then once a day, until cancelled."""
    while True:
        try:
            await asyncio.to_thread(purge, db, retention_days)
        except Exception:
            log.exception("conversation purge failed")
        await asyncio.sleep(every)
