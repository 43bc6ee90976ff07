"""Portable SQL functions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class epoch_seconds(FunctionElement[int]):  # noqa: N801 - reads like the SQL function it is
    """Whole seconds since 1970-01-01 UTC of a naive-UTC timestamp column."""

    type = BigInteger()
    inherit_cache = True


class floor_int(FunctionElement[int]):  # noqa: N801
    """Floor of a non-negative number as an integer (PostgreSQL's CAST rounds instead)."""

    type = BigInteger()
    inherit_cache = True


def _arg(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # strftime('%s') truncates exactly like the time comparisons do; julianday() would be
    # faster but its floating point can move a row across a bucket edge.
    return f"CAST(strftime('%s', {_arg(element, compiler, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {_arg(element, compiler, **kw)})) AS BIGINT)"


@compiles(floor_int, "sqlite")
def _floor_sqlite(element: floor_int, compiler: Any, **kw: Any) -> str:
    # CAST truncates toward zero, which is the floor for the non-negative values we pass.
    return f"CAST({_arg(element, compiler, **kw)} AS INTEGER)"


@compiles(floor_int, "postgresql")
def _floor_postgresql(element: floor_int, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({_arg(element, compiler, **kw)}) AS BIGINT)"
