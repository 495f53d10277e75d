"""The outbox worker: leases, giving up, retry delays, and slots per kind and lane.

Workers here are separate ``Worker`` instances on one database, as separate processes
would be; their handlers are small probes that say when they run and wait to be let go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.types import utcnow
from chat.services import outbox
from chat.settings import Settings
from chat.worker import Worker, backoff_seconds
from connectors.errors import DeliveryError, GiveUp, RetryLater

LEASE = 0.3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"worker_enabled": False, "worker_lease_seconds": LEASE, "max_delivery_attempts": 2}
    )


class Probe:
    """Runs until let go, then succeeds or raises ``outcome``; records ``gave_up`` calls."""

    def __init__(self, outcome: Exception | None = None) -> None:
        self.outcome = outcome
        self.runs: list[str] = []  # entry ids, one per run
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.given_up: list[tuple[str, DeliveryError]] = []

    async def __call__(self, entry: m.OutboxEntry) -> None:
        self.runs.append(entry.id)
        self.started.set()
        await self.go.wait()
        if self.outcome is not None:
            raise self.outcome

    async def gave_up(
        self, session: AsyncSession, entry: m.OutboxEntry, error: DeliveryError
    ) -> Sequence[DomainEvent]:
        self.given_up.append((entry.id, error))
        return []


@pytest.fixture
async def workers(services: Any) -> AsyncIterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for w in made:
        await w.stop()


def new_worker(services: Any, made: list[Worker], probe: Any, **overrides: Any) -> Worker:
    settings = services.settings.model_copy(update=overrides)
    w = Worker(services.db, settings, services.bus)
    w.register("probe", probe)
    made.append(w)
    return w


async def add_entries(services: Any, workspace_id: str, *lanes: str | None) -> list[str]:
    async with services.db.write() as s:
        entries = [
            outbox.enqueue(s, workspace_id=workspace_id, kind="probe", payload={}, lane=lane)
            for lane in lanes
        ]
    return [e.id for e in entries]


async def entry(services: Any, entry_id: str) -> m.OutboxEntry:
    async with services.db.read() as s:
        found = await s.get(m.OutboxEntry, entry_id)
    assert found is not None
    return found


# --- leases ----------------------------------------------------------------------------------


async def test_a_handler_running_past_its_lease_is_not_run_again_by_another_worker(
    services: Any, workspace: dict[str, str], workers: list[Worker]
) -> None:
    probe = Probe()
    a, b = new_worker(services, workers, probe), new_worker(services, workers, probe)
    [entry_id] = await add_entries(services, workspace["workspace_id"], None)
    assert await a.run_due() == 1
    await probe.started.wait()
    first_lease = (await entry(services, entry_id)).lease_until
    assert first_lease is not None

    # Wait (bounded) until the first lease has run out by the clock, twice over: only
    # the heartbeat keeps the entry A's.
    async with asyncio.timeout(10):
        while utcnow() < first_lease + timedelta(seconds=LEASE):
            await asyncio.sleep(LEASE / 4)
            assert await b.run_due() == 0
    renewed = await entry(services, entry_id)
    assert renewed.lease_until is not None and renewed.lease_until > first_lease
    assert await b.run_due() == 0

    probe.go.set()
    await a.drain()
    assert probe.runs == [entry_id]
    assert (await entry(services, entry_id)).state == "done"


async def test_a_stale_workers_final_update_changes_nothing(
    services: Any, workspace: dict[str, str], workers: list[Worker]
) -> None:
    stale = Probe(GiveUp("too late", code="late"))
    a = new_worker(services, workers, stale, worker_lease_seconds=60.0)
    [entry_id] = await add_entries(services, workspace["workspace_id"], None)
    assert await a.run_due() == 1
    await stale.started.wait()

    # A stalls (its renewals never reach the database) and its lease runs out ...
    async with services.db.write() as s:
        await s.execute(
            update(m.OutboxEntry)
            .where(m.OutboxEntry.id == entry_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    # ... so B takes the entry over.
    fresh = Probe()
    b = new_worker(services, workers, fresh)
    assert await b.run_due() == 1
    await fresh.started.wait()
    taken = await entry(services, entry_id)
    assert (taken.state, taken.attempts) == ("pending", 2)

    # A wakes up and fails: its final update is conditional on its claim and changes
    # nothing, while B still runs the entry.
    stale.go.set()
    await a.drain()
    after = await entry(services, entry_id)
    assert (after.state, after.claim, after.last_error) == ("pending", taken.claim, None)
    assert stale.given_up == []

    fresh.go.set()
    await b.drain()
    assert (await entry(services, entry_id)).state == "done"
    assert fresh.runs == stale.runs == [entry_id]


# --- giving up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [GiveUp("refused", code="21610"), RetryLater("busy", code="busy", status_code=503)],
    ids=["give-up", "retry-later"],
)
async def test_a_handler_is_told_once_when_its_entry_is_given_up(
    services: Any, workspace: dict[str, str], workers: list[Worker], error: DeliveryError
) -> None:
    probe = Probe(error)
    probe.go.set()
    w = new_worker(services, workers, probe, retry_base_seconds=0.0, retry_max_seconds=0.0)
    [entry_id] = await add_entries(services, workspace["workspace_id"], None)
    await w.drain()  # max_delivery_attempts=2: a RetryLater is tried twice

    failed = await entry(services, entry_id)
    assert failed.state == "failed"
    assert failed.last_error == f"{error.message} ({error.code})"
    assert probe.given_up == [(entry_id, error)]
    assert len(probe.runs) == (2 if isinstance(error, RetryLater) else 1)


async def test_an_entry_without_a_handler_fails_with_no_handler(
    services: Any, workspace: dict[str, str], workers: list[Worker]
) -> None:
    w = new_worker(services, workers, Probe())
    async with services.db.write() as s:
        orphan = outbox.enqueue(
            s, workspace_id=workspace["workspace_id"], kind="nobody", payload={}
        )
    await w.drain()
    failed = await entry(services, orphan.id)
    assert (failed.state, failed.last_error) == (
        "failed",
        "no handler for outbox kind 'nobody' (no_handler)",
    )


# --- retry delays ----------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    settings = Settings(_env_file=None, retry_base_seconds=2.0, retry_max_seconds=60.0)
    plain = RetryLater("x")
    for attempts, base in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        delays = [backoff_seconds(settings, attempts, plain) for _ in range(200)]
        assert all(base <= d <= base * 1.25 for d in delays)
        assert len(set(delays)) > 1  # jittered
    # The first retry comes within a few seconds.
    assert backoff_seconds(Settings(_env_file=None), 1, plain) <= 3.0
    # A provider's Retry-After is a floor.
    assert backoff_seconds(settings, 1, RetryLater("x", retry_after=30.0)) == 30.0
    assert 8.0 <= backoff_seconds(settings, 3, RetryLater("x", retry_after=1.0)) <= 10.0


# --- slots per kind and lane -----------------------------------------------------------------


async def test_a_full_lane_leaves_its_due_entries_unclaimed_and_others_go(
    services: Any, workspace: dict[str, str], workers: list[Worker]
) -> None:
    probe = Probe()
    w = new_worker(services, workers, probe, worker_max_per_lane=2, worker_max_per_kind=10)
    slow = await add_entries(services, workspace["workspace_id"], *["slow"] * 5)
    fast = await add_entries(services, workspace["workspace_id"], *["fast"] * 3)
    [free] = await add_entries(services, workspace["workspace_id"], None)

    assert await w.run_due() == 2 + 2 + 1
    assert await w.run_due() == 0  # every lane with work left is full
    waiting = [await entry(services, i) for i in slow[2:] + fast[2:]]
    assert [(e.state, e.claim, e.attempts) for e in waiting] == [("pending", None, 0)] * 4
    async with asyncio.timeout(10):
        while len(probe.runs) < 5:
            await asyncio.sleep(0.01)
    assert sorted(probe.runs) == sorted(slow[:2] + fast[:2] + [free])

    probe.go.set()
    await w.drain()
    assert sorted(probe.runs) == sorted(slow + fast + [free])


async def test_a_kind_never_runs_more_than_its_bound_at_once(
    services: Any, workspace: dict[str, str], workers: list[Worker]
) -> None:
    probe = Probe()
    w = new_worker(services, workers, probe, worker_max_per_lane=100, worker_max_per_kind=3)
    lanes = [f"channel-{i}" for i in range(5)] + [None, None]
    ids = await add_entries(services, workspace["workspace_id"], *lanes)

    assert await w.run_due() == 3
    assert await w.run_due() == 0
    assert w.running == 3
    async with services.db.read() as s:
        unclaimed = (
            await s.scalars(select(m.OutboxEntry.id).where(m.OutboxEntry.claim.is_(None)))
        ).all()
    assert len(unclaimed) == 4

    probe.go.set()
    await w.drain()
    assert sorted(probe.runs) == sorted(ids)


def test_new_entries_get_a_lane_per_channel_and_per_webhook_subscription() -> None:
    assert outbox.delivery_lane("ch_1") == "ch_1"
    assert outbox.webhook_lane("https://a.example/x", "whk_1") == "whk_1"
    assert outbox.webhook_lane("https://a.example/x?y", None) == "notify:a.example"
