"""Rows for outbound messages waiting in the outbox, as the write path leaves them.

The delivery tests start from the stored state (a provider channel, a contact with an
address on it, a ``queued`` message and its ``deliver`` entry) so that they prove the
worker and the handler, whatever path wrote the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.ids import new_id
from chat.services import outbox
from tests.fakes.provider import TOKEN

CHANNEL_TYPE = "telegram"


@dataclass(frozen=True)
class Queued:
    message_id: str
    conversation_id: str
    contact_id: str
    address: str


async def provider_channel(db: Database, workspace_id: str, api_base_url: str) -> str:
    async with db.write() as s:
        channel = m.Channel(
            id=new_id("ch"),
            workspace_id=workspace_id,
            type=CHANNEL_TYPE,
            name="Fake provider",
            config={"bot_token": TOKEN, "secret_token": "s3cret", "api_base_url": api_base_url},
        )
        s.add(channel)
    return channel.id


async def queued_message(
    db: Database,
    workspace_id: str,
    channel_id: str,
    address: str,
    text: str = "hello",
    *,
    notify_url: str | None = None,
    contact_id: str | None = None,
    to: str | None = None,
) -> Queued:
    """A queued outbound message to a contact with ``address`` (or to ``contact_id``'s
    addresses; ``to`` when the sender named one of them)."""
    async with db.write() as s:
        if contact_id is None:
            contact_id = new_id("ct")
            s.add(m.Contact(id=contact_id, workspace_id=workspace_id, attributes={}))
            await s.flush()
            s.add(
                m.ContactIdentity(
                    id=new_id("idn"),
                    workspace_id=workspace_id,
                    contact_id=contact_id,
                    channel_type=CHANNEL_TYPE,
                    address=address,
                )
            )
        # One open conversation per contact and channel (a unique index says so).
        conv = await s.scalar(
            select(m.Conversation).where(
                m.Conversation.contact_id == contact_id,
                m.Conversation.channel_id == channel_id,
                m.Conversation.status != "resolved",
            )
        )
        if conv is None:
            conv = m.Conversation(
                id=new_id("cv"),
                workspace_id=workspace_id,
                contact_id=contact_id,
                channel_id=channel_id,
                channel_type=CHANNEL_TYPE,
                last_seq=0,
            )
            s.add(conv)
        conv.last_seq += 1
        await s.flush()
        msg = m.Message(
            id=new_id("msg"),
            workspace_id=workspace_id,
            conversation_id=conv.id,
            seq=conv.last_seq,
            direction="outbound",
            author_type="agent",
            content={"type": "text", "text": text},
            status="queued",
            notify_url=notify_url,
        )
        s.add(msg)
        await s.flush()
        s.add(m.MessageStatusEvent(id=new_id("mse"), message_id=msg.id, status="queued"))
        outbox.enqueue_delivery(
            s, workspace_id=workspace_id, message_id=msg.id, channel_id=channel_id, address=to
        )
    return Queued(msg.id, conv.id, contact_id, address)


async def message_status(db: Database, message_id: str) -> str:
    async with db.read() as s:
        msg = await s.get(m.Message, message_id)
        assert msg is not None
        return msg.status


async def status_history(db: Database, message_id: str) -> list[tuple[str, Any]]:
    async with db.read() as s:
        rows = (
            await s.scalars(
                select(m.MessageStatusEvent)
                .where(m.MessageStatusEvent.message_id == message_id)
                .order_by(m.MessageStatusEvent.id)
            )
        ).all()
    return [(r.status, r.detail) for r in rows]


async def webhook_statuses(db: Database, message_id: str) -> list[str]:
    """The ``message.status`` webhook rows queued for a message, in order."""
    async with db.read() as s:
        rows = (
            await s.scalars(
                select(m.OutboxEntry)
                .where(m.OutboxEntry.ref_id == message_id, m.OutboxEntry.kind == outbox.WEBHOOK)
                .order_by(m.OutboxEntry.id)
            )
        ).all()
    return [
        r.payload["body"]["data"]["status"]
        for r in rows
        if r.payload["body"]["type"] == "message.status"
    ]
