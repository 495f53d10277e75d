"""What differs between SQLite and PostgreSQL statements: the INSERT with ON CONFLICT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_or(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT for ``table`` that can take ``on_conflict_do_nothing/do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
