"""Conversations as the inbox sees them: list, read, change status and assignee, read marks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.enums import ConversationStatus
from chat.domain.errors import NotFound, Unprocessable
from chat.services import outbox
from chat.services.paging import page
from chat.services.views import conversation_view

UNSET: Any = object()


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    assignee: str | None = None  # an agent or bot id, "none", or "agent:<id>"/"bot:<id>"
    channel: str | None = None  # a channel type or a channel id
    contact_id: str | None = None


class Inbox:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def list(
        self, workspace_id: str, flt: ConversationFilter, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        q = select(m.Conversation).where(m.Conversation.workspace_id == workspace_id)
        if flt.status:
            q = q.where(m.Conversation.status == flt.status)
        if flt.contact_id:
            q = q.where(m.Conversation.contact_id == flt.contact_id)
        if flt.channel:
            col = m.Conversation.channel_id if flt.channel.startswith("ch_") else m.Conversation.channel_type
            q = q.where(col == flt.channel)
        if flt.assignee:
            if flt.assignee == "none":
                q = q.where(m.Conversation.assignee_id.is_(None))
            else:
                kind, _, ident = flt.assignee.rpartition(":")
                q = q.where(m.Conversation.assignee_id == ident)
                if kind:
                    q = q.where(m.Conversation.assignee_type == kind)
        async with self.db.read() as session:
            return await page(session, q, m.Conversation.id, cursor, limit, conversation_view)

    async def get(self, workspace_id: str, conversation_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            return conversation_view(await owned(session, workspace_id, conversation_id))

    async def update(
        self,
        workspace_id: str,
        conversation_id: str,
        *,
        status: str | None = None,
        assignee: dict[str, Any] | None = UNSET,
        origin: str | None = None,
    ) -> dict[str, Any]:
        """Change status and/or assignee (``None`` unassigns); publishes ``conversation.updated``."""
        async with self.db.write() as session:
            conv = await owned(session, workspace_id, conversation_id)
            if status is not None:
                conv.status = ConversationStatus(status).value
            if assignee is not UNSET:
                await _assign(session, conv, assignee)
            await session.flush()
            view = conversation_view(conv)
            await outbox.enqueue_webhooks(
                session, workspace_id, "conversation.updated", {"conversation": view}
            )
        self.bus.outbox_written()
        await self.bus.publish([DomainEvent("conversation.updated", workspace_id, view, origin)])
        return view


async def owned(session: AsyncSession, workspace_id: str, conversation_id: str) -> m.Conversation:
    conv = await session.get(m.Conversation, conversation_id)
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
    conv.assignee_type, conv.assignee_id = kind, ident
