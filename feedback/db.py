"""The one engine per database URL, sessions, and where data lives.

The first `get_engine` of a process brings the schema up to date (feedback/schema.py).
SQLite gets WAL (readers never block the writer), foreign keys and a busy timeout, so the
web app, a CLI command and a benchmark can share one file. Every public store function runs
inside `session_scope()`, which commits or rolls back as a unit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, insert, make_url, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from feedback.errors import ConflictError, StorageError
from feedback.schema import upgrade_schema
from feedback.settings import Settings, load_settings
from feedback.tables import Deployment, utc_now

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# Every PostgreSQL call is bounded, so a stalled database answers with an error within
# seconds instead of hanging the request (SQLite waits at most DB_BUSY_TIMEOUT for a lock).
CONNECT_TIMEOUT_S = 2
# A peer that vanished (a blackholed network) fails the query once the kernel gives up on
# unacknowledged packets, instead of leaving it waiting for ever.
TCP_USER_TIMEOUT_MS = 3000
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
             "keepalives_count": 3}
LOCK_TIMEOUT_MS = 2000  # a held row or table lock (a migration, a long admin query)
POOL_TIMEOUT_S = 2  # every pooled connection busy: refuse rather than queue for ever
WAL_RETRY_S = 0.01  # switching to WAL takes well under a millisecond


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        # First, so that switching to WAL below waits for another process's lock too.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        _switch_to_wal(cursor, busy_timeout_s)
        # NORMAL is durable across application crashes in WAL mode; FULL only adds power-loss
        # safety at the cost of an fsync on every prediction.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def rows_matched(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE run by `Session.execute` matched. SQLAlchemy returns a
    CursorResult for these statements but types `Session.execute` as the plain Result."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not an UPDATE or DELETE result: {type(result).__name__}")
    return result.rowcount


def _switch_to_wal(cursor: sqlite3.Cursor, timeout_s: float) -> None:
    """Two connections switching a new file to WAL at once deadlock, so SQLite refuses one
    at once instead of waiting busy_timeout: retry until the other has switched it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)


def _prepare_schema(engine: Engine, settings: Settings) -> None:
    """Bring the schema to this version's revision (feedback/schema.py) and make sure the
    single deployment pointer row exists; raises StorageError for a database this version
    cannot take or may not upgrade by itself."""
    upgrade_schema(engine, allow_upgrade=settings.upgrades_schema_at_start)
    try:
        with engine.begin() as conn:
            if conn.scalar(select(Deployment.id).where(Deployment.id == 1)) is None:
                conn.execute(insert(Deployment).values(id=1, revision=0, canary_percent=0,
                                                       updated_at=utc_now()))
    except IntegrityError:
        pass  # another process created it first


def open_engine(settings: Settings) -> Engine:
    """A new engine with the app's SQLite pragmas or PostgreSQL timeouts, schema untouched
    (the `db` commands use it to look at or upgrade a database the app would refuse).

    Raises StorageError when the data folder cannot be made.
    """
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                             pool_timeout=POOL_TIMEOUT_S,
                             connect_args=postgres_timeouts(url, settings))
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the data folder {settings.data_dir}: {exc.strerror}. "
            "Set DATA_DIR to a writable folder."
        ) from exc
    engine = create_engine(url, connect_args={"timeout": settings.db_busy_timeout_s})
    _configure_sqlite(engine, settings.db_busy_timeout_s)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The shared engine for the configured database; on first use its schema is created or
    upgraded to this version (see `upgrade_schema`).

    Raises StorageError when the database cannot be reached, its folder cannot be made, or
    its schema is older and DB_AUTO_UPGRADE does not allow upgrading it here.
    """
    settings = settings or load_settings()
    key = f"{settings.effective_database_url}#{settings.db_busy_timeout_s}"
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        engine = open_engine(settings)
        try:
            _prepare_schema(engine, settings)
        except StorageError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StorageError(f"Cannot open the database: {describe_db_error(exc)}") from exc
        _engines[key] = engine
        return engine


def postgres_timeouts(url: str, settings: Settings) -> dict[str, object]:
    """libpq connection parameters bounding connect, network stalls, statements and locks;
    any `options` already in the URL (a search_path, say) are kept."""
    existing = make_url(url).query.get("options", "")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    statement_ms = int(settings.db_statement_timeout_s * 1000)
    options = (f"{existing} -c statement_timeout={statement_ms} "
               f"-c lock_timeout={LOCK_TIMEOUT_MS}").strip()
    return {"connect_timeout": CONNECT_TIMEOUT_S, "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
            "options": options, **KEEPALIVE}


def dispose_engines() -> None:
    """Close every pooled connection (tests and forked workers)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def describe_db_error(exc: BaseException) -> str:
    """A sentence a person can act on, never a driver traceback."""
    text = str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OperationalError) and "locked" in text.lower():
        return "the database is locked by another process; try again in a moment"
    if isinstance(exc, OperationalError):
        return f"the database is not reachable ({text})"
    return text


def is_unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (two writers racing for one row), not a broken reference."""
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(exc.orig)  # SQLite


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    Database failures surface as StorageError with a plain-words reason.
    """
    # A Session directly: sessionmaker() builds a new Session subclass per call (60 µs).
    session = Session(bind=get_engine(settings), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if is_unique_violation(exc):
            raise ConflictError("another request saved the same row at the same moment; "
                                "try again") from exc
        raise StorageError(describe_db_error(exc)) from exc
    except SQLAlchemyError as exc:
        session.rollback()
        raise StorageError(describe_db_error(exc)) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@dataclass(frozen=True)
class StorageInfo:
    """Where data is kept, and whether it survives a restart of the host."""

    location: str
    persistent: bool
    advice: str


def describe_storage(settings: Settings | None = None) -> StorageInfo:
    """Say where predictions and models are stored and warn about ephemeral disks.

    On Hugging Face Spaces (SPACE_ID set) only `/data` (persistent storage) or an external
    database survive a restart; elsewhere a local folder is taken as persistent.
    """
    settings = settings or load_settings()
    if settings.database_url:
        backend = settings.database_url.split("://", 1)[0]
        return StorageInfo(f"{backend} database (DATABASE_URL)", True, "")
    location = str(settings.data_dir / "support_triage.db")
    on_volume = Path("/data") in (settings.data_dir, *settings.data_dir.parents)
    persistent = not settings.space_id or on_volume
    advice = (
        ""
        if persistent
        else "This Space's own disk is wiped on restart: predictions, ratings and models will be "
        "lost. Enable persistent storage (mounted at /data) or set DATABASE_URL to a managed "
        "PostgreSQL to keep them."
    )
    return StorageInfo(f"SQLite file {location}", persistent, advice)
