"""Alembic's entry point: runs the revisions on the connection feedback.schema hands over
(the app's own engine, so SQLite pragmas and PostgreSQL timeouts apply), inside the
transaction that holds the migration lock."""

from typing import Any, Literal

from alembic import context
from sqlalchemy import TypeDecorator

from feedback.tables import Base


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | Literal[False]:
    """Render a TypeDecorator column as its stored type, so that revisions never import
    app code that may change later (UTCDateTime is a DATETIME in the database)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Run migrations with `python -m classifier db upgrade`, not alembic.")
# Batch operations: SQLite cannot alter most of a table in place, so revisions copy it.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  render_item=_render_item, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
