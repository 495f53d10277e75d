"""Events: named things that happened to a contact (``order.shipped``), which flows react to.

Recording an event writes its ``event.created`` webhooks to the outbox in the same
transaction, then, after the commit, wakes the worker and publishes the
``event.created`` domain event to the immediate listeners.

An event recorded with its own ``event_id`` is recorded once: a second ``record`` with
that id (a provider repeating a callback) returns the first and tells nobody again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.errors import NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.paging import page
from chat.services.views import EventView, Page, iso

# Dotted lower-case words: ``signup``, ``order.shipped``, ``cart.item_added``.
NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$")
NAME_MAX = 200


def event_view(ev: m.Event) -> EventView:
    return {
        "id": ev.id,
        "name": ev.name,
        "contact_id": ev.contact_id,
        "payload": ev.payload or {},
        "created_at": iso(ev.created_at),
    }


@dataclass(frozen=True)
class EventFilter:
    name: str | None = None  # an exact name, or ``order.*`` for every ``order.`` name
    contact_id: str | None = None


class Events:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def record(
        self,
        workspace_id: str,
        name: str,
        contact_id: str | None = None,
        payload: dict[str, Any] | None = None,
        origin: str | None = None,
        event_id: str | None = None,
    ) -> EventView:
        """Store the event; a ``contact_id`` outside the workspace is 422 ``unknown_contact``.
        With an ``event_id`` already recorded, the event recorded first."""
        if len(name) > NAME_MAX or not NAME.match(name):
            raise Unprocessable(
                "event names are dotted lower-case words", code="invalid_event_name"
            )
        if event_id is None:
            return await self._record(workspace_id, name, contact_id, payload, origin, None)
        first = await self._recorded(workspace_id, event_id)
        if first is not None:
            return first
        try:
            return await self._record(workspace_id, name, contact_id, payload, origin, event_id)
        except IntegrityError:  # recorded meanwhile by a concurrent repeat
            first = await self._recorded(workspace_id, event_id)
            if first is None:
                raise
            return first

    async def _recorded(self, workspace_id: str, event_id: str) -> EventView | None:
        async with self.db.read() as session:
            ev = await session.get(m.Event, event_id)
            return event_view(ev) if ev is not None and ev.workspace_id == workspace_id else None

    async def _record(
        self,
        workspace_id: str,
        name: str,
        contact_id: str | None,
        payload: dict[str, Any] | None,
        origin: str | None,
        event_id: str | None,
    ) -> EventView:
        async with self.db.write() as session:
            view = await add_event(session, workspace_id, name, contact_id, payload, event_id)
        self.bus.outbox_written()
        await self.bus.publish([DomainEvent("event.created", workspace_id, view, origin)])
        return view

    async def list(
        self, workspace_id: str, flt: EventFilter, cursor: str | None, limit: int
    ) -> Page[EventView]:
        q = select(m.Event).where(m.Event.workspace_id == workspace_id)
        if flt.name is not None:
            if flt.name.endswith(".*"):
                q = q.where(m.Event.name.startswith(flt.name[:-1], autoescape=True))
            else:
                q = q.where(m.Event.name == flt.name)
        if flt.contact_id is not None:
            q = q.where(m.Event.contact_id == flt.contact_id)
        async with self.db.read() as session:
            return await page(session, q, m.Event.id, cursor, limit, event_view)

    async def get(self, workspace_id: str, event_id: str) -> EventView:
        async with self.db.read() as session:
            return event_view(await _owned(session, workspace_id, event_id))

    async def delete(self, workspace_id: str, event_id: str) -> None:
        async with self.db.write() as session:
            gone = await session.execute(
                delete(m.Event).where(m.Event.id == event_id, m.Event.workspace_id == workspace_id)
            )
            if not gone.rowcount:  # type: ignore[attr-defined]
                raise NotFound("event not found")


async def add_event(
    session: AsyncSession,
    workspace_id: str,
    name: str,
    contact_id: str | None = None,
    payload: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> EventView:
    """Store an event and its ``event.created`` webhooks in the caller's transaction (the
    caller publishes ``event.created`` after the commit): for writes that record events
    together with other changes, such as a bot turn."""
    if len(name) > NAME_MAX or not NAME.match(name):
        raise Unprocessable("event names are dotted lower-case words", code="invalid_event_name")
    if contact_id is not None:
        contact = await session.get(m.Contact, contact_id)
        if contact is None or contact.workspace_id != workspace_id:
            raise Unprocessable(
                "no such contact in this workspace", code="unknown_contact",
                details={"contact_id": contact_id},
            )
    event = m.Event(
        id=event_id or new_id("ev"), workspace_id=workspace_id, name=name, contact_id=contact_id,
        payload=payload or {},
    )
    session.add(event)
    await session.flush()
    view = event_view(event)
    await outbox.enqueue_webhooks(session, workspace_id, "event.created", {"event": view})
    return view


async def _owned(session: AsyncSession, workspace_id: str, event_id: str) -> m.Event:
    ev = await session.get(m.Event, event_id)
    if ev is None or ev.workspace_id != workspace_id:
        raise NotFound("event not found")
    return ev
