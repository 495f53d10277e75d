"""Outbox handler: a scheduled message whose time has come goes out."""

from __future__ import annotations

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.enums import ChannelType, MessageStatus
from chat.services import outbox
from chat.services.messages import record_status
from chat.services.views import conversation_view, message_view
from connectors.errors import GiveUp


class ReleaseScheduled:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def __call__(self, entry: m.OutboxEntry) -> None:
        async with self.db.write() as session:
            msg = await session.get(m.Message, entry.payload["message_id"])
            if msg is None:
                raise GiveUp("message removed")
            if msg.status != MessageStatus.SCHEDULED:
                return  # cancelled meanwhile
            conv = await session.get(m.Conversation, msg.conversation_id)
            assert conv is not None
            if conv.channel_type == ChannelType.INAPP:
                await record_status(session, msg, MessageStatus.SENT, None)
            else:
                await record_status(session, msg, MessageStatus.QUEUED, None)
                outbox.enqueue(
                    session,
                    workspace_id=msg.workspace_id,
                    kind=outbox.DELIVER,
                    ref_id=msg.id,
                    payload={"message_id": msg.id},
                )
            event = DomainEvent(
                "message.created",
                msg.workspace_id,
                {"message": message_view(msg), "conversation": conversation_view(conv)},
            )
        self.bus.outbox_written()
        await self.bus.publish([event])
