"""Conversations as the inbox sees them: list, read, change status and assignee, history.

The list is the inbox's data: newest activity first, each conversation with its contact's
name, a preview of its last message and how many of the contact's messages the asking
agent has not read. A page costs two queries whatever its size: the page itself (with the
contact's name), then the previews and unread counts of all its conversations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import ConversationStatus, Direction, MessageStatus
from chat.domain.errors import Conflict, NotFound, Unprocessable
from chat.services import outbox
from chat.services.paging import ActivityCursor
from chat.services.views import (
    ConversationView,
    InboxConversationView,
    MessageView,
    Page,
    conversation_view,
    message_preview,
    message_view,
)

UNSET: Any = object()


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    assignee: str | None = None  # an id, "none", "agent:<id>"/"bot:<id>", or "agent:*"/"bot:*"
    channel: str | None = None  # a channel type or a channel id
    contact_id: str | None = None
    team: str | None = None  # a team's name, or "none" for the conversations of no team


class History(TypedDict):
    """A page of a conversation's messages in seq order."""

    data: list[MessageView]
    has_more: bool


class Inbox:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def list(
        self,
        workspace_id: str,
        flt: ConversationFilter,
        cursor: str | None,
        limit: int,
        reader_agent_id: str | None = None,
    ) -> Page[InboxConversationView]:
        """A page of conversations, latest activity first (ties: newest id first).

        ``next_cursor`` is the (activity, id) of the page's last conversation, so pages
        stay exact when conversations share a timestamp. ``unread_count`` counts the
        contact's messages after ``reader_agent_id``'s read horizon, and is ``None`` when
        no agent asks (an API key reads nothing)."""
        q = (
            select(m.Conversation, m.Contact.name)
            .join(m.Contact, m.Contact.id == m.Conversation.contact_id)
            .where(*_filters(workspace_id, flt))
        )
        if cursor:
            at, last_id = ActivityCursor.parse(cursor)
            q = q.where(or_(_ACTIVITY < at, and_(_ACTIVITY == at, m.Conversation.id < last_id)))
        q = q.order_by(_ACTIVITY.desc(), m.Conversation.id.desc()).limit(limit + 1)
        async with self.db.read() as session:
            rows = (await session.execute(q)).all()
            more, rows = len(rows) > limit, rows[:limit]
            views = await _inbox_views(session, rows, reader_agent_id)
        last = rows[-1][0] if more and rows else None
        return {
            "data": views,
            "next_cursor": ActivityCursor.of(_activity_of(last), last.id) if last else None,
        }

    async def get(
        self, workspace_id: str, conversation_id: str, reader_agent_id: str | None = None
    ) -> InboxConversationView:
        """One conversation in the list's shape (contact name, preview, unread count)."""
        async with self.db.read() as session:
            conv = await owned(session, workspace_id, conversation_id)
            name = await session.scalar(select(m.Contact.name).where(m.Contact.id == conv.contact_id))
            return (await _inbox_views(session, [(conv, name)], reader_agent_id))[0]

    async def history(
        self,
        workspace_id: str,
        conversation_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> History:
        """Messages in seq order, private notes included (the workspace's view).

        Forwards: the first ``limit`` after ``after_seq``; ``has_more`` when later ones
        exist. Backwards (``before_seq`` given): the latest ``limit`` before ``before_seq``
        (and after ``after_seq``); ``has_more`` when earlier ones exist. One row more than
        asked is read to know."""
        q = select(m.Message).where(
            m.Message.conversation_id == conversation_id, m.Message.seq > after_seq
        )
        if before_seq is not None:
            q = q.where(m.Message.seq < before_seq).order_by(m.Message.seq.desc())
        else:
            q = q.order_by(m.Message.seq)
        async with self.db.read() as session:
            await owned(session, workspace_id, conversation_id)
            rows = list((await session.scalars(q.limit(limit + 1))).all())
        more, rows = len(rows) > limit, rows[:limit]
        if before_seq is not None:
            rows.reverse()
        return {"data": [message_view(r) for r in rows], "has_more": more}

    async def update(
        self,
        workspace_id: str,
        conversation_id: str,
        *,
        status: str | None = None,
        assignee: dict[str, Any] | None = UNSET,
        expected_assignee: dict[str, Any] | None = UNSET,
        snoozed_until: datetime | None = None,
        team: str | None = UNSET,
        origin: str | None = None,
    ) -> ConversationView:
        """Change status, assignee (``None`` unassigns) and/or team (``None``: no team);
        publishes ``conversation.updated``. Giving it to a bot makes the bot answer the
        customer's next message.

        With ``expected_assignee`` (the assignee the caller saw, ``None`` for nobody) the
        change is a compare-and-set: the row is locked, and when someone else assigned it
        meanwhile nothing changes and 409 ``assignee_changed`` carries the conversation as
        it is. Two agents taking one conversation at once: exactly one gets it.

        ``snoozed_until`` (with ``status="snoozed"`` only, in the future) reopens the
        conversation then, unless its status was changed again before (any status change
        cancels a pending wake-up)."""
        if snoozed_until is not None:
            if status != ConversationStatus.SNOOZED.value:
                raise Unprocessable("snoozed_until goes with status snoozed", code="invalid_snooze")
            if snoozed_until <= utcnow():
                raise Unprocessable("snoozed_until must be in the future", code="invalid_snooze")
        async with self.db.write() as session:
            conv = await owned(session, workspace_id, conversation_id, lock=True)
            if expected_assignee is not UNSET and _holder(conv) != _party(expected_assignee):
                raise Conflict(
                    "someone else changed the assignee meanwhile",
                    code="assignee_changed",
                    details={"conversation": conversation_view(conv)},
                )
            if status is not None:
                conv.status = ConversationStatus(status).value
                await _cancel_wake(session, conv.id)
                if snoozed_until is not None:
                    outbox.enqueue(
                        session, workspace_id=workspace_id, kind=outbox.UNSNOOZE,
                        payload={"conversation_id": conv.id}, ref_id=conv.id, due_at=snoozed_until,
                    )
            if assignee is not UNSET:
                await _assign(session, conv, assignee)
            if team is not UNSET:
                conv.team = team
            await session.flush()
            view = conversation_view(conv)
            await outbox.enqueue_webhooks(
                session, workspace_id, "conversation.updated", {"conversation": view}
            )
        self.bus.outbox_written()
        await self.bus.publish([DomainEvent("conversation.updated", workspace_id, view, origin)])
        return view

    async def wake(self, workspace_id: str, conversation_id: str) -> bool:
        """A snooze's time is up: a conversation still snoozed opens again (and
        ``conversation.updated`` goes out); False when it was no longer snoozed."""
        async with self.db.write() as session:
            conv = await owned(session, workspace_id, conversation_id, lock=True)
            if conv.status != ConversationStatus.SNOOZED.value:
                return False
            conv.status = ConversationStatus.OPEN.value
            await session.flush()
            view = conversation_view(conv)
            await outbox.enqueue_webhooks(
                session, workspace_id, "conversation.updated", {"conversation": view}
            )
        self.bus.outbox_written()
        await self.bus.publish([DomainEvent("conversation.updated", workspace_id, view, None)])
        return True


async def _cancel_wake(session: AsyncSession, conversation_id: str) -> None:
    """A status change replaces any snooze still waiting to end."""
    await session.execute(
        update(m.OutboxEntry)
        .where(
            m.OutboxEntry.kind == outbox.UNSNOOZE,
            m.OutboxEntry.ref_id == conversation_id,
            m.OutboxEntry.state == "pending",
        )
        .values(state="cancelled", last_error="status changed")
        .execution_options(synchronize_session=False)
    )


# Last activity: the last message, or the opening of a conversation that has none yet.
_ACTIVITY = func.coalesce(m.Conversation.last_message_at, m.Conversation.created_at)

# A scheduled message has not happened yet, and a cancelled one never will.
_NOT_PREVIEWED = (MessageStatus.SCHEDULED.value, MessageStatus.CANCELLED.value)


def _activity_of(conv: m.Conversation) -> Any:
    return conv.last_message_at or conv.created_at


def _filters(workspace_id: str, flt: ConversationFilter) -> list[ColumnElement[bool]]:
    where = [m.Conversation.workspace_id == workspace_id]
    if flt.status:
        where.append(m.Conversation.status == flt.status)
    if flt.contact_id:
        where.append(m.Conversation.contact_id == flt.contact_id)
    if flt.channel:
        col = m.Conversation.channel_id if flt.channel.startswith("ch_") else m.Conversation.channel_type
        where.append(col == flt.channel)
    if flt.team:
        if flt.team == "none":
            where.append(m.Conversation.team.is_(None))
        else:
            where.append(m.Conversation.team == flt.team)
    if flt.assignee:
        if flt.assignee == "none":
            where.append(m.Conversation.assignee_id.is_(None))
        else:
            kind, _, ident = flt.assignee.rpartition(":")
            if ident != "*" or not kind:  # "bot:*": held by any bot
                where.append(m.Conversation.assignee_id == ident)
            if kind:
                where.append(m.Conversation.assignee_type == kind)
    return where


async def _inbox_views(
    session: AsyncSession,
    rows: Sequence[tuple[m.Conversation, str | None]],
    reader_agent_id: str | None,
) -> list[InboxConversationView]:
    """The conversations' views with contact name, last message preview and unread count,
    in one query for the whole page."""
    if not rows:
        return []
    latest = aliased(m.Message)
    last_id = (
        select(latest.id)
        .where(latest.conversation_id == m.Conversation.id, latest.status.not_in(_NOT_PREVIEWED))
        .order_by(latest.seq.desc())
        .limit(1)
        .correlate(m.Conversation)
        .scalar_subquery()
    )
    columns: list[Any] = [m.Conversation.id, m.Message]
    if reader_agent_id is not None:
        counted = aliased(m.Message)
        horizon = (
            select(m.ReadHorizon.seq)
            .where(
                m.ReadHorizon.conversation_id == m.Conversation.id,
                m.ReadHorizon.participant_type == "agent",
                m.ReadHorizon.participant_id == reader_agent_id,
            )
            .correlate(m.Conversation)
            .scalar_subquery()
        )
        unread = (
            select(func.count())
            .select_from(counted)
            .where(
                counted.conversation_id == m.Conversation.id,
                counted.direction == Direction.INBOUND.value,
                counted.seq > func.coalesce(horizon, 0),
            )
            .correlate(m.Conversation)
            .scalar_subquery()
        )
        columns.append(unread)
    ids = [conv.id for conv, _ in rows]
    q = (
        select(*columns)
        .select_from(m.Conversation)
        .outerjoin(m.Message, m.Message.id == last_id)
        .where(m.Conversation.id.in_(ids))
    )
    extra = {r[0]: r[1:] for r in (await session.execute(q)).all()}
    views: list[InboxConversationView] = []
    for conv, contact_name in rows:
        message, *count = extra[conv.id]
        views.append({
            **conversation_view(conv),
            "contact_name": contact_name,
            "last_message": message_preview(message) if message is not None else None,
            "unread_count": int(count[0]) if count else None,
        })
    return views


def _holder(conv: m.Conversation) -> tuple[str, str] | None:
    if conv.assignee_type is None or conv.assignee_id is None:
        return None
    return conv.assignee_type, conv.assignee_id


def _party(assignee: dict[str, Any] | None) -> tuple[str, str] | None:
    return None if assignee is None else (str(assignee.get("type")), str(assignee.get("id")))


async def owned(
    session: AsyncSession, workspace_id: str, conversation_id: str, *, lock: bool = False
) -> m.Conversation:
    """The conversation if it is the workspace's (else 404); ``lock`` holds its row until
    the transaction ends (PostgreSQL; SQLite's writers are serialised anyway)."""
    conv = await session.get(m.Conversation, conversation_id, with_for_update=lock or None)
    if conv is None or conv.workspace_id != workspace_id:
        raise NotFound("conversation not found")
    return conv


async def _assign(session: AsyncSession, conv: m.Conversation, assignee: dict[str, Any] | None) -> None:
    if assignee is None:
        conv.assignee_type = conv.assignee_id = None
        return
    kind, ident = assignee.get("type"), assignee.get("id")
    if kind == "agent":
        agent = await session.get(m.Agent, ident)
        if agent is None or agent.workspace_id != conv.workspace_id:
            raise Unprocessable("no such agent in this workspace", code="unknown_assignee")
    elif kind != "bot" or not ident:
        raise Unprocessable("assignee must be {type: agent|bot, id}", code="invalid_assignee")
    else:
        bot = await session.get(m.Bot, ident)
        if bot is None or bot.workspace_id != conv.workspace_id:
            raise Unprocessable("no such bot in this workspace", code="unknown_assignee")
    conv.assignee_type, conv.assignee_id = kind, ident
