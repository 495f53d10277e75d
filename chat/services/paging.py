"""Cursor pagination over time-sortable ids: newest first, the cursor is the last id seen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")


async def page(
    session: AsyncSession,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
    view: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    if cursor:
        query = query.where(id_column < cursor)
    rows: Sequence[Any] = (await session.scalars(query.order_by(id_column.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [view(r) for r in rows],
        "next_cursor": rows[-1].id if more and rows else None,
    }
