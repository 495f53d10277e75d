"""Delivery records: what was handed to which provider, each attempt, and the statuses
that come back.

A provider's ``Watermark`` (Messenger's read and delivery events, X's mark-read) names no
message: it moves every message Parley handed to that address on that channel, stored
at or before the watermark, with one such UPDATE (``apply_watermark``).

Every status change here is a compare-and-set: one conditional UPDATE on the message
row, allowed only from the statuses ``status_can_move`` lets it leave, so two racing
changes (a worker's ``sent`` and a provider's early ``delivered``) end in the forward
one whatever their order. A change writes its history row and its ``message.status``
webhooks in the same transaction and returns the bus event to publish after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import Direction, MessageStatus
from chat.domain.errors import Unprocessable
from chat.domain.ids import new_id
from chat.services import outbox, statuses
from chat.services.group_commit import GroupCommit
from chat.services.inbound import ProviderChannel
from chat.services.views import AttemptView, DeliveryView, attempt_view, delivery_view
from connectors.base import Reaction, StatusUpdate, Watermark

log = logging.getLogger(__name__)

_messages = cast(Table, m.Message.__table__)
_deliveries = cast(Table, m.Delivery.__table__)
_attempts = cast(Table, m.DeliveryAttempt.__table__)
_conversations = cast(Table, m.Conversation.__table__)
_channels = cast(Table, m.Channel.__table__)
_contacts = cast(Table, m.Contact.__table__)

# The provider's id of the conversation's latest inbound message (for reply threading).
_inbound = _messages.alias("inbound")
_inbound_delivery = _deliveries.alias("inbound_delivery")
_REPLY_TO = (
    select(_inbound_delivery.c.provider_message_id)
    .join(_inbound, _inbound.c.id == _inbound_delivery.c.message_id)
    .where(
        _inbound.c.conversation_id == _messages.c.conversation_id,
        _inbound.c.direction == Direction.INBOUND.value,
        _inbound_delivery.c.provider_message_id.is_not(None),
    )
    .order_by(_inbound.c.seq.desc())
    .limit(1)
    .correlate(_messages)
    .scalar_subquery()
)
# ``record``'s statements, built once (a statement built per call costs more to make and
# to look up in the compiled cache than to run).
_DELIVERY_ID = select(_deliveries.c.id).where(_deliveries.c.message_id == bindparam("message_id"))
_INSERT_DELIVERY = insert(_deliveries)
_INSERT_ATTEMPT = insert(_attempts)
_HANDED_OVER = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("delivery_id"))
    .values(provider_message_id=bindparam("provider_id"), updated_at=bindparam("now"))
)
# Everything ``prepare`` needs about one message, in one statement.
_PLAN = (
    select(
        _messages.c.workspace_id,
        _messages.c.status,
        _messages.c.content,
        _messages.c.message_tag,
        _conversations.c.id.label("conversation_id"),
        _conversations.c.contact_id,
        _channels.c.id.label("channel_id"),
        _channels.c.type.label("channel_type"),
        _channels.c.config,
        _deliveries.c.address.label("delivery_address"),
        _deliveries.c.provider_message_id,
        _REPLY_TO.label("reply_to"),
        _contacts.c.locale,
    )
    .select_from(_messages)
    .outerjoin(_conversations, _conversations.c.id == _messages.c.conversation_id)
    .outerjoin(_contacts, _contacts.c.id == _conversations.c.contact_id)
    .outerjoin(_channels, _channels.c.id == _conversations.c.channel_id)
    .outerjoin(_deliveries, _deliveries.c.message_id == _messages.c.id)
)

Applied = Literal["moved", "stale", "unknown"]


@dataclass(frozen=True)
class Plan:
    """Everything a send needs, read in one transaction."""

    workspace_id: str
    message_id: str
    channel_id: str
    channel_type: str
    config: dict[str, Any]
    address: str
    content: dict[str, Any]
    reply_to: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    locale: str | None = None  # the contact's, for the language of what is said or sent


class FailureDetail(TypedDict):
    """Why a message failed, as its status history and ``message.status`` say."""

    code: str | None
    message: str | None
    status_code: int | None


class MessageDeliveries(TypedDict):
    """A message's delivery record (None before the first attempt) and its attempts."""

    delivery: DeliveryView | None
    attempts: list[AttemptView]


@dataclass(frozen=True)
class Outcome:
    """One attempt's result as the deliver handler saw it."""

    ok: bool
    duration_ms: int
    provider_message_id: str | None = None
    status: MessageStatus | None = None  # for a success: sent, or delivered
    error_code: str | None = None
    error: str | None = None
    status_code: int | None = None


async def move_status(
    session: AsyncSession, message_id: str, status: MessageStatus, detail: Any = None
) -> DomainEvent | None:
    """Within a transaction: move a message to ``status`` if that is a move forward (the
    one compare-and-set of ``statuses.move``). The bus event to publish after commit, or
    None when the message was not moved."""
    moved = await statuses.move(
        await session.connection(), _messages.c.id == message_id, status, detail
    )
    events = statuses.status_events(moved, status, detail=detail)
    return events[0] if events else None


def failure_detail(
    code: str | None, message: str | None, status_code: int | None = None
) -> FailureDetail:
    return {"code": code, "message": message, "status_code": status_code}


async def newest_address(
    session: AsyncSession, workspace_id: str, contact_id: str, channel_type: str
) -> str | None:
    return await session.scalar(
        select(m.ContactIdentity.address)
        .where(
            m.ContactIdentity.workspace_id == workspace_id,
            m.ContactIdentity.contact_id == contact_id,
            m.ContactIdentity.channel_type == channel_type,
        )
        .order_by(m.ContactIdentity.created_at.desc(), m.ContactIdentity.id.desc())
        .limit(1)
    )


async def delivery_record(session: AsyncSession, message_id: str) -> DeliveryView | None:
    """The delivery view of a message (address used, provider id), if it has one."""
    delivery = await session.scalar(select(m.Delivery).where(m.Delivery.message_id == message_id))
    return delivery_view(delivery) if delivery is not None else None


# One attempt to record: the outbox entry, what was sent, how it went.
Attempt = tuple[m.OutboxEntry, "Plan", "Outcome"]


class Deliveries:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        # Attempts that end together are recorded in one transaction (many sends are in
        # flight at once, and on SQLite every write transaction waits for the one writer).
        self._attempts: GroupCommit[Attempt, DomainEvent | None] = GroupCommit(
            self._record_group, self._record_one
        )

    async def prepare(self, message_id: str, address: str | None = None) -> Plan | None:
        """What to send for a queued message; None when there is nothing to send (the
        message is gone, no longer queued, or was already handed over: a worker that
        died after recording the provider's id). A retry goes to the address the first
        attempt used. Only reads, in one statement: on SQLite it does not queue behind
        message writes, and a busy outbox pays one round trip per send.

        Raises ``Unprocessable`` (with a code) when it can never be sent."""
        async with self.db.read() as session:
            row = (await session.execute(_PLAN.where(_messages.c.id == message_id))).first()
            if row is None or row.status != MessageStatus.QUEUED:
                return None
            if row.provider_message_id is not None:
                return None
            if row.conversation_id is None or row.channel_id is None:
                raise Unprocessable("the message's channel was removed", code="channel_removed")
            if row.delivery_address is not None:
                address = row.delivery_address
            elif address is None:
                address = await newest_address(
                    session, row.workspace_id, row.contact_id, row.channel_type
                )
            if address is None:
                raise Unprocessable(f"the contact has no {row.channel_type} address", code="no_address")
            return Plan(
                workspace_id=row.workspace_id,
                message_id=message_id,
                channel_id=row.channel_id,
                channel_type=row.channel_type,
                config=dict(row.config or {}),
                address=address,
                content=dict(row.content),
                reply_to=row.reply_to,
                locale=row.locale,
                options={"tag": row.message_tag} if row.message_tag else {},
            )

    async def record(self, entry: m.OutboxEntry, plan: Plan, outcome: Outcome) -> None:
        """Record one attempt; a success also stores the provider's id and moves the
        message forward (queued -> sent or delivered), in the same transaction."""
        result = await self._attempts.submit((entry, plan, outcome))
        if isinstance(result, Exception):
            raise result

    async def _record_group(
        self, attempts: Sequence[Attempt], _committing: object = None
    ) -> list[DomainEvent | None | Exception]:
        async with self.db.write() as session:
            events = [await _record(session, *attempt) for attempt in attempts]
        moved = [event for event in events if event is not None]
        if moved:
            self.bus.outbox_written()
            await self.bus.publish(moved)
        return list(events)

    async def _record_one(self, attempt: Attempt) -> DomainEvent | None:
        result = (await self._record_group([attempt]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def fail(
        self,
        session: AsyncSession,
        message_id: str,
        code: str | None,
        message: str | None,
        status_code: int | None = None,
    ) -> DomainEvent | None:
        """Within the caller's transaction: the message could not be delivered."""
        detail = failure_detail(code, message, status_code)
        return await move_status(session, message_id, MessageStatus.FAILED, detail)

    async def apply_status(
        self,
        channel_id: str,
        provider_message_id: str,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Applied:
        """A provider's status callback: find the message by the provider's id on this
        channel and move it forward. ``stale`` when it is already there or further (a
        late ``sent`` after ``delivered``), ``unknown`` when no message has that id."""
        new = MessageStatus(status)
        if new in (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.CANCELLED):
            raise ValueError(f"a provider cannot report {status!r}")
        detail: dict[str, Any] = {"by": "provider"}
        if new is MessageStatus.FAILED:
            detail.update(failure_detail(error_code, error_message))
        async with self.db.write() as session:
            message_id = await session.scalar(
                select(m.Delivery.message_id).where(
                    m.Delivery.channel_id == channel_id,
                    m.Delivery.provider_message_id == provider_message_id,
                )
            )
            if message_id is None:
                log.info("status %s for unknown provider message on channel %s", status, channel_id)
                return "unknown"
            event = await move_status(session, message_id, new, detail)
        if event is None:
            return "stale"
        self.bus.outbox_written()
        await self.bus.publish([event])
        return "moved"

    async def apply_watermark(self, channel: ProviderChannel, mark: Watermark) -> int:
        """Everything sent to ``mark.sender`` on this channel up to ``mark.up_to`` is
        delivered (or read): move each such message forward, in one compare-and-set.

        The messages are the outbound ones of the sender's conversations on the channel
        that the provider accepted (a delivery with its id, to that address), stored at or
        before the watermark: a message is stored before it is handed over, so one the
        provider timed before the watermark was stored before it too. How many moved."""
        new = MessageStatus(mark.status)
        detail = {"by": "provider", "watermark": mark.up_to.isoformat()}
        conversations = (
            select(m.Conversation.id)
            .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Conversation.contact_id)
            .where(
                m.ContactIdentity.workspace_id == channel.workspace_id,
                m.ContactIdentity.channel_type == channel.type,
                m.ContactIdentity.address == mark.sender,
                m.Conversation.channel_id == channel.id,
            )
        )
        handed_over = exists().where(
            m.Delivery.message_id == _messages.c.id,
            m.Delivery.channel_id == channel.id,
            m.Delivery.address == mark.sender,
            m.Delivery.provider_message_id.is_not(None),
        )
        which = (
            _messages.c.conversation_id.in_(conversations)
            & (_messages.c.direction == Direction.OUTBOUND.value)
            & (_messages.c.created_at <= mark.up_to)
            & handed_over
        )
        async with self.db.write() as session:
            moved = await statuses.move(await session.connection(), which, new, detail)
        if moved:
            self.bus.outbox_written()
            await self.bus.publish(statuses.status_events(moved, new, detail=detail))
        return len(moved)

    async def apply_news(
        self, channel: ProviderChannel, news: Sequence[StatusUpdate | Watermark | Reaction]
    ) -> None:
        """A provider callback's status updates and watermarks (moved forward only) and
        reactions (told to the webhooks and agents as ``message.reaction``), in the order
        received."""
        for item in news:
            if isinstance(item, StatusUpdate):
                await self.apply_status(
                    channel.id, item.provider_message_id, item.status, item.error_code, item.error_message
                )
            elif isinstance(item, Watermark):
                await self.apply_watermark(channel, item)
            else:
                await self._reaction(channel, item)

    async def _reaction(self, channel: ProviderChannel, reaction: Reaction) -> None:
        async with self.db.write() as session:
            msg = await session.scalar(
                select(m.Message)
                .join(m.Delivery, m.Delivery.message_id == m.Message.id)
                .where(
                    m.Delivery.channel_id == channel.id,
                    m.Delivery.provider_message_id == reaction.provider_message_id,
                )
            )
            if msg is None:
                log.info("reaction to an unknown provider message on channel %s", channel.id)
                return
            data = {
                "message_id": msg.id,
                "conversation_id": msg.conversation_id,
                "seq": msg.seq,
                "emoji": reaction.emoji,
                "by": {"type": "contact", "address": reaction.sender},
            }
            await outbox.enqueue_webhooks(session, msg.workspace_id, "message.reaction", data, message_id=msg.id)
        self.bus.outbox_written()
        await self.bus.publish([DomainEvent("message.reaction", msg.workspace_id, data)])

    async def of_message(self, workspace_id: str, message_id: str) -> MessageDeliveries:
        """The delivery record and every provider attempt of one message (for
        ``GET /v1/messages/{id}``): ``{"delivery": ... | None, "attempts": [...]}``."""
        async with self.db.read() as session:
            msg = await session.get(m.Message, message_id)
            if msg is None or msg.workspace_id != workspace_id:
                return {"delivery": None, "attempts": []}
            delivery = await delivery_record(session, message_id)
            attempts = (
                await session.scalars(
                    select(m.DeliveryAttempt)
                    .join(m.OutboxEntry, m.OutboxEntry.id == m.DeliveryAttempt.outbox_id)
                    .where(
                        m.DeliveryAttempt.message_id == message_id,
                        m.DeliveryAttempt.workspace_id == workspace_id,
                        m.OutboxEntry.kind == outbox.DELIVER,
                    )
                    .order_by(m.DeliveryAttempt.id)
                )
            ).all()
        return {
            "delivery": delivery,
            "attempts": [attempt_view(a) for a in attempts],
        }


async def _record(
    session: AsyncSession, entry: m.OutboxEntry, plan: Plan, outcome: Outcome
) -> DomainEvent | None:
    """The rows of one attempt, in the caller's transaction; the status event, if any."""
    now = utcnow()
    provider_id = outcome.provider_message_id if outcome.ok else None
    attempt = {
        "id": new_id("att"), "workspace_id": plan.workspace_id, "outbox_id": entry.id,
        "message_id": plan.message_id, "subscription_id": None,
        "target": f"{plan.channel_type}:{plan.address}", "attempt": entry.attempts,
        "ok": outcome.ok, "status_code": outcome.status_code,
        "error_code": outcome.error_code, "error": outcome.error,
        "duration_ms": outcome.duration_ms, "created_at": now,
    }  # fmt: skip
    conn = await session.connection()
    known = await conn.scalar(_DELIVERY_ID, {"message_id": plan.message_id})
    if known is None:  # the first attempt: record where it went
        await conn.execute(
            _INSERT_DELIVERY,
            {
                "id": new_id("dlv"), "workspace_id": plan.workspace_id,
                "message_id": plan.message_id, "channel_id": plan.channel_id,
                "channel_type": plan.channel_type, "address": plan.address,
                "provider_message_id": provider_id, "created_at": now, "updated_at": now,
            },
        )  # fmt: skip
    elif outcome.ok:
        await conn.execute(
            _HANDED_OVER, {"delivery_id": known, "provider_id": provider_id, "now": now}
        )
    await conn.execute(_INSERT_ATTEMPT, attempt)
    if not outcome.ok:
        return None
    return await move_status(session, plan.message_id, outcome.status or MessageStatus.SENT, None)
