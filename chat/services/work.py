"""Outbox rows as plain values, for the Core write paths (group commit, status moves).

``outbox.enqueue`` adds ORM entries one at a time; the write path builds many rows at
once and inserts them with one statement, so it builds them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.rows import WorkRow

_subs = cast(Table, m.WebhookSubscription.__table__)
_ACTIVE_SUBSCRIPTIONS = select(_subs).where(
    _subs.c.workspace_id.in_(bindparam("b_ws", expanding=True)), _subs.c.active.is_(True)
)
INSERT_WORK = insert(cast(Table, m.OutboxEntry.__table__))

Subscriptions = Mapping[str, list[Any]]


async def subscriptions(conn: AsyncConnection, workspace_ids: Iterable[str]) -> Subscriptions:
    """The active webhook subscriptions of each workspace."""
    found: dict[str, list[Any]] = {}
    ids = list(set(workspace_ids))
    if not ids:
        return found
    for r in await conn.execute(_ACTIVE_SUBSCRIPTIONS, {"b_ws": ids}):
        found.setdefault(r.workspace_id, []).append(r)
    return found


def work_row(
    workspace_id: str,
    kind: str,
    ref_id: str | None,
    payload: dict[str, Any],
    due: datetime | None = None,
    lane: str | None = None,
) -> WorkRow:
    """An outbox row; ``lane`` groups work that shares an outside party (see ``worker``)."""
    now = utcnow()
    return {
        "id": new_id("obx"), "workspace_id": workspace_id, "kind": kind, "ref_id": ref_id,
        "lane": lane, "payload": payload, "state": "pending", "attempts": 0,
        "due_at": due or now, "lease_until": None, "claim": None, "last_error": None,
        "created_at": now,
    }


def delivery_row(workspace_id: str, message_id: str, channel_id: str, address: str | None) -> WorkRow:
    """Send a stored outbound message through its channel's connector; ``address`` is the
    one the sender named (a contact may have several on one channel type)."""
    payload: dict[str, Any] = {"message_id": message_id}
    if address is not None:
        payload["address"] = address
    return work_row(workspace_id, outbox.DELIVER, message_id, payload, lane=outbox.delivery_lane(channel_id))


def webhook_rows(
    subs: Subscriptions,
    workspace_id: str,
    ref_id: str | None,
    event_type: str,
    data: Mapping[str, Any],
    notify_url: str | None = None,
) -> list[WorkRow]:
    """One signed POST per interested subscription, and one to ``notify_url``."""
    targets = [s for s in subs.get(workspace_id, ()) if outbox.subscription_wants(s, event_type)]
    if not targets and not notify_url:
        return []
    body = outbox.envelope(workspace_id, event_type, data)
    rows = [
        work_row(
            workspace_id, outbox.WEBHOOK, ref_id, {"url": s.url, "subscription_id": s.id, "body": body},
            lane=outbox.webhook_lane(s.url, s.id),
        )
        for s in targets
    ]
    if notify_url:
        rows.append(work_row(
            workspace_id, outbox.WEBHOOK, ref_id, {"url": notify_url, "subscription_id": None, "body": body},
            lane=outbox.webhook_lane(notify_url, None),
        ))
    return rows
