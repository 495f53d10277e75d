"""Delivery records and provider status callbacks (``Deliveries.apply_status``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.deliveries import Deliveries, Outcome
from chat.services.inbound import ProviderChannel
from chat.settings import Settings
from connectors.base import Watermark
from tests.fakes.outbound import (
    CHANNEL_TYPE,
    Queued,
    message_status,
    provider_channel,
    queued_message,
    status_history,
    webhook_statuses,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


@pytest.fixture
def deliveries(services: Any) -> Deliveries:
    return Deliveries(services.db, services.bus)


@pytest.fixture
def events(services: Any) -> list[DomainEvent]:
    seen: list[DomainEvent] = []

    async def collect(event: DomainEvent) -> None:
        seen.append(event)

    services.bus.subscribe(collect)
    return seen


@pytest.fixture
async def channel(services: Any, workspace: dict[str, str]) -> str:
    return await provider_channel(services.db, workspace["workspace_id"], "http://127.0.0.1:9")


async def sent(
    services: Any, deliveries: Deliveries, queued: Queued, provider_message_id: str
) -> None:
    """What the deliver handler records when the provider accepts the message."""
    plan = await deliveries.prepare(queued.message_id)
    assert plan is not None
    async with services.db.read() as s:
        entry = await s.scalar(
            select(m.OutboxEntry).where(
                m.OutboxEntry.ref_id == queued.message_id, m.OutboxEntry.kind == outbox.DELIVER
            )
        )
    assert entry is not None
    await deliveries.record(
        entry, plan, Outcome(ok=True, duration_ms=5, provider_message_id=provider_message_id)
    )


async def test_status_callbacks_move_a_message_forward_and_never_back(
    services: Any,
    workspace: dict[str, str],
    channel: str,
    deliveries: Deliveries,
    events: list[DomainEvent],
) -> None:
    queued = await queued_message(
        services.db,
        workspace["workspace_id"],
        channel,
        "+15550100",
        notify_url="https://hooks.example.com/n",
    )
    await sent(services, deliveries, queued, "SM1")

    applied = [
        await deliveries.apply_status(channel, "SM1", status)
        for status in ("delivered", "sent", "read", "delivered", "failed", "read")
    ]
    assert applied == ["moved", "stale", "moved", "stale", "stale", "stale"]
    assert await message_status(services.db, queued.message_id) == "read"
    history = [s for s, _ in await status_history(services.db, queued.message_id)]
    assert history == ["queued", "sent", "delivered", "read"]
    assert await webhook_statuses(services.db, queued.message_id) == ["sent", "delivered", "read"]
    assert [e.data["status"] for e in events if e.type == "message.status"] == [
        "sent",
        "delivered",
        "read",
    ]


async def test_callbacks_arriving_out_of_order_end_at_the_furthest_status(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await sent(services, deliveries, queued, "SM2")
    assert await deliveries.apply_status(channel, "SM2", "read") == "moved"
    assert await deliveries.apply_status(channel, "SM2", "delivered") == "stale"
    assert await deliveries.apply_status(channel, "SM2", "sent") == "stale"
    assert await message_status(services.db, queued.message_id) == "read"
    assert [s for s, _ in await status_history(services.db, queued.message_id)] == [
        "queued",
        "sent",
        "read",
    ]


async def test_concurrent_callbacks_never_move_a_status_backwards(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    ws = workspace["workspace_id"]
    queued = [await queued_message(services.db, ws, channel, f"+1555010{i:02d}") for i in range(20)]
    for i, q in enumerate(queued):
        await sent(services, deliveries, q, f"SM-{i}")

    # Every message gets its delivered and read callbacks at once, in both orders.
    await asyncio.gather(
        *(
            deliveries.apply_status(channel, f"SM-{i}", status)
            for i in range(20)
            for status in (("delivered", "read") if i % 2 else ("read", "delivered"))
        )
    )
    assert {await message_status(services.db, q.message_id) for q in queued} == {"read"}
    for q in queued:
        history = [s for s, _ in await status_history(services.db, q.message_id)]
        assert history in (["queued", "sent", "delivered", "read"], ["queued", "sent", "read"])


async def test_a_failed_callback_records_the_providers_code_and_message(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    queued = await queued_message(
        services.db,
        workspace["workspace_id"],
        channel,
        "+15550100",
        notify_url="https://hooks.example.com/n",
    )
    await sent(services, deliveries, queued, "SM3")
    moved = await deliveries.apply_status(channel, "SM3", "failed", "30003", "Unreachable handset")
    assert moved == "moved"
    assert (await status_history(services.db, queued.message_id))[-1] == (
        "failed",
        {"by": "provider", "code": "30003", "message": "Unreachable handset", "status_code": None},
    )
    assert await deliveries.apply_status(channel, "SM3", "delivered") == "stale"  # failed is final
    assert await webhook_statuses(services.db, queued.message_id) == ["sent", "failed"]


async def test_a_provider_id_is_found_only_on_its_own_channel(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    ws = workspace["workspace_id"]
    other = await provider_channel(services.db, ws, "http://127.0.0.1:9")
    mine = await queued_message(services.db, ws, channel, "+15550100")
    theirs = await queued_message(services.db, ws, other, "+15550101")
    await sent(services, deliveries, mine, "SAME")
    await sent(services, deliveries, theirs, "SAME")  # providers' ids are unique per channel

    assert await deliveries.apply_status(other, "SAME", "delivered") == "moved"
    assert await deliveries.apply_status(channel, "NOPE", "delivered") == "unknown"
    assert await message_status(services.db, mine.message_id) == "sent"
    assert await message_status(services.db, theirs.message_id) == "delivered"

    record = await deliveries.of_message(ws, theirs.message_id)
    assert record["delivery"] == {
        **record["delivery"],
        "channel_id": other,
        "channel_type": CHANNEL_TYPE,
        "address": "+15550101",
        "provider_message_id": "SAME",
    }
    assert [(a["ok"], a["target"]) for a in record["attempts"]] == [(True, "telegram:+15550101")]
    assert (await deliveries.of_message("another-workspace", theirs.message_id)) == {
        "delivery": None,
        "attempts": [],
    }

    # The database refuses a second message with one provider id on one channel.
    extra = await queued_message(services.db, ws, channel, "+15550102")
    with pytest.raises(IntegrityError):
        async with services.db.write() as s:
            s.add(
                m.Delivery(
                    id=new_id("dlv"),
                    workspace_id=ws,
                    message_id=extra.message_id,
                    channel_id=channel,
                    channel_type=CHANNEL_TYPE,
                    address="+15550102",
                    provider_message_id="SAME",
                )
            )


# -- watermarks: "everything sent to this customer up to this time" ------------------------


async def test_a_read_watermark_reads_every_handed_over_message_to_that_sender_up_to_its_time(
    services: Any,
    workspace: dict[str, str],
    channel: str,
    deliveries: Deliveries,
    events: list[DomainEvent],
) -> None:
    ws = workspace["workspace_id"]
    here = ProviderChannel(channel, ws, CHANNEL_TYPE)
    first = await queued_message(
        services.db, ws, channel, "+15550100", notify_url="https://hooks.example.com/n"
    )
    second = await queued_message(services.db, ws, channel, "+15550100", contact_id=first.contact_id)
    someone_else = await queued_message(services.db, ws, channel, "+15550199")
    await sent(services, deliveries, first, "W1")
    await sent(services, deliveries, second, "W2")
    await sent(services, deliveries, someone_else, "W3")
    between = utcnow()
    later = await queued_message(services.db, ws, channel, "+15550100", contact_id=first.contact_id)
    await sent(services, deliveries, later, "W4")
    never_handed_over = await queued_message(
        services.db, ws, channel, "+15550100", contact_id=first.contact_id
    )
    events.clear()

    moved = await deliveries.apply_watermark(here, Watermark("+15550100", "read", between))

    assert moved == 2
    assert [await message_status(services.db, q.message_id) for q in (first, second)] == [
        "read",
        "read",
    ]
    assert await message_status(services.db, later.message_id) == "sent"  # after the watermark
    assert await message_status(services.db, someone_else.message_id) == "sent"
    assert await message_status(services.db, never_handed_over.message_id) == "queued"
    assert (await status_history(services.db, first.message_id))[-1] == (
        "read",
        {"by": "provider", "watermark": between.isoformat()},
    )
    assert await webhook_statuses(services.db, first.message_id) == ["sent", "read"]  # notify_url
    assert sorted(e.data["message_id"] for e in events if e.type == "message.status") == sorted(
        [first.message_id, second.message_id]
    )


async def test_watermarks_only_move_forward_and_repeat_harmlessly(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    ws = workspace["workspace_id"]
    here = ProviderChannel(channel, ws, CHANNEL_TYPE)
    queued = await queued_message(services.db, ws, channel, "+15550100")
    await sent(services, deliveries, queued, "W5")
    now = utcnow()

    assert await deliveries.apply_watermark(here, Watermark("+15550100", "read", now)) == 1
    assert await deliveries.apply_watermark(here, Watermark("+15550100", "delivered", now)) == 0
    assert await deliveries.apply_watermark(here, Watermark("+15550100", "read", now)) == 0
    assert [s for s, _ in await status_history(services.db, queued.message_id)] == [
        "queued",
        "sent",
        "read",
    ]


async def test_a_watermark_stays_on_its_own_channel(
    services: Any, workspace: dict[str, str], channel: str, deliveries: Deliveries
) -> None:
    ws = workspace["workspace_id"]
    other = await provider_channel(services.db, ws, "http://127.0.0.1:9")
    mine = await queued_message(services.db, ws, channel, "+15550100")
    theirs = await queued_message(services.db, ws, other, "+15550100", contact_id=mine.contact_id)
    await sent(services, deliveries, mine, "W6")
    await sent(services, deliveries, theirs, "W7")

    mark = Watermark("+15550100", "delivered", utcnow())
    assert await deliveries.apply_news(ProviderChannel(other, ws, CHANNEL_TYPE), [mark]) is None
    assert await message_status(services.db, theirs.message_id) == "delivered"
    assert await message_status(services.db, mine.message_id) == "sent"
