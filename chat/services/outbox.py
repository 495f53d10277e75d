"""Writing durable work into the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.ids import new_id
from chat.services.views import iso

WEBHOOK = "webhook"
RELEASE = "release"
DELIVER = "deliver"
UNSNOOZE = "unsnooze"  # a snoozed conversation's time is up (chat.listeners.unsnooze)


class WebhookEnvelope(TypedDict):
    """The JSON every webhook receiver gets."""

    id: str
    type: str
    workspace_id: str
    created_at: str
    data: Mapping[str, Any]


def enqueue(
    session: AsyncSession,
    *,
    workspace_id: str,
    kind: str,
    payload: dict[str, Any],
    ref_id: str | None = None,
    due_at: datetime | None = None,
    lane: str | None = None,
) -> m.OutboxEntry:
    entry = m.OutboxEntry(
        id=new_id("obx"),
        workspace_id=workspace_id,
        kind=kind,
        ref_id=ref_id,
        lane=lane,
        payload=payload,
        due_at=due_at or utcnow(),
    )
    session.add(entry)
    return entry


def enqueue_delivery(
    session: AsyncSession,
    *,
    workspace_id: str,
    message_id: str,
    channel_id: str,
    address: str | None = None,
    due_at: datetime | None = None,
) -> m.OutboxEntry:
    """Send a stored outbound message through its channel's connector (``listeners.deliver``).

    ``address`` is the recipient address the sender named, when it named one: a contact
    may have several on one channel type, and without it the newest is used.
    """
    payload: dict[str, Any] = {"message_id": message_id}
    if address is not None:
        payload["address"] = address
    return enqueue(
        session,
        workspace_id=workspace_id,
        kind=DELIVER,
        ref_id=message_id,
        payload=payload,
        due_at=due_at,
        lane=delivery_lane(channel_id),
    )


def delivery_lane(channel_id: str) -> str:
    """Sends on one channel share a lane: one provider's outage fills only its own."""
    return channel_id


def webhook_lane(url: str, subscription_id: str | None) -> str:
    """A subscription's deliveries share a lane; ``notify_url`` posts share one per host."""
    if subscription_id is not None:
        return subscription_id
    return "notify:" + (urlsplit(url).hostname or "")


def envelope(workspace_id: str, event_type: str, data: Mapping[str, Any]) -> WebhookEnvelope:
    """The JSON every webhook receiver gets."""
    return {
        "id": new_id("evt"),
        "type": event_type,
        "workspace_id": workspace_id,
        "created_at": iso(utcnow()),
        "data": data,
    }


def subscription_wants(sub: Any, event_type: str) -> bool:
    wanted = sub.events or ["*"]
    return any(
        w == "*" or w == event_type or (w.endswith(".*") and event_type.startswith(w[:-1]))
        for w in wanted
    )


async def enqueue_webhooks(
    session: AsyncSession,
    workspace_id: str,
    event_type: str,
    data: Mapping[str, Any],
    *,
    message_id: str | None = None,
    notify_url: str | None = None,
) -> int:
    """One signed POST per interested subscription (and to ``notify_url``). Returns the count."""
    body = envelope(workspace_id, event_type, data)
    subs = (
        await session.scalars(
            select(m.WebhookSubscription).where(
                m.WebhookSubscription.workspace_id == workspace_id,
                m.WebhookSubscription.active.is_(True),
            )
        )
    ).all()
    count = 0
    for sub in subs:
        if subscription_wants(sub, event_type):
            enqueue(
                session,
                workspace_id=workspace_id,
                kind=WEBHOOK,
                ref_id=message_id,
                payload={"url": sub.url, "subscription_id": sub.id, "body": body},
                lane=webhook_lane(sub.url, sub.id),
            )
            count += 1
    if notify_url:
        enqueue(
            session,
            workspace_id=workspace_id,
            kind=WEBHOOK,
            ref_id=message_id,
            payload={"url": notify_url, "subscription_id": None, "body": body},
            lane=webhook_lane(notify_url, None),
        )
        count += 1
    return count
