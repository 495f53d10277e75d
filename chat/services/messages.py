"""Reading messages and moving their status (never backwards)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import MessageStatus, status_can_move
from chat.domain.errors import Conflict, NotFound
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.conversations import status_payload
from chat.services.views import attempt_view, message_view, status_event_view


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
