"""Webhook subscriptions: where a workspace's events are POSTed, and how each try went.

Delivery itself is the outbox's work (``services.outbox.enqueue_webhooks`` writes one
entry per interested subscription, ``listeners.webhook_delivery`` signs and POSTs).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.channel_config import mask_value
from chat.domain.errors import NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.paging import page
from chat.services.views import Page, WebhookAttemptView, WebhookView, attempt_view, iso

# Every event type a subscription can ask for; "*" and "<noun>.*" widen the choice.
EVENT_TYPES = (
    "message.created",
    "message.status",
    "conversation.created",
    "conversation.updated",
    "event.created",
)
_NOUNS = sorted({e.split(".")[0] for e in EVENT_TYPES})
SECRET_PREFIX = "whsec_"


def event_filter(events: Sequence[str]) -> list[str]:
    """The events as stored: checked, without repeats, in the order given."""
    allowed = {*EVENT_TYPES, "*", *(f"{n}.*" for n in _NOUNS)}
    unknown = [e for e in events if e not in allowed]
    if unknown:
        raise Unprocessable(
            f"unknown event type(s): {', '.join(unknown)}",
            code="unknown_event",
            details={"unknown": unknown, "allowed": sorted(allowed)},
        )
    return list(dict.fromkeys(events))


def subscription_view(sub: m.WebhookSubscription, *, reveal: bool = False) -> WebhookView:
    return {
        "id": sub.id,
        "url": sub.url,
        "events": sub.events or ["*"],
        "active": sub.active,
        "secret": sub.secret if reveal else mask_value(sub.secret),
        "created_at": iso(sub.created_at),
    }


def delivery_view(att: m.DeliveryAttempt, entry: m.OutboxEntry | None) -> WebhookAttemptView:
    """One attempt, with the event it carried and where its delivery stands now."""
    body = (entry.payload.get("body") if entry else None) or {}
    return {
        **attempt_view(att),
        "message_id": att.message_id,
        "event": {"id": body.get("id"), "type": body.get("type")},
        "delivery": (
            {
                "id": entry.id,
                "state": entry.state,
                "attempts": entry.attempts,
                "next_attempt_at": iso(entry.due_at) if entry.state == "pending" else None,
                "last_error": entry.last_error,
            }
            if entry
            else None
        ),
    }


class Webhooks:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def create(
        self, workspace_id: str, url: str, events: Sequence[str], secret: str | None = None
    ) -> WebhookView:
        """The new subscription, its signing secret shown in full this once."""
        sub = m.WebhookSubscription(
            id=new_id("wh"),
            workspace_id=workspace_id,
            url=url,
            secret=secret or SECRET_PREFIX + secrets.token_urlsafe(32),
            events=event_filter(events),
            active=True,
        )
        async with self.db.write() as session:
            session.add(sub)
        return subscription_view(sub, reveal=True)

    async def list(self, workspace_id: str, cursor: str | None, limit: int) -> Page[WebhookView]:
        query = select(m.WebhookSubscription).where(
            m.WebhookSubscription.workspace_id == workspace_id
        )
        async with self.db.read() as session:
            return await page(
                session, query, m.WebhookSubscription.id, cursor, limit, subscription_view
            )

    async def get(self, workspace_id: str, subscription_id: str) -> WebhookView:
        async with self.db.read() as session:
            return subscription_view(await _owned(session, workspace_id, subscription_id))

    async def delete(self, workspace_id: str, subscription_id: str) -> None:
        """Remove it; deliveries still waiting for it are cancelled (one in flight finishes)."""
        async with self.db.write() as session:
            sub = await _owned(session, workspace_id, subscription_id)
            await session.execute(
                update(m.OutboxEntry)
                .where(
                    m.OutboxEntry.workspace_id == workspace_id,
                    m.OutboxEntry.kind == outbox.WEBHOOK,
                    m.OutboxEntry.state == "pending",
                    m.OutboxEntry.payload["subscription_id"].as_string() == sub.id,
                )
                .values(state="cancelled", last_error="subscription deleted")
                .execution_options(synchronize_session=False)
            )
            await session.delete(sub)

    async def deliveries(
        self, workspace_id: str, subscription_id: str, cursor: str | None, limit: int
    ) -> Page[WebhookAttemptView]:
        """Delivery attempts for this subscription, newest first."""
        query = select(m.DeliveryAttempt).where(
            m.DeliveryAttempt.workspace_id == workspace_id,
            m.DeliveryAttempt.subscription_id == subscription_id,
        )
        if cursor:
            query = query.where(m.DeliveryAttempt.id < cursor)
        query = query.order_by(m.DeliveryAttempt.id.desc()).limit(limit + 1)
        async with self.db.read() as session:
            await _owned(session, workspace_id, subscription_id)
            attempts = (await session.scalars(query)).all()
            more, attempts = len(attempts) > limit, attempts[:limit]
            entries: dict[str, m.OutboxEntry] = {}
            if attempts:
                ids = {a.outbox_id for a in attempts}
                rows = await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.id.in_(ids)))
                entries = {e.id: e for e in rows}
        return {
            "data": [delivery_view(a, entries.get(a.outbox_id)) for a in attempts],
            "next_cursor": attempts[-1].id if more else None,
        }


async def _owned(
    session: AsyncSession, workspace_id: str, subscription_id: str
) -> m.WebhookSubscription:
    sub = await session.get(m.WebhookSubscription, subscription_id)
    if sub is None or sub.workspace_id != workspace_id:
        raise NotFound("webhook subscription not found")
    return sub
