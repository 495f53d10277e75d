"""The conversation service: every message of every channel passes through here.

``post_messages`` resolves the conversation, assigns the next ``seq``, stores the
message, its first status and its outbox work in one transaction, then publishes
the events after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import ChannelType, ConversationStatus, Direction, MessageStatus
from chat.domain.errors import BadRequest, NotFound
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.message_store import (
    GroupCommit,
    message_values,
    same_author,
    store_group,
    taken_key,
)
from chat.services.views import conversation_view, message_view


@dataclass(frozen=True)
class NewMessage:
    workspace_id: str
    content: dict[str, Any]
    direction: Direction
    author_type: str
    author_id: str | None = None
    # Either an existing conversation, or a contact and a channel to find or open one.
    conversation_id: str | None = None
    contact_id: str | None = None
    channel_id: str | None = None
    client_message_id: str | None = None
    correlation_id: str | None = None
    callback_data: Any = None
    notify_url: str | None = None
    send_at: datetime | None = None
    private: bool = False
    origin: str | None = None  # e.g. the socket id that sent it


@dataclass(frozen=True)
class Posted:
    message: dict[str, Any]
    conversation: dict[str, Any]
    created: bool  # False when a client_message_id repeat returned the first message
    events: list[DomainEvent] = field(default_factory=list)
    queued_work: bool = False  # outbox rows were written (the worker needs waking)


BatchBuilder = Callable[[AsyncSession], Awaitable[Sequence[NewMessage]]]


class Conversations:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self._group = GroupCommit(db, self._store_group, self._store_alone)

    async def post_message(self, new: NewMessage) -> Posted:
        """Store one message (joining a group commit with concurrent posts), then publish."""
        result = await self._group.submit(new)
        if isinstance(result, Exception):
            raise result
        await self._after_commit([result])
        return result

    async def post_messages(self, batch: Sequence[NewMessage]) -> list[Posted]:
        """Store a batch in one transaction (all or nothing), then publish."""

        async def given(_session: AsyncSession) -> Sequence[NewMessage]:
            return batch

        return await self.transact(given)

    async def transact(self, build: BatchBuilder) -> list[Posted]:
        """Build a batch inside the write transaction (e.g. resolving contacts) and store it.

        ``build`` may run twice: when a concurrent repeat of a client_message_id wins
        the race, the transaction rolls back whole and runs again, and then every
        repeat finds its first message.
        """
        results = await self._store_atomic(build)
        await self._after_commit(results)
        return results

    async def _store_atomic(self, build: BatchBuilder) -> list[Posted]:
        for attempt in (1, 2):
            try:
                async with self.db.write() as session:
                    batch = await build(session)
                    return [await self._store(session, new) for new in batch]
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _after_commit(self, results: Sequence[Posted]) -> None:
        if any(p.queued_work for p in results):
            self.bus.outbox_written()
        for posted in results:
            await self.bus.publish(posted.events)

    async def _store_group(self, items: Sequence[NewMessage]) -> list[Posted | Exception]:
        async with self.db.write() as session:
            return await store_group(
                session, items, self._conversation_for, _initial_status, status_payload, _posted
            )

    async def _store_alone(self, new: NewMessage) -> Posted:
        async def given(_session: AsyncSession) -> Sequence[NewMessage]:
            return [new]

        return (await self._store_atomic(given))[0]

    async def _store(self, session: AsyncSession, new: NewMessage) -> Posted:
        if new.client_message_id:
            existing = await session.scalar(
                select(m.Message).where(
                    m.Message.workspace_id == new.workspace_id,
                    m.Message.client_message_id == new.client_message_id,
                )
            )
            if existing is not None:
                if not same_author(existing, new):
                    raise taken_key()
                conv = await session.get(m.Conversation, existing.conversation_id)
                assert conv is not None
                return Posted(message_view(existing), conversation_view(conv), created=False)

        events: list[DomainEvent] = []
        conv = await self._conversation_for(session, new, events)
        now = utcnow()
        seq = await session.scalar(
            update(m.Conversation)
            .where(m.Conversation.id == conv.id)
            .values(last_seq=m.Conversation.last_seq + 1, last_message_at=now, updated_at=now)
            .returning(m.Conversation.last_seq)
        )
        assert seq is not None
        conv.last_seq, conv.last_message_at, conv.updated_at = seq, now, now

        status = _initial_status(new, conv.channel_type)
        msg = m.Message(**message_values(new, conv.id, seq, status, now))
        session.add(msg)
        session.add(m.MessageStatusEvent(id=new_id("mse"), message_id=msg.id, status=status.value))
        await session.flush()

        view = message_view(msg)
        await outbox.enqueue_webhooks(
            session, new.workspace_id, "message.created", {"message": view}, message_id=msg.id
        )
        await outbox.enqueue_webhooks(
            session,
            new.workspace_id,
            "message.status",
            status_payload(msg, status),
            message_id=msg.id,
            notify_url=new.notify_url,
        )
        if status is MessageStatus.SCHEDULED:
            outbox.enqueue(
                session,
                workspace_id=new.workspace_id,
                kind=outbox.RELEASE,
                ref_id=msg.id,
                payload={"message_id": msg.id},
                due_at=new.send_at,
            )
        elif status is MessageStatus.QUEUED:
            outbox.enqueue(
                session,
                workspace_id=new.workspace_id,
                kind=outbox.DELIVER,
                ref_id=msg.id,
                payload={"message_id": msg.id},
            )
        conv_view = conversation_view(conv)
        if status is not MessageStatus.SCHEDULED:
            events.append(
                DomainEvent(
                    "message.created",
                    new.workspace_id,
                    {"message": view, "conversation": conv_view},
                    origin=new.origin,
                )
            )
        return Posted(view, conv_view, created=True, events=events, queued_work=True)

    async def _conversation_for(
        self, session: AsyncSession, new: NewMessage, events: list[DomainEvent]
    ) -> m.Conversation:
        if new.conversation_id:
            conv = await session.get(m.Conversation, new.conversation_id)
            if (
                conv is None
                or conv.workspace_id != new.workspace_id
                or (new.contact_id is not None and conv.contact_id != new.contact_id)
            ):
                raise NotFound("conversation not found")
            if conv.status == ConversationStatus.RESOLVED and new.direction is Direction.INBOUND:
                conv.status = ConversationStatus.OPEN.value
                events.append(
                    DomainEvent("conversation.updated", new.workspace_id, conversation_view(conv))
                )
            return conv
        if not (new.contact_id and new.channel_id):
            raise BadRequest("a conversation_id, or a contact and a channel, is required")
        channel = await session.get(m.Channel, new.channel_id)
        if channel is None or channel.workspace_id != new.workspace_id:
            raise NotFound("channel not found")
        conv = await session.scalar(
            select(m.Conversation)
            .where(
                m.Conversation.workspace_id == new.workspace_id,
                m.Conversation.contact_id == new.contact_id,
                m.Conversation.channel_id == new.channel_id,
                m.Conversation.status != ConversationStatus.RESOLVED.value,
            )
            .order_by(m.Conversation.id.desc())
            .limit(1)
        )
        if conv is not None:
            return conv
        now = utcnow()
        conv = m.Conversation(
            id=new_id("cnv"),
            workspace_id=new.workspace_id,
            contact_id=new.contact_id,
            channel_id=channel.id,
            channel_type=channel.type,
            status=ConversationStatus.OPEN.value,
            last_seq=0,
            created_at=now,
            updated_at=now,
        )
        session.add(conv)
        await session.flush()
        view = conversation_view(conv)
        await outbox.enqueue_webhooks(
            session, new.workspace_id, "conversation.created", {"conversation": view}
        )
        events.append(DomainEvent("conversation.created", new.workspace_id, view))
        return conv


def _initial_status(new: NewMessage, channel_type: str) -> MessageStatus:
    if new.direction is Direction.INBOUND:
        return MessageStatus.DELIVERED  # it has reached us
    if new.send_at is not None and new.send_at > utcnow():
        return MessageStatus.SCHEDULED
    if channel_type == ChannelType.INAPP or new.private:
        # In-app delivery is the socket fan-out right after commit; private notes
        # never leave Parley.
        return MessageStatus.SENT
    return MessageStatus.QUEUED


def status_payload(msg: m.Message, status: MessageStatus) -> dict[str, Any]:
    return {
        "message_id": msg.id,
        "conversation_id": msg.conversation_id,
        "seq": msg.seq,
        "status": status.value,
        "correlation_id": msg.correlation_id,
        "callback_data": msg.callback_data,
    }


def _posted(
    message: dict[str, Any],
    conversation: dict[str, Any],
    created: bool,
    events: list[DomainEvent] | None = None,
    queued_work: bool = False,
) -> Posted:
    return Posted(message, conversation, created, events or [], queued_work)
