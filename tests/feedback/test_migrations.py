"""Schema migrations (feedback/schema.py, feedback/migrations/) on SQLite and PostgreSQL:
the baseline equals tables.py, databases from before migrations are stamped and keep their
rows, a revision adds and drops a column, older schemas are upgraded or refused, and the
`db` commands."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Column, Engine, Table, func, insert, inspect, select, text

from classifier.cli.main import main
from feedback import schema
from feedback.db import dispose_engines, get_engine, open_engine
from feedback.errors import StorageError
from feedback.settings import Settings, load_settings, settings_env
from feedback.tables import Base, UTCDateTime
from tests.conftest import ROOT, app_env

# Every test starts from an empty database, not conftest's migrated copy.
EMPTY_DATABASE = True
SAMPLE_REVISION = "5a3p1e000001"
SAMPLE = '''"""Sample: predictions.priority, a nullable column."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.add_column(sa.Column("priority", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.drop_column("priority")
'''
# One value per Python type of the columns in tables.py; 1 is also every foreign key's target.
VALUES: dict[type, Any] = {int: 1, float: 0.5, str: "x", bool: True, bytes: b"x"}


def _value(column: Column[Any]) -> Any:
    if isinstance(column.type, UTCDateTime):
        return datetime.now(UTC)
    if isinstance(column.type, JSON):
        return {}
    return VALUES[column.type.python_type]


def _row(table: Table) -> dict[str, Any]:
    return {c.name: _value(c) for c in table.columns}


def _fill(engine: Engine) -> dict[str, int]:
    """One row in every table the database has, in its own columns (an older schema lacks
    the newer ones), parents first; returns the row count of each table."""
    present = _counts(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            columns = _columns(engine, table.name)
            if not present[table.name]:  # start-up already made the deployment row
                conn.execute(insert(table).values(
                    {k: v for k, v in _row(table).items() if k in columns}))
    return _counts(engine)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables}


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def _differences(engine: Engine) -> list[Any]:
    """What `alembic check` would report between the database and tables.py."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return schema.read_state(conn).current


def _write_sample(versions: Path) -> None:
    (versions / "sample_priority.py").write_text(
        SAMPLE.format(revision=SAMPLE_REVISION, down=schema.head_revision()))


@pytest.fixture
def newer_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The code of a later release: the migrations with the sample revision as head."""
    folder = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    _write_sample(folder / "versions")
    monkeypatch.setattr(schema, "MIGRATIONS", folder)
    schema._script.cache_clear()
    yield
    schema._script.cache_clear()


def _at_baseline(settings: Settings) -> None:
    """A database left at the baseline by the previous release."""
    engine = open_engine(settings)
    with schema.migration_connection(engine) as conn:
        command.upgrade(schema.alembic_config(conn), schema.BASELINE)
    engine.dispose()


def test_head_equals_the_tables(settings: Settings) -> None:
    engine = get_engine(settings)
    assert _revision(engine) == schema.head_revision()
    assert _differences(engine) == []


def test_a_database_from_before_migrations_is_stamped_and_keeps_its_rows(
        settings: Settings) -> None:
    engine = open_engine(settings)
    with schema.migration_connection(engine) as conn:  # the tables start-up made before
        command.upgrade(schema.alembic_config(conn), schema.BASELINE)  # migrations existed
        conn.execute(text("DROP TABLE alembic_version"))
    before = _fill(engine)
    assert all(before.values()) and "alembic_version" not in inspect(engine).get_table_names()
    engine.dispose()
    engine = get_engine(dataclasses.replace(settings, db_auto_upgrade="1"))
    assert _revision(engine) == schema.head_revision()
    assert _counts(engine) == before
    assert _differences(engine) == []


def test_duplicate_open_alerts_are_resolved_before_the_unique_index(settings: Settings) -> None:
    """Before open alerts were unique per rule, two processes could open one each."""
    _at_baseline(settings)
    engine = open_engine(settings)
    now = datetime.now(UTC)
    alert = {"state": "open", "opened_at": now, "updated_at": now, "message": "m", "advice": ""}
    with engine.begin() as conn:
        for rule in ("error_rate", "error_rate", "latency_p95"):
            conn.execute(insert(Base.metadata.tables["alerts"]).values(rule=rule, **alert))
    engine.dispose()
    engine = get_engine(dataclasses.replace(settings, db_auto_upgrade="1"))
    with engine.connect() as conn:
        open_ = conn.execute(text("SELECT rule, id FROM alerts WHERE state = 'open' "
                                  "ORDER BY rule")).all()
    assert open_ == [("error_rate", 2), ("latency_p95", 3)]  # the newest open one stays


def test_ratings_from_before_get_their_predictions_time_and_version(
        settings: Settings) -> None:
    """Revision 7c1d2e3f4a5b copies each rated prediction's time and version onto its
    rating (the Monitoring tab reads ratings per version from the ratings alone)."""
    _at_baseline(settings)
    engine = open_engine(settings)
    before = _fill(engine)
    engine.dispose()
    engine = get_engine(dataclasses.replace(settings, db_auto_upgrade="1"))
    assert _counts(engine) == before
    with engine.connect() as conn:
        copied, original, version, its_version = conn.execute(text(
            "SELECT f.prediction_created_at, p.created_at, f.model_version, p.model_version "
            "FROM feedback f JOIN predictions p ON p.id = f.prediction_id")).one()
    assert copied == original and version == its_version == 1


def test_a_sample_column_migrates_up_and_down(settings: Settings, tmp_path: Path) -> None:
    engine = get_engine(settings)
    before = _fill(engine)
    previous = schema.head_revision()
    versions = tmp_path / "versions"
    shutil.copytree(schema.MIGRATIONS / "versions", versions,
                    ignore=shutil.ignore_patterns("__pycache__"))
    _write_sample(versions)
    with schema.migration_connection(engine) as conn:
        command.upgrade(schema.alembic_config(conn, versions), "head")
    assert "priority" in _columns(engine, "predictions")
    assert _revision(engine) == SAMPLE_REVISION
    assert _counts(engine) == before
    assert [d[0] for d in _differences(engine)] == ["remove_column"]  # the check sees it
    with schema.migration_connection(engine) as conn:
        command.downgrade(schema.alembic_config(conn, versions), previous)
    assert "priority" not in _columns(engine, "predictions")
    # Children of the copied table keep their rows (SQLite: no cascade from the copy).
    assert _counts(engine) == before
    assert _differences(engine) == []


@pytest.mark.usefixtures("newer_code")
def test_an_older_schema_is_refused_unless_upgrades_are_allowed(settings: Settings) -> None:
    _at_baseline(settings)
    refused = dataclasses.replace(settings, db_auto_upgrade="0")
    with pytest.raises(StorageError, match=rf"revision {schema.BASELINE}; .*needs "
                       rf"{SAMPLE_REVISION}.*`python -m classifier db upgrade`"):
        get_engine(refused)
    postgres = not settings.effective_database_url.startswith("sqlite")
    if postgres:  # auto: replicas may start together, so an operator upgrades
        with pytest.raises(StorageError, match="python -m classifier db upgrade"):
            get_engine(settings)
        settings = dataclasses.replace(settings, db_auto_upgrade="1")
    engine = get_engine(settings)
    assert _revision(engine) == SAMPLE_REVISION
    assert "priority" in _columns(engine, "predictions")


@pytest.mark.parametrize(("value", "sqlite", "postgres"),
                         [("auto", True, False), ("1", True, True), ("0", False, False)])
def test_db_auto_upgrade_setting(monkeypatch: pytest.MonkeyPatch, value: str, sqlite: bool,
                                 postgres: bool) -> None:
    monkeypatch.setenv("DB_AUTO_UPGRADE", value)
    assert load_settings().upgrades_schema_at_start is sqlite
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/x")
    assert load_settings().upgrades_schema_at_start is postgres


def test_db_auto_upgrade_refuses_other_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_AUTO_UPGRADE", "sometimes")
    with pytest.raises(ValueError, match="DB_AUTO_UPGRADE='sometimes' is not auto, 1 or 0"):
        load_settings()


def test_concurrent_first_starts_both_come_up(settings: Settings) -> None:
    """Two processes (here: two engines) creating the same fresh database at once."""
    schema._baseline_columns.cache_clear()  # as in a process that just started
    engines = [open_engine(settings) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            schema.upgrade_schema(engine, allow_upgrade=False)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _revision(engines[0]) == schema.head_revision()
    for engine in engines:
        engine.dispose()


def test_a_revision_from_a_newer_release_is_refused(sqlite_settings: Settings) -> None:
    engine = get_engine(sqlite_settings)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe0001'"))
    dispose_engines()
    with pytest.raises(StorageError, match="f00dcafe0001, which this version .* does not know"):
        get_engine(sqlite_settings)


def test_a_database_from_before_migrations_missing_tables_is_refused(
        sqlite_settings: Settings) -> None:
    engine = open_engine(sqlite_settings)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables["predictions"]])
    engine.dispose()
    with pytest.raises(StorageError, match="lacks the tables .*model_versions"):
        get_engine(sqlite_settings)


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    return main(["db", *argv])


@pytest.mark.usefixtures("newer_code")
def test_db_current_and_upgrade(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    _at_baseline(settings)
    assert _cli(settings, monkeypatch, "current") == 1
    out = capsys.readouterr().out
    assert f"Database revision: {schema.BASELINE}" in out
    assert f"This version needs: {SAMPLE_REVISION}" in out
    assert "run `python -m classifier db upgrade`" in out
    assert _cli(settings, monkeypatch, "upgrade") == 0
    assert (f"Upgraded the database schema: {schema.BASELINE} -> {SAMPLE_REVISION}."
            in capsys.readouterr().out)
    assert _cli(settings, monkeypatch, "current") == 0
    assert "Up to date." in capsys.readouterr().out
    assert _cli(settings, monkeypatch, "upgrade") == 0
    assert "is up to date" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.db
def test_db_upgrade_as_an_operator_runs_it(tmp_path: Path) -> None:
    """`python -m classifier db upgrade` in a process of its own, on an empty SQLite folder."""
    done = subprocess.run([sys.executable, "-m", "classifier", "db", "upgrade"], cwd=ROOT,
                          env=app_env(tmp_path / "data"), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"empty -> {schema.head_revision()}" in done.stdout
