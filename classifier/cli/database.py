"""`python -m classifier db`: the database schema's revision, and upgrading it.

    python -m classifier db current             # the database's revision and this code's
    python -m classifier db upgrade             # to this code's revision, once for all replicas
    python -m classifier db revision -m "..."   # developers: a new migration from tables.py

They open the database without the start-up check, so they work on a database the app
refuses (DB_AUTO_UPGRADE=0, or auto on PostgreSQL).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from feedback import schema
from feedback.db import describe_db_error, describe_storage, open_engine
from feedback.errors import StorageError
from feedback.settings import Settings

COMMANDS = frozenset({"db"})
T = TypeVar("T")


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="the database schema: its revision, upgrades, migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("current", help="print the database's schema revision and the one this "
                      "version needs (exit status 1 when they differ)")
    db_sub.add_parser("upgrade", help="upgrade the database schema to this version")
    revision = db_sub.add_parser("revision", help="developers: write a new migration from the "
                                 "changes in feedback/tables.py")
    revision.add_argument("-m", "--message", required=True, help="what the migration does")


def _with_engine(settings: Settings, action: Callable[[Engine], T]) -> T:
    engine = open_engine(settings)
    try:
        return action(engine)
    except SQLAlchemyError as exc:
        raise StorageError(f"Cannot open the database: {describe_db_error(exc)}") from exc
    finally:
        engine.dispose()


def _read_state(engine: Engine) -> schema.SchemaState:
    with engine.connect() as conn:
        return schema.read_state(conn)


def _current(settings: Settings) -> int:
    state = _with_engine(settings, _read_state)
    print(f"Database: {describe_storage(settings).location}")
    if state.legacy:
        current = "none (tables made before migrations; start-up or `db upgrade` stamps them)"
    else:
        current = state.current or "none (empty database)"
    print(f"Database revision: {current}")
    print(f"This version needs: {state.head}")
    if state.up_to_date:
        print("Up to date.")
        return 0
    print(f"Not up to date: run `{schema.UPGRADE_COMMAND}`.")
    return 1


def _upgrade(settings: Settings) -> int:
    found, now = _with_engine(
        settings, lambda engine: schema.upgrade_schema(engine, allow_upgrade=True))
    if found.up_to_date:
        print(f"The database schema is up to date (revision {now}).")
    else:
        before = "made before migrations" if found.legacy else found.current or "empty"
        print(f"Upgraded the database schema: {before} -> {now}.")
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_command == "current":
        return _current(settings)
    if args.db_command == "upgrade":
        return _upgrade(settings)
    path = schema.generate_revision(args.message)
    print(f"Wrote {path}. Review it (autogenerate misses renames and data changes), run "
          "the tests, then commit it.")
    return 0
