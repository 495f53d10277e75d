"""The ``deliver`` handler and the worker, against a fake provider on 127.0.0.1.

Each test starts from a queued message and its outbox entry (tests/fakes/outbound.py)
and runs a worker with the real handlers: ``deliver`` through ``FakeConnector`` to a
``FakeProvider``, and ``webhook`` to a real receiver for ``notify_url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select, update

from chat.bus import DomainEvent
from chat.db import models as m
from chat.domain.ids import new_id
from chat.listeners.deliver import Deliver
from chat.listeners.webhook_delivery import WebhookDelivery
from chat.services import outbox
from chat.services.deliveries import Deliveries
from chat.settings import Settings
from chat.worker import Worker
from connectors.base import Connector
from tests.fakes.outbound import (
    CHANNEL_TYPE,
    message_status,
    provider_channel,
    queued_message,
    status_history,
)
from tests.fakes.provider import HANG, Accept, Fail, FakeConnector, FakeProvider
from tests.fakes.webhook_receiver import WebhookReceiver

T = TypeVar("T")
MAX_ATTEMPTS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "worker_enabled": False,  # the tests' own worker runs the outbox
            "max_delivery_attempts": MAX_ATTEMPTS,
            "worker_max_per_lane": 1,
        }
    )


@pytest.fixture
async def provider(runtime: Any) -> AsyncIterator[FakeProvider]:
    fake = await FakeProvider().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def receiver(runtime: Any) -> AsyncIterator[WebhookReceiver]:
    fake = await WebhookReceiver().start()
    yield fake
    await fake.stop()


@pytest.fixture
def connectors() -> dict[str, type[Connector]]:
    """The registry the handler is given; a test may take a type out."""
    return {CHANNEL_TYPE: FakeConnector}


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
async def worker(
    services: Any,
    runtime: Any,
    deliveries: Deliveries,
    connectors: dict[str, type[Connector]],
    provider: FakeProvider,
) -> AsyncIterator[Worker]:
    w = Worker(services.db, services.settings, services.bus)
    w.register(outbox.DELIVER, Deliver(deliveries, runtime.http, connectors.get, timeout=5.0))
    w.register(outbox.WEBHOOK, WebhookDelivery(services.db, runtime.http, 2.0, True))
    services.bus.on_outbox_written(w.wake)
    w.start()
    yield w
    provider.release()
    await w.stop()


@pytest.fixture
async def channel(services: Any, workspace: dict[str, str], provider: FakeProvider) -> str:
    return await provider_channel(services.db, workspace["workspace_id"], provider.url)


async def eventually(
    read: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 10
) -> T:
    async with asyncio.timeout(timeout):
        while not check(value := await read()):
            await asyncio.sleep(0.02)
    return value


async def settled(services: Any, message_id: str, status: str) -> None:
    await eventually(lambda: message_status(services.db, message_id), lambda s: s == status)


async def attempts(
    services: Any, message_id: str
) -> list[tuple[int, bool, int | None, str | None]]:
    async with services.db.read() as s:
        rows = (
            await s.scalars(
                select(m.DeliveryAttempt)
                .where(m.DeliveryAttempt.message_id == message_id)
                .order_by(m.DeliveryAttempt.id)
            )
        ).all()
    return [(a.attempt, a.ok, a.status_code, a.error_code) for a in rows]


async def test_a_message_goes_out_through_its_channels_connector_and_is_recorded(
    services: Any,
    workspace: dict[str, str],
    worker: Worker,
    provider: FakeProvider,
    channel: str,
    deliveries: Deliveries,
    events: list[DomainEvent],
) -> None:
    queued = await queued_message(
        services.db, workspace["workspace_id"], channel, "+15550100", "hi!"
    )
    await settled(services, queued.message_id, "sent")

    [send] = provider.sends
    assert (send.to, send.text, send.idempotency_key) == ("+15550100", "hi!", queued.message_id)
    record = await deliveries.of_message(workspace["workspace_id"], queued.message_id)
    assert record["delivery"]["address"] == "+15550100"
    assert record["delivery"]["provider_message_id"] == send.provider_message_id
    assert record["delivery"]["channel_id"] == channel
    assert [(a["attempt"], a["ok"]) for a in record["attempts"]] == [(1, True)]
    assert [s for s, _ in await status_history(services.db, queued.message_id)] == [
        "queued",
        "sent",
    ]
    assert [
        (e.type, e.data["status"]) for e in events if e.data.get("message_id") == queued.message_id
    ] == [("message.status", "sent")]


async def test_a_provider_that_confirms_delivery_moves_the_message_to_delivered(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    provider.respond(Accept("delivered"))
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "delivered")
    history = [s for s, _ in await status_history(services.db, queued.message_id)]
    assert history == ["queued", "delivered"]


async def test_a_5xx_is_retried_and_then_sent(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    provider.respond(Fail(503, "unavailable", "try again later"))
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "sent")

    assert [s.outcome for s in provider.sends] == ["answered", "answered"]
    assert await attempts(services, queued.message_id) == [
        (1, False, 503, "unavailable"),
        (2, True, None, None),
    ]


async def test_a_429_waits_at_least_its_retry_after(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    retry_after = 0.6  # far above the test settings' backoff (retry_base_seconds 0.05)
    provider.respond(Fail(429, "rate_limited", "slow down", retry_after=retry_after))
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "sent")

    first, second = provider.sends
    assert second.at - first.at >= retry_after
    assert await attempts(services, queued.message_id) == [
        (1, False, 429, "rate_limited"),
        (2, True, None, None),
    ]


async def test_a_permanent_error_fails_the_message_at_once_with_the_providers_reason(
    services: Any,
    workspace: dict[str, str],
    worker: Worker,
    provider: FakeProvider,
    channel: str,
    receiver: WebhookReceiver,
    events: list[DomainEvent],
    api: httpx.AsyncClient,
) -> None:
    provider.respond(Fail(400, "21211", "The 'To' number is not a valid phone number"))
    queued = await queued_message(
        services.db,
        workspace["workspace_id"],
        channel,
        "+15550100",
        notify_url=receiver.url + "/notify",
    )
    await settled(services, queued.message_id, "failed")

    assert len(provider.sends) == 1
    history = await status_history(services.db, queued.message_id)
    assert history[-1] == (
        "failed",
        {
            "code": "21211",
            "message": "The 'To' number is not a valid phone number",
            "status_code": 400,
        },
    )
    [hook] = await receiver.wait_count(1, "/notify")
    assert hook.json()["data"]["status"] == "failed"
    assert hook.json()["data"]["error"]["code"] == "21211"
    assert [
        (e.type, e.data["status"]) for e in events if e.data.get("message_id") == queued.message_id
    ] == [("message.status", "failed")]

    shown = (await api.get(f"/v1/messages/{queued.message_id}")).json()
    assert shown["status"] == "failed"
    [attempt] = [a for a in shown["delivery_attempts"] if a["target"].startswith(CHANNEL_TYPE)]
    assert (attempt["ok"], attempt["status_code"], attempt["error_code"]) == (False, 400, "21211")
    assert attempt["error"] == "The 'To' number is not a valid phone number"


async def test_the_last_retryable_failure_fails_the_message(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    provider.respond(*[Fail(503, "unavailable", "down for maintenance")] * MAX_ATTEMPTS)
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "failed")

    assert len(provider.sends) == MAX_ATTEMPTS
    assert [a[0] for a in await attempts(services, queued.message_id)] == [1, 2, 3]
    assert (await status_history(services.db, queued.message_id))[-1] == (
        "failed",
        {"code": "unavailable", "message": "down for maintenance", "status_code": 503},
    )


async def test_a_channel_type_without_a_connector_fails_the_message(
    services: Any,
    workspace: dict[str, str],
    worker: Worker,
    provider: FakeProvider,
    channel: str,
    connectors: dict[str, type[Connector]],
) -> None:
    connectors.clear()
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "failed")
    assert provider.sends == []
    [(status, detail)] = (await status_history(services.db, queued.message_id))[-1:]
    assert (status, detail["code"]) == ("failed", "channel_not_supported")


async def test_the_newest_address_is_used_unless_the_message_names_one(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    ws = workspace["workspace_id"]
    first = await queued_message(services.db, ws, channel, "+15550100")
    await settled(services, first.message_id, "sent")
    async with services.db.write() as s:  # the contact gets a second, newer number
        s.add(
            m.ContactIdentity(
                id=new_id("idn"),
                workspace_id=ws,
                contact_id=first.contact_id,
                channel_type=CHANNEL_TYPE,
                address="+15550199",
            )
        )
    newest = await queued_message(services.db, ws, channel, "", contact_id=first.contact_id)
    await settled(services, newest.message_id, "sent")

    named = await queued_message(
        services.db, ws, channel, "", contact_id=first.contact_id, to="+15550100"
    )
    await settled(services, named.message_id, "sent")
    assert [s.to for s in provider.sends] == ["+15550100", "+15550199", "+15550100"]


async def test_a_rerun_after_the_provider_accepted_sends_nothing_again(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    queued = await queued_message(services.db, workspace["workspace_id"], channel, "+15550100")
    await settled(services, queued.message_id, "sent")
    await worker.drain()
    # As if the process died after the attempt was committed, before the entry was done.
    async with services.db.write() as s:
        await s.execute(
            update(m.OutboxEntry)
            .where(m.OutboxEntry.ref_id == queued.message_id, m.OutboxEntry.kind == outbox.DELIVER)
            .values(state="pending", lease_until=None)
        )
    await worker.drain()
    async with services.db.read() as s:
        entry = await s.scalar(
            select(m.OutboxEntry).where(
                m.OutboxEntry.ref_id == queued.message_id, m.OutboxEntry.kind == outbox.DELIVER
            )
        )
    assert entry is not None and (entry.state, entry.attempts) == ("done", 2)
    assert len(provider.sends) == 1


async def test_a_hanging_provider_does_not_hold_up_another_channels_deliveries(
    services: Any, workspace: dict[str, str], worker: Worker, provider: FakeProvider, channel: str
) -> None:
    ws = workspace["workspace_id"]
    healthy = await FakeProvider().start()
    try:
        other = await provider_channel(services.db, ws, healthy.url)
        provider.respond(HANG)
        stuck = [await queued_message(services.db, ws, channel, f"+1555010{i}") for i in range(3)]
        await provider.wait_for(lambda p: len(p.holding) == 1)
        flowing = [await queued_message(services.db, ws, other, f"+1555020{i}") for i in range(5)]
        for q in flowing:
            await settled(services, q.message_id, "sent")

        # The hanging channel holds its one slot (worker_max_per_lane=1); its other
        # messages wait unclaimed, and every other channel's messages went out.
        assert len(healthy.accepted) == 5
        assert len(provider.sends) == 1
        assert {await message_status(services.db, q.message_id) for q in stuck} == {"queued"}

        provider.release()
        for q in stuck:
            await settled(services, q.message_id, "sent")
        assert len(provider.sends) == 3
    finally:
        await healthy.stop()


async def test_two_workers_share_the_outbox_and_send_each_message_once(
    services: Any,
    runtime: Any,
    workspace: dict[str, str],
    worker: Worker,
    provider: FakeProvider,
    channel: str,
    deliveries: Deliveries,
    connectors: dict[str, type[Connector]],
) -> None:
    second = Worker(
        services.db, services.settings.model_copy(update={"worker_max_per_lane": 4}), services.bus
    )
    second.register(outbox.DELIVER, Deliver(deliveries, runtime.http, connectors.get, timeout=5.0))
    second.start()
    try:
        queued = [
            await queued_message(services.db, workspace["workspace_id"], channel, f"+155501{i:03d}")
            for i in range(20)
        ]
        for q in queued:
            await settled(services, q.message_id, "sent")
    finally:
        await second.stop()
    keys = [s.idempotency_key for s in provider.sends]
    assert sorted(keys) == sorted(q.message_id for q in queued)
