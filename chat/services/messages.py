"""Reading messages and moving their status (never backwards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.enums import Direction, MessageStatus
from chat.domain.errors import Conflict, NotFound, Unprocessable
from chat.services import outbox, statuses
from chat.services.deliveries import delivery_record
from chat.services.statuses import Row
from chat.services.views import (
    ContactMessageView,
    MessageDetail,
    MessageView,
    attempt_view,
    message_view,
    status_event_view,
)


@dataclass(frozen=True)
class Reader:
    """Who acknowledges a conversation: its contact, or an agent of the workspace."""

    type: str  # "contact" | "agent"
    id: str


@dataclass(frozen=True)
class Catchup:
    messages: list[MessageView] | list[ContactMessageView]  # the latter for a contact
    last_seq: int  # every message up to here is in ``messages`` or was before ``after_seq``
    has_more: bool


# What a receipt may say.
_RECEIPTS = (MessageStatus.DELIVERED, MessageStatus.READ)
_messages = cast(Table, m.Message.__table__)

def contact_message_view(view: MessageView) -> ContactMessageView:
    """A message as its contact's devices see it: without the fields only the workspace
    sees (``correlation_id``, ``callback_data``: server-to-server data)."""
    theirs = view["author"]["type"] == "contact"
    return {
        "id": view["id"],
        "conversation_id": view["conversation_id"],
        "seq": view["seq"],
        "direction": view["direction"],
        "author": view["author"],
        "content": view["content"],
        "status": view["status"],
        "private": view["private"],
        # Another party's idempotency key is theirs.
        "client_message_id": view["client_message_id"] if theirs else None,
        "send_at": view["send_at"],
        "created_at": view["created_at"],
    }


class Messages:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def get(self, workspace_id: str, message_id: str) -> MessageDetail:
        async with self.db.read() as session:
            msg = await _owned(session, workspace_id, message_id)
            history = (
                await session.scalars(
                    select(m.MessageStatusEvent)
                    .where(m.MessageStatusEvent.message_id == msg.id)
                    .order_by(m.MessageStatusEvent.id)
                )
            ).all()
            attempts = (
                await session.scalars(
                    select(m.DeliveryAttempt)
                    .where(m.DeliveryAttempt.message_id == msg.id)
                    .order_by(m.DeliveryAttempt.id)
                )
            ).all()
            delivery = await delivery_record(session, msg.id)
        return {
            **message_view(msg),
            "status_history": [status_event_view(e) for e in history],
            "delivery": delivery,
            "delivery_attempts": [attempt_view(a) for a in attempts],
        }

    async def catch_up(
        self,
        workspace_id: str,
        conversation_id: str,
        after_seq: int,
        limit: int = 500,
        *,
        contact_id: str | None = None,
    ) -> Catchup:
        """Messages after ``after_seq`` in seq order (a resync). For a contact: only their
        conversation, without private notes, in the contact's view."""
        async with self.db.read() as session:
            conv = await session.get(m.Conversation, conversation_id)
            if (
                conv is None
                or conv.workspace_id != workspace_id
                or (contact_id is not None and conv.contact_id != contact_id)
            ):
                raise NotFound("conversation not found")
            # Read the horizon first: every seq up to it is committed, so nothing that
            # commits meanwhile can fall between this answer and the next live event.
            horizon = conv.last_seq
            query = (
                select(m.Message)
                .where(
                    m.Message.conversation_id == conversation_id,
                    m.Message.seq > after_seq,
                    m.Message.seq <= horizon,
                )
                .order_by(m.Message.seq)
                .limit(limit + 1)
            )
            if contact_id is not None:
                query = query.where(m.Message.private.is_(False))
            rows = (await session.scalars(query)).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
        views = [message_view(r) for r in rows]
        last = (rows[-1].seq or 0) if has_more else max(horizon, after_seq)
        if contact_id is not None:
            return Catchup([contact_message_view(v) for v in views], last, has_more)
        return Catchup(views, last, has_more)

    async def acknowledge(
        self,
        workspace_id: str,
        conversation_id: str,
        reader: Reader,
        seq: int,
        status: MessageStatus,
        *,
        origin: str | None = None,
    ) -> int:
        """``reader`` got (``delivered``) or read (``read``) the other side's messages up to
        ``seq``.

        Moves those messages forward (never backwards; private notes never move), and
        for ``read`` advances the reader's read horizon and publishes
        ``conversation.read``. A contact may only acknowledge their own conversation.
        Returns the acknowledged seq (for ``read``: the reader's horizon).
        """
        if status not in _RECEIPTS:
            raise Unprocessable("a receipt is delivered or read", code="invalid_status")
        for attempt in (1, 2):  # two first reads of one reader may race to create the horizon
            try:
                moved, seq, advanced, contact_id = await self._acknowledge(
                    workspace_id, conversation_id, reader, seq, status
                )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        events = statuses.status_events(moved, status, origin)
        if advanced:
            events.append(
                DomainEvent(
                    "conversation.read",
                    workspace_id,
                    {
                        "conversation_id": conversation_id,
                        "contact_id": contact_id,
                        "reader": {"type": reader.type, "id": reader.id},
                        "seq": seq,
                    },
                    origin,
                )
            )
        if moved:
            self.bus.outbox_written()
        await self.bus.publish(events)
        return seq

    async def _acknowledge(
        self,
        workspace_id: str,
        conversation_id: str,
        reader: Reader,
        seq: int,
        status: MessageStatus,
    ) -> tuple[list[Row], int, bool, str]:
        # A contact acknowledges what the workspace sent, an agent what the contact sent.
        direction = Direction.OUTBOUND if reader.type == "contact" else Direction.INBOUND
        async with self.db.write() as session:
            conv = await session.get(m.Conversation, conversation_id)
            if (
                conv is None
                or conv.workspace_id != workspace_id
                or (reader.type == "contact" and conv.contact_id != reader.id)
            ):
                raise NotFound("conversation not found")
            seq = max(0, min(seq, conv.last_seq))
            conn = await session.connection()
            moved = await statuses.move(
                conn,
                and_(
                    _messages.c.conversation_id == conversation_id,
                    _messages.c.direction == direction.value,
                    _messages.c.private.is_(False),
                    _messages.c.seq <= seq,
                ),
                status,
                {"by": {"type": reader.type, "id": reader.id}},
            )
            moved.sort(key=lambda r: r.seq)
            advanced = False
            if status is MessageStatus.READ:
                seq, advanced = await statuses.advance_horizon(
                    conn, conversation_id, reader.type, reader.id, seq
                )
            return moved, seq, advanced, conv.contact_id

    async def set_status(
        self,
        workspace_id: str,
        message_id: str,
        status: MessageStatus,
        detail: Any = None,
        origin: str | None = None,
    ) -> bool:
        """Move a message to ``status``; a move backwards is ignored. True if it moved."""
        async with self.db.write() as session:
            await _owned(session, workspace_id, message_id)
            moved = await statuses.move(
                await session.connection(), _messages.c.id == message_id, status, detail
            )
        if moved:
            self.bus.outbox_written()
            await self.bus.publish(statuses.status_events(moved, status, origin))
        return bool(moved)

    async def cancel(self, workspace_id: str, message_id: str) -> MessageView:
        """Cancel a scheduled message. A compare-and-set on ``scheduled``: of a cancel and
        the release racing it, exactly one wins (the release locks the row first)."""
        async with self.db.write() as session:
            await _owned(session, workspace_id, message_id)
            conn = await session.connection()
            moved = await statuses.move(conn, _messages.c.id == message_id, MessageStatus.CANCELLED)
            if not moved:
                current = await conn.scalar(select(_messages.c.status).where(_messages.c.id == message_id))
                raise Conflict(
                    f"only a scheduled message can be cancelled; this one is {current}",
                    code="not_scheduled",
                )
            await session.execute(
                update(m.OutboxEntry)
                .where(m.OutboxEntry.ref_id == message_id, m.OutboxEntry.kind == outbox.RELEASE)
                .values(state="cancelled")
            )
        self.bus.outbox_written()
        await self.bus.publish(statuses.status_events(moved, MessageStatus.CANCELLED))
        return message_view(moved[0])


async def _owned(session: AsyncSession, workspace_id: str, message_id: str) -> m.Message:
    msg = await session.get(m.Message, message_id)
    if msg is None or msg.workspace_id != workspace_id:
        raise NotFound("message not found")
    return msg
