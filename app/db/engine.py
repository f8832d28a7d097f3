"""Engine and session factory.

SQLite gets WAL, a 30 s busy timeout, and two kinds of transactions:

- **reads** (every plain ``factory()`` session: route reads, event streams, the
  worker's cancel poll, metrics scrapes) start with a deferred ``BEGIN``: a WAL
  reader never takes the write lock, so any number of them run beside a writer;
- **writes** (``transaction(factory)``, ``write_session(factory)``) start with
  ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe): the write lock is
  taken when the transaction starts, so two writers queue on the busy timeout
  instead of one failing at once with "database is locked" (a deferred
  transaction that read, then writes after another writer committed, cannot wait).

Writes are short: callers commit before any slow work (parsing, training).
A plain session that writes still works; it only loses the queueing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 30_000
#: SQLite's ``journal_size_limit``: once checkpointed, the WAL file is cut back to this
#: size, so one big write (a checkpoint of a large network) does not keep its space
#: on the disk for good.
WAL_SIZE_LIMIT_BYTES = 1024 * 1024
#: What the SQLite / PostgreSQL errors of a full disk say.
DISK_FULL_MARKERS = ("database or disk is full", "no space left on device", "disk full")
#: PostgreSQL's SQLSTATE for a full disk (class 53: insufficient resources).
PG_DISK_FULL = "53100"
#: The execution option that makes a SQLite transaction ``BEGIN IMMEDIATE``.
WRITE_OPTION = "annlab_write"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy (the "begin" hook below) emit BEGIN, not pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


class DiskFull(Exception):
    """The disk holding the database is full (raised once waiting for space gave up)."""


def is_disk_full(error: BaseException) -> bool:
    """SQLITE_FULL ("database or disk is full"), ENOSPC, or PostgreSQL's disk_full."""
    original = getattr(error, "orig", None) or error
    if getattr(original, "sqlstate", None) == PG_DISK_FULL:
        return True
    return any(marker in str(original).lower() for marker in DISK_FULL_MARKERS)


def disk_full_message(what: str) -> str:
    """What a user reads: which write, and that it is the database's disk."""
    return (
        f"the disk holding annlab's database is full while writing {what} (ANNLAB_DATA_DIR, "
        "or the database server's disk): free space there; nothing half-written is kept"
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads (deferred ``BEGIN`` on SQLite); ``transaction`` /
    ``write_session`` for writes."""
    return sessionmaker(engine, expire_on_commit=False)


def write_session(factory: sessionmaker[Session]) -> Session:
    """A session of ``factory`` whose every transaction takes the write lock at once
    (SQLite ``BEGIN IMMEDIATE``; elsewhere an ordinary session)."""
    bind = factory.kw["bind"]
    return factory(bind=bind.execution_options(**{WRITE_OPTION: True}))


def is_write_session(session: Session) -> bool:
    bind = session.get_bind()
    return bool(bind.get_execution_options().get(WRITE_OPTION, False))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A write session whose work is committed at the end of the block (rolled back
    on error)."""
    with write_session(factory) as session, session.begin():
        yield session
