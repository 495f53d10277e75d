"""Every path that sets a message status keeps to the rule: forward only, final is final.

The paths: ``DELETE /v1/messages/{id}`` (cancel), the release of a scheduled message by
the worker, and ``Messages.set_status`` (what a delivery, a provider's status callback or
a give-up calls). Receipts over the sockets
are in tests/realtime/test_receipts.py. Each start state is reached the way production
reaches it, on a fresh message per pair.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.enums import MessageStatus
from tests.domain.test_status_rules import ALLOWED

S = MessageStatus
# How to bring a fresh message to each start state (after it was sent or scheduled).
ROUTES: dict[MessageStatus, list[MessageStatus]] = {
    S.SCHEDULED: [],
    S.CANCELLED: [],  # by DELETE, below
    S.SENT: [],
    S.DELIVERED: [S.DELIVERED],
    S.READ: [S.DELIVERED, S.READ],
    S.FAILED: [S.FAILED],
}


async def fresh_message(api: httpx.AsyncClient, services: Any, ws: str, start: MessageStatus) -> str:
    body: dict[str, Any] = {
        "channel": "inapp",
        "to": {"address": "status-user"},
        "content": {"type": "text", "text": f"to be {start}"},
    }
    if start in (S.SCHEDULED, S.CANCELLED):
        body["send_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    resp = await api.post("/v1/messages", json=body)
    assert resp.status_code == 202, resp.text
    message_id = str(resp.json()["messages"][0]["message_id"])
    if start is S.CANCELLED:
        assert (await api.delete(f"/v1/messages/{message_id}")).status_code == 200
    for step in ROUTES[start]:
        assert await services.messages.set_status(ws, message_id, step)
    return message_id


async def statuses(api: httpx.AsyncClient, message_id: str) -> tuple[str, list[str]]:
    body = (await api.get(f"/v1/messages/{message_id}")).json()
    return body["status"], [h["status"] for h in body["status_history"]]


async def test_set_status_moves_exactly_the_allowed_pairs(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    wrong = []
    for start in ROUTES:
        for target in MessageStatus:
            message_id = await fresh_message(api, services, ws, start)
            status, before = await statuses(api, message_id)
            assert status == start.value
            moved = await services.messages.set_status(ws, message_id, target)
            status, after = await statuses(api, message_id)
            allowed = (start, target) in ALLOWED
            expected = (target.value, [*before, target.value]) if allowed else (start.value, before)
            if moved is not allowed or (status, after) != expected:
                wrong.append((start.value, target.value, moved, status, after))
    assert wrong == []


async def test_a_cancelled_message_stays_cancelled(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    message_id = await fresh_message(api, services, ws, S.CANCELLED)
    again = await api.delete(f"/v1/messages/{message_id}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_scheduled"
    for target in MessageStatus:
        assert await services.messages.set_status(ws, message_id, target) is False
    assert await statuses(api, message_id) == ("cancelled", ["scheduled", "cancelled"])


async def test_only_a_scheduled_message_can_be_cancelled(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    for start in (S.SENT, S.DELIVERED, S.READ, S.FAILED):
        message_id = await fresh_message(api, services, ws, start)
        before = await statuses(api, message_id)
        resp = await api.delete(f"/v1/messages/{message_id}")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "not_scheduled"
        assert await statuses(api, message_id) == before, start


async def make_due_now(services: Any) -> None:
    """Time passes: every pending outbox entry (a release among them) is due now."""
    async with services.db.write() as session:
        await session.execute(
            update(m.OutboxEntry).where(m.OutboxEntry.state == "pending").values(due_at=utcnow())
        )


async def test_release_moves_a_scheduled_message_forward_and_never_a_cancelled_one(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    waiting = await fresh_message(api, services, ws, S.SCHEDULED)
    cancelled = await fresh_message(api, services, ws, S.CANCELLED)
    await make_due_now(services)
    await runtime.worker.drain()
    assert await statuses(api, waiting) == ("sent", ["scheduled", "sent"])
    assert await statuses(api, cancelled) == ("cancelled", ["scheduled", "cancelled"])

    # Released once: nothing due any more moves it again, and it can no longer be cancelled.
    await make_due_now(services)
    await runtime.worker.drain()
    assert (await api.delete(f"/v1/messages/{waiting}")).status_code == 409
    assert await statuses(api, waiting) == ("sent", ["scheduled", "sent"])
