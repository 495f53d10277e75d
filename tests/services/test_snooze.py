"""Snoozing until a time: the conversation opens again then (the worker's ``unsnooze``
entry), unless its status changed before, which cancels the wake-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from chat.db import models as m
from tests.api.test_inbox import send

DEADLINE = 20.0  # seconds to wait for the worker on a busy machine


async def wakes(services: Any, conversation_id: str) -> list[str]:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(m.OutboxEntry.state).where(
                m.OutboxEntry.kind == "unsnooze", m.OutboxEntry.ref_id == conversation_id
            )
        )
        return list(rows.all())


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_snoozed_conversation_opens_again_at_its_time(
    api: httpx.AsyncClient, services: Any
) -> None:
    conv = (await send(api, "user-1"))["conversation_id"]
    events: list[dict[str, Any]] = []

    async def record(event: Any) -> None:
        if event.type == "conversation.updated":
            events.append(event.data)

    services.bus.subscribe(record)
    r = await api.patch(
        f"/v1/conversations/{conv}", json={"status": "snoozed", "snoozed_until": soon(0.3)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "snoozed"
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while (await api.get(f"/v1/conversations/{conv}")).json()["status"] != "open":
        assert loop.time() < end, "the snooze never ended"
        await asyncio.sleep(0.05)
    assert await wakes(services, conv) == ["done"]
    assert [e["status"] for e in events if e["id"] == conv][-1] == "open"


async def test_a_status_change_before_the_time_cancels_the_wake_up(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    conv = (await send(api, "user-1"))["conversation_id"]
    url = f"/v1/conversations/{conv}"
    await api.patch(url, json={"status": "snoozed", "snoozed_until": soon(3600)})
    assert await wakes(services, conv) == ["pending"]
    await api.patch(url, json={"status": "snoozed", "snoozed_until": soon(7200)})
    assert sorted(await wakes(services, conv)) == ["cancelled", "pending"]
    await api.patch(url, json={"status": "resolved"})
    assert await wakes(services, conv) == ["cancelled", "cancelled"]
    # A wake-up that comes anyway (claimed just before) leaves a non-snoozed one alone.
    assert await services.inbox.wake(workspace["workspace_id"], conv) is False
    assert (await api.get(url)).json()["status"] == "resolved"


async def test_snoozed_until_is_checked(api: httpx.AsyncClient) -> None:
    conv = (await send(api, "user-1"))["conversation_id"]
    url = f"/v1/conversations/{conv}"
    for body in (
        {"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00Z"},  # past
        {"status": "pending", "snoozed_until": soon(60)},  # not a snooze
        {"status": "snoozed", "snoozed_until": "2030-01-01T00:00:00"},  # no time zone
    ):
        r = await api.patch(url, json=body)
        assert r.status_code == 422, r.text
    assert (await api.get(url)).json()["status"] == "open"
