"""Reading messages and moving their status (never backwards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import Direction, MessageStatus, status_can_move
from chat.domain.errors import Conflict, NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.conversations import status_payload
from chat.services.views import attempt_view, message_view, status_event_view


@dataclass(frozen=True)
class Reader:
    """Who acknowledges a conversation: its contact, or an agent of the workspace."""

    type: str  # "contact" | "agent"
    id: str


@dataclass(frozen=True)
class Catchup:
    messages: list[dict[str, Any]]
    last_seq: int  # every message up to here is in ``messages`` or was before ``after_seq``
    has_more: bool


# What a receipt may move, per target status: a scheduled message has not gone out yet.
_MOVABLE = {
    MessageStatus.DELIVERED: (MessageStatus.QUEUED.value, MessageStatus.SENT.value),
    MessageStatus.READ: (
        MessageStatus.QUEUED.value,
        MessageStatus.SENT.value,
        MessageStatus.DELIVERED.value,
    ),
}

# Fields of a message that only the workspace sees (server-to-server data).
_INTERNAL_FIELDS = ("correlation_id", "callback_data")


def contact_message_view(view: dict[str, Any]) -> dict[str, Any]:
    """A message as its contact's devices see it."""
    shown = {k: v for k, v in view.items() if k not in _INTERNAL_FIELDS}
    if view.get("author", {}).get("type") != "contact":
        shown["client_message_id"] = None  # another party's idempotency key is theirs
    return shown


class Messages:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def get(self, workspace_id: str, message_id: str) -> dict[str, Any]:
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
        return {
            **message_view(msg),
            "status_history": [status_event_view(e) for e in history],
            "delivery_attempts": [attempt_view(a) for a in attempts],
        }

    async def history(
        self, workspace_id: str, conversation_id: str, after_seq: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            conv = await session.get(m.Conversation, conversation_id)
            if conv is None or conv.workspace_id != workspace_id:
                raise NotFound("conversation not found")
            rows = (
                await session.scalars(
                    select(m.Message)
                    .where(m.Message.conversation_id == conversation_id, m.Message.seq > after_seq)
                    .order_by(m.Message.seq)
                    .limit(limit)
                )
            ).all()
        return [message_view(r) for r in rows]

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
        if contact_id is not None:
            views = [contact_message_view(v) for v in views]
        last = rows[-1].seq if has_more else max(horizon, after_seq)
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
        if status not in _MOVABLE:
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
        events = [
            DomainEvent("message.status", workspace_id, status_payload(msg, status), origin)
            for msg in moved
        ]
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
    ) -> tuple[list[m.Message], int, bool, str]:
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
            rows = (
                await session.scalars(
                    select(m.Message)
                    .where(
                        m.Message.conversation_id == conversation_id,
                        m.Message.direction == direction.value,
                        m.Message.private.is_(False),
                        m.Message.seq <= seq,
                        m.Message.status.in_(_MOVABLE[status]),
                    )
                    .order_by(m.Message.seq)
                )
            ).all()
            detail = {"by": {"type": reader.type, "id": reader.id}}
            moved = [msg for msg in rows if await record_status(session, msg, status, detail)]
            advanced = False
            if status is MessageStatus.READ:
                seq, advanced = await advance_horizon(session, conversation_id, reader, seq)
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
            msg = await _owned(session, workspace_id, message_id)
            moved = await record_status(session, msg, status, detail)
        if moved:
            self.bus.outbox_written()
            await self.bus.publish(
                [DomainEvent("message.status", workspace_id, status_payload(msg, status), origin)]
            )
        return moved

    async def cancel(self, workspace_id: str, message_id: str) -> dict[str, Any]:
        async with self.db.write() as session:
            msg = await _owned(session, workspace_id, message_id)
            if msg.status != MessageStatus.SCHEDULED:
                raise Conflict(
                    f"only a scheduled message can be cancelled; this one is {msg.status}",
                    code="not_scheduled",
                )
            await record_status(session, msg, MessageStatus.CANCELLED, None)
            await session.execute(
                update(m.OutboxEntry)
                .where(m.OutboxEntry.ref_id == msg.id, m.OutboxEntry.kind == outbox.RELEASE)
                .values(state="cancelled")
            )
        self.bus.outbox_written()
        await self.bus.publish(
            [DomainEvent("message.status", workspace_id, status_payload(msg, MessageStatus.CANCELLED))]
        )
        return message_view(msg)


async def _owned(session: AsyncSession, workspace_id: str, message_id: str) -> m.Message:
    msg = await session.get(m.Message, message_id)
    if msg is None or msg.workspace_id != workspace_id:
        raise NotFound("message not found")
    return msg


async def advance_horizon(
    session: AsyncSession, conversation_id: str, reader: Reader, seq: int
) -> tuple[int, bool]:
    """Within a transaction: move a read horizon forward. The horizon, and whether it moved."""
    key = (conversation_id, reader.type, reader.id)
    horizon = await session.get(m.ReadHorizon, key)
    if horizon is None:
        horizon = m.ReadHorizon(
            conversation_id=conversation_id,
            participant_type=reader.type,
            participant_id=reader.id,
            seq=0,
        )
        session.add(horizon)
    if seq > horizon.seq:
        horizon.seq = seq
        return seq, True
    return horizon.seq, False


async def record_status(
    session: AsyncSession, msg: m.Message, status: MessageStatus, detail: Any
) -> bool:
    """Within a transaction: move, record history, enqueue webhooks. False if not a move."""
    if not status_can_move(MessageStatus(msg.status), status):
        return False
    msg.status = status.value
    msg.updated_at = utcnow()
    session.add(
        m.MessageStatusEvent(id=new_id("mse"), message_id=msg.id, status=status.value, detail=detail)
    )
    await outbox.enqueue_webhooks(
        session,
        msg.workspace_id,
        "message.status",
        status_payload(msg, status),
        message_id=msg.id,
        notify_url=msg.notify_url,
    )
    return True
