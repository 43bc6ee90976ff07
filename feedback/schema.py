"""The database schema's version: Alembic migrations run on the app's own engine.

The migration scripts live in `feedback/migrations/`; no alembic.ini is needed, the
configuration is built here. Every change of the schema happens on one connection that
holds a lock (PostgreSQL: an advisory lock per schema; SQLite: the write lock), so of
several processes starting at once exactly one migrates and the others find it done.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from feedback.errors import StorageError
from feedback.tables import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Files sort by date; the slug says what the revision does.
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
# The revision a database made before migrations (by create_all) is stamped with.
BASELINE = "88c6f1fabeec"
# Arbitrary, fixed: the first half of the advisory lock that serialises migrations; the
# second is the schema's hash, so deployments in other schemas do not wait on each other.
ADVISORY_LOCK_KEY = 1_138_771
# Long enough for another replica to create or upgrade the schema; a replica still waiting
# after this fails its start and is restarted by its supervisor.
LOCK_WAIT_S = 60.0
LOCK_POLL_S = 0.1
UPGRADE_COMMAND = "python -m classifier db upgrade"
# Alembic's `context` and `op` are process-wide proxies: one command at a time per process.
_command_lock = threading.RLock()


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: `current` is None for an empty database and for one made
    before migrations (`legacy`, tables but no version)."""

    current: str | None
    head: str
    legacy: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None,
                   versions: Path | None = None) -> Config:
    """Alembic's configuration in code; `versions` replaces the revisions folder (tests)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", FILE_TEMPLATE)
    if versions is not None:
        config.set_main_option("version_locations", str(versions))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    """The revisions, loaded once per process (under the command lock: loading compiles
    them, and CPython 3.11 can fail compiling in two threads at once)."""
    with _command_lock:
        script = ScriptDirectory.from_config(alembic_config())
        script.get_current_head()  # loads every revision file now
        return script


def _migrate(conn: Connection, destination: str, *, stamp: bool = False) -> None:
    """Upgrade `conn` to `destination` (or only record it as there, `stamp`) with the
    revisions loaded once, as env.py does for the `alembic` command but without loading
    env.py each time (a fresh database is made for every test, and in threads)."""
    script = _script()

    def steps(heads: tuple[str, ...], _context: object) -> object:
        """The steps from the database's current heads (alembic passes them as a tuple)."""
        if stamp:
            return script._stamp_revs(destination, heads)  # as alembic's stamp command
        # As alembic's upgrade command, which passes the same tuple where the type says str.
        return script._upgrade_revs(destination, heads)  # type: ignore[arg-type]  # as alembic

    with _command_lock:  # `op` in the revisions is a process-wide proxy
        context = MigrationContext.configure(connection=conn, opts={
            "target_metadata": Base.metadata, "render_as_batch": True, "fn": steps,
            "script": script, "destination_rev": destination})
        with Operations.context(context):
            context.run_migrations()


def head_revision() -> str:
    """The revision this version of the code needs."""
    head = _script().get_current_head()
    assert head is not None, "feedback/migrations/versions holds no revision"
    return head


def read_state(connection: Connection) -> SchemaState:
    """The database's revision against the code's head, without changing anything."""
    current = MigrationContext.configure(connection).get_current_revision()
    legacy = current is None and bool(_baseline_columns().keys()
                                      & set(inspect(connection).get_table_names()))
    return SchemaState(current=current, head=head_revision(), legacy=legacy)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that holds the migration lock; commits at the end.

    SQLite: foreign keys are off meanwhile (a batch migration copies and drops a table,
    which would otherwise cascade to its children) and checked before committing.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, waiting busy_timeout
                yield conn
                if conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise StorageError("A migration left rows pointing at missing rows; "
                                       "nothing was changed.")
                conn.commit()
            finally:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        else:
            _wait_for_advisory_lock(conn)
            yield conn
            conn.commit()


def _wait_for_advisory_lock(conn: Connection) -> None:
    """Poll rather than block: a blocking wait would hit the app's lock_timeout."""
    deadline = time.monotonic() + LOCK_WAIT_S
    query = text("SELECT pg_try_advisory_xact_lock(:key, "
                 "hashtext(coalesce(current_schema(), '')))")
    while not conn.scalar(query, {"key": ADVISORY_LOCK_KEY}):
        if time.monotonic() > deadline:
            raise StorageError(f"Another process has been changing the database schema for "
                               f"{LOCK_WAIT_S:.0f} s; try again once it is done.")
        time.sleep(LOCK_POLL_S)


def upgrade_schema(engine: Engine, *, allow_upgrade: bool) -> tuple[SchemaState, str]:
    """Bring the database to the head revision; returns the state found and the revision now.

    An empty database is created; one made before migrations is stamped at the baseline
    (never recreated) and then treated as at the baseline; one at an older revision is
    upgraded only if `allow_upgrade`.
    Raises StorageError, saying what to do, for a database this code cannot take.
    """
    with engine.connect() as conn:
        found = read_state(conn)
    if found.up_to_date:
        return found, found.head
    with migration_connection(engine) as conn:
        found = read_state(conn)  # another process may have migrated meanwhile
        if found.up_to_date:
            return found, found.head
        current = found.current
        if found.legacy:
            _check_baseline_columns(conn)
            _migrate(conn, BASELINE, stamp=True)
            current = BASELINE
        if current is not None and current != found.head:
            _check_known(current)
            if not allow_upgrade:
                raise StorageError(
                    f"The database schema is at revision {current}; this version of "
                    f"Support Triage needs {found.head}. Back up the database, run "
                    f"`{UPGRADE_COMMAND}` once (same DATABASE_URL or DATA_DIR), then start "
                    "the app; or set DB_AUTO_UPGRADE=1 to let the app upgrade by itself.")
        _migrate(conn, found.head)
        return found, read_state(conn).current or ""


def _check_known(revision: str) -> None:
    if revision not in {s.revision for s in _script().walk_revisions()}:
        raise StorageError(
            f"The database schema is at revision {revision}, which this version of Support "
            "Triage does not know: a newer version upgraded it. Run that version instead.")


@functools.cache
def _baseline_columns() -> dict[str, frozenset[str]]:
    """Tables and columns the baseline revision creates, read from a scratch in-memory
    database, so the check stays right after later revisions change feedback/tables.py."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            _migrate(conn, BASELINE)
            inspector = inspect(conn)
            return {t: frozenset(c["name"] for c in inspector.get_columns(t))
                    for t in inspector.get_table_names() if t != "alembic_version"}
    finally:
        scratch.dispose()


def _check_baseline_columns(conn: Connection) -> None:
    """Refuse a database from before migrations that is not exactly the baseline's
    tables: stamping it would hide columns that are missing until some request fails."""
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    for table, columns in sorted(_baseline_columns().items()):
        if table not in present:
            continue
        missing = sorted(columns - {c["name"] for c in inspector.get_columns(table)})
        if missing:
            raise StorageError(
                f"The database was created by an older version of Support Triage: table "
                f"{table!r} lacks {', '.join(missing)}. It cannot be upgraded automatically: "
                "point DATA_DIR or DATABASE_URL at a new database, or export what you need "
                "(python -m classifier export) and start fresh.")
    absent = sorted(_baseline_columns().keys() - present)
    if absent:
        raise StorageError(
            f"The database was created by an older version of Support Triage and lacks the "
            f"tables {', '.join(absent)}. Start it once with the release before schema "
            "migrations (which adds them), or point DATA_DIR or DATABASE_URL at a new "
            "database.")


def generate_revision(message: str) -> Path:
    """Write a new revision file comparing feedback/tables.py with what the migrations
    build (on a scratch SQLite database); returns its path, to review before committing."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            config = alembic_config(conn)
            with _command_lock:
                command.upgrade(config, "head")
                script = command.revision(config, message=message, autogenerate=True)
    finally:
        scratch.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
