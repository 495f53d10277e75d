"""Statements written once per dialect and run with many rows on the driver.

The write path inserts a group's messages, statuses and outbox rows, and moves its
conversations, with one statement each. Through SQLAlchemy Core every row's every value
passes its type's bind processor and the statement's parameter bookkeeping: measured on
the group commit, that cost more CPU than SQLite itself. Here a statement's SQL text is
built once from the table, each column gets one plain converter (a datetime to SQLite's
stored text, JSON to text), and the rows go to the driver through ``exec_driver_sql``, in
the caller's transaction: on SQLite to ``executemany`` of a ``?`` statement; on
PostgreSQL as one array per column to a single statement over ``unnest`` (one Bind and one
execution for the whole group, instead of a multi-row VALUES compiled per group size or
one execution per row).

What is stored is exactly what SQLAlchemy would store: the same datetime text on SQLite
(``chat.db.types.UTCDateTime``), JSON ``null`` for a ``None`` in a JSON column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.db.types import UTCDateTime
from chat.domain import jsontext

Convert = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"


def _pg_time(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _json(value: Any) -> str:
    return jsontext.dumps(value)


class _Times:
    """Datetime to SQLite text, remembering the last one: a group's rows share ``now``."""

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.text: str | None = None

    def __call__(self, value: datetime | None) -> str | None:
        if value is self.last and value is not None:
            return self.text
        self.last, self.text = value, _sqlite_time(value)
        return self.text


def _converter(column_type: Any, dialect: str) -> Convert | None:
    if isinstance(column_type, UTCDateTime):
        return _Times() if dialect == "sqlite" else _pg_time
    if isinstance(column_type, JSON):
        return _json
    return None


def _pg_array(column_type: Any) -> str:
    """The array type a column's values travel in (JSON as text, cast in the statement)."""
    if isinstance(column_type, UTCDateTime):
        return "timestamptz[]"
    if isinstance(column_type, Integer):
        return "int8[]"
    if isinstance(column_type, Boolean):
        return "bool[]"
    return "text[]"


def _pg_sql(table: Table, columns: Sequence[str], key: str | None, first: int = 1) -> str:
    names = [*columns, *([key] if key else [])]
    arrays = ", ".join(f"${n}::{_pg_array(table.c[c].type)}" for n, c in enumerate(names, first))
    source = f"unnest({arrays}) AS v({', '.join(names)})"

    def value(c: str) -> str:
        cast_to = "::json" if isinstance(table.c[c].type, JSON) else ""
        return f"v.{c}{cast_to}"

    if key is None:
        return f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(map(value, columns))} FROM {source}"
    sets = ", ".join(f"{c} = {value(c)}" for c in columns)
    return f"UPDATE {table.name} AS t SET {sets} FROM {source} WHERE t.{key} = v.{key}"


class BulkStatement:
    """One INSERT or keyed UPDATE of ``table``, with its SQL per dialect."""

    def __init__(self, table: Table, columns: Sequence[str], key: str | None = None) -> None:
        """An INSERT of ``columns``; with ``key``, an UPDATE setting ``columns`` where
        ``key`` equals the row's value (passed last)."""
        self.table = table
        self.columns = tuple(columns)
        self.key = key
        self.names = (*self.columns, *((key,) if key else ()))
        self._sqlite_sql = self._sqlite()
        self._converts: dict[str, list[tuple[int, Convert]]] = {}

    def _sqlite(self) -> str:
        if self.key is None:
            marks = ", ".join("?" for _ in self.names)
            return f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) VALUES ({marks})"
        sets = ", ".join(f"{c} = ?" for c in self.columns)
        return f"UPDATE {self.table.name} SET {sets} WHERE {self.key} = ?"

    def pg_sql(self, first: int = 1) -> str:
        """The PostgreSQL statement, its arrays numbered from ``first``."""
        return _pg_sql(self.table, self.columns, self.key, first)

    def params(self, dialect: str, rows: Rows) -> list[tuple[Any, ...]]:
        """Each row's values in statement order, converted for the driver."""
        converts = self._converts.get(dialect)
        if converts is None:
            converts = self._converts[dialect] = [
                (i, convert)
                for i, name in enumerate(self.names)
                if (convert := _converter(self.table.c[name].type, dialect)) is not None
            ]
        out: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[n] for n in self.names] if isinstance(row, Mapping) else list(row)
            for i, convert in converts:
                values[i] = convert(values[i])
            out.append(tuple(values))
        return out

    async def run(self, conn: AsyncConnection, rows: Rows) -> None:
        """Execute for every row: a mapping by column name, or a tuple in column order
        (the key last)."""
        await run_together(conn, [(self, rows)])


Rows = Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]

# PostgreSQL statements that run several bulk statements as one, by which ones have rows.
_TOGETHER: dict[tuple[int, ...], str] = {}


async def run_together(conn: AsyncConnection, parts: Sequence[tuple[BulkStatement, Rows]]) -> None:
    """Run bulk statements in order, each with its rows (skipped when it has none).

    On PostgreSQL they are one statement (all but the last as data-modifying WITH
    clauses): one round trip for a whole group's writes. Foreign keys are checked at
    the statement's end, so a row may refer to one inserted by an earlier part."""
    parts = [(stmt, rows) for stmt, rows in parts if rows]
    if not parts:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for stmt, rows in parts:
            await conn.exec_driver_sql(stmt._sqlite_sql, stmt.params(dialect, rows))
        return
    key = tuple(id(stmt) for stmt, _ in parts)
    sql = _TOGETHER.get(key)
    if sql is None:
        pieces, first = [], 1
        for stmt, _ in parts:
            pieces.append(stmt.pg_sql(first))
            first += len(stmt.names)
        *before, last = pieces
        sql = _TOGETHER[key] = (
            "WITH " + ", ".join(f"w{n} AS ({p})" for n, p in enumerate(before)) + " " + last if before else last
        )
    arrays: list[list[Any]] = []
    for stmt, rows in parts:
        arrays += [list(column) for column in zip(*stmt.params(dialect, rows), strict=True)]
    await conn.exec_driver_sql(sql, tuple(arrays))
