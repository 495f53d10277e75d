from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone).

    On SQLite the value is stored as SQLAlchemy's own ``YYYY-MM-DD HH:MM:SS.ffffff``
    text, converted here in one step instead of two (the rows of a group commit share
    one timestamp, so the last conversion is also remembered)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        last: list[Any] = [None, None]

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value is last[0]:
                return str(last[1])
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            v = value.astimezone(UTC)
            text = f"{v:%Y-%m-%d %H:%M:%S}.{v.microsecond:06d}"
            last[0], last[1] = value, text
            return text

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


def utcnow() -> datetime:
    return datetime.now(UTC)
