"""Cursor pagination: over time-sortable ids (newest first, the cursor is the last id
seen), or over (a timestamp, an id) where rows share timestamps."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from chat.domain.errors import Unprocessable
from chat.services.views import Page

T = TypeVar("T")


async def page(
    session: AsyncSession,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
    view: Callable[[Any], T],
) -> Page[T]:
    if cursor:
        query = query.where(id_column < cursor)
    rows: Sequence[Any] = (await session.scalars(query.order_by(id_column.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [view(r) for r in rows],
        "next_cursor": rows[-1].id if more and rows else None,
    }


class ActivityCursor:
    """A cursor on (a timestamp, an id), for lists sorted by a time that rows may share:
    ``<microseconds since the epoch>.<id>``. Clients treat it as opaque."""

    PATTERN = r"^\d{1,17}\.[A-Za-z0-9_]{1,60}$"

    @staticmethod
    def of(at: datetime, row_id: str) -> str:
        micros = (at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{row_id}"

    @staticmethod
    def parse(cursor: str) -> tuple[datetime, str]:
        if not re.match(ActivityCursor.PATTERN, cursor):
            raise Unprocessable("not a cursor from this list", code="invalid_cursor")
        micros, _, row_id = cursor.partition(".")
        return _EPOCH + timedelta(microseconds=int(micros)), row_id


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
