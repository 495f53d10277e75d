"""Moving message statuses forward: every move is a compare-and-set on the status.

An UPDATE whose WHERE names the statuses a move may start from (``statuses_before``)
is atomic on both databases: of two concurrent receipts, the one that commits second
re-checks the row it waited for (PostgreSQL) or runs after it (SQLite's one writer),
so a ``delivered`` can never overwrite a ``read``, nor anything a ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.dialect import insert_or
from chat.db.types import utcnow
from chat.domain.enums import MessageStatus, statuses_before
from chat.domain.ids import new_id
from chat.services import work
from chat.services.rows import StatusRow, WorkRow
from chat.services.views import StatusPayload

_messages = cast(Table, m.Message.__table__)
_status_events = cast(Table, m.MessageStatusEvent.__table__)
_horizons = cast(Table, m.ReadHorizon.__table__)
INSERT_STATUSES = insert(_status_events)


class Row(SimpleNamespace):
    """A row's values, accepted by the view functions."""


def status_payload(msg: Any, status: MessageStatus, detail: Any = None) -> StatusPayload:
    """``message.status`` as webhooks, ``notify_url`` and sockets get it; a failure says
    why (the provider's code and message)."""
    payload: StatusPayload = {
        "message_id": msg.id,
        "conversation_id": msg.conversation_id,
        "seq": msg.seq,
        "status": status.value,
        "correlation_id": msg.correlation_id,
        "callback_data": msg.callback_data,
    }
    if status is MessageStatus.FAILED and isinstance(detail, dict):
        payload["error"] = {k: detail.get(k) for k in ("code", "message")}
    return payload


def status_row(message_id: str, status: MessageStatus, detail: Any, now: datetime) -> StatusRow:
    return {"id": new_id("mse"), "message_id": message_id, "status": status.value, "detail": detail, "created_at": now}


async def move(
    conn: AsyncConnection,
    which: ColumnElement[bool],
    status: MessageStatus,
    detail: Any = None,
    *,
    extra: dict[str, Any] | None = None,
) -> list[Row]:
    """Move the messages ``which`` selects to ``status`` where that is a move forward.

    Records each move's history and its ``message.status`` webhooks in the caller's
    transaction; returns the rows that moved (with their new values)."""
    now = utcnow()
    stmt = (
        update(_messages)
        .where(which, _messages.c.status.in_(statuses_before(status)))
        .values(status=status.value, updated_at=now, **(extra or {}))
        .returning(*_messages.c)
    )
    moved = [Row(**r._mapping) for r in await conn.execute(stmt)]
    if not moved:
        return moved
    await conn.execute(INSERT_STATUSES, [status_row(r.id, status, detail, now) for r in moved])
    subs = await work.subscriptions(conn, {r.workspace_id for r in moved})
    rows: list[WorkRow] = []
    for r in moved:
        rows += work.webhook_rows(
            subs, r.workspace_id, r.id, "message.status", status_payload(r, status, detail), r.notify_url
        )
    if rows:
        await conn.execute(work.INSERT_WORK, rows)
    return moved


def status_events(
    moved: Sequence[Row], status: MessageStatus, origin: str | None = None, detail: Any = None
) -> list[DomainEvent]:
    return [
        DomainEvent("message.status", r.workspace_id, status_payload(r, status, detail), origin)
        for r in moved
    ]


async def advance_horizon(
    conn: AsyncConnection, conversation_id: str, reader_type: str, reader_id: str, seq: int
) -> tuple[int, bool]:
    """Move a reader's read horizon forward to ``seq`` (an upsert that only raises it).

    Returns the horizon and whether it moved."""
    key = (
        _horizons.c.conversation_id == conversation_id,
        _horizons.c.participant_type == reader_type,
        _horizons.c.participant_id == reader_id,
    )
    if seq > 0:
        now = utcnow()
        ins = insert_or(conn, _horizons).values(
            conversation_id=conversation_id, participant_type=reader_type,
            participant_id=reader_id, seq=seq, updated_at=now,
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[_horizons.c.conversation_id, _horizons.c.participant_type, _horizons.c.participant_id],
            set_={"seq": ins.excluded.seq, "updated_at": now},
            where=_horizons.c.seq < ins.excluded.seq,
        ).returning(_horizons.c.seq)
        if (await conn.execute(stmt)).first() is not None:
            return seq, True
    current = await conn.scalar(select(_horizons.c.seq).where(*key))
    return int(current or 0), False
