"""The delivery worker: claims due outbox entries and runs them, with retries.

Each entry kind has a handler. A handler that raises ``RetryLater`` is tried again
after an exponential backoff with jitter (at least the provider's ``retry_after``)
until ``max_delivery_attempts``; ``GiveUp``, the last attempt, a crash or a missing
handler mark the entry failed, and a handler with a ``gave_up`` hook is told in the
same transaction (a ``deliver`` entry's message becomes ``failed``).

Leases: a claim writes a fresh token and a lease; the worker renews the lease while
the handler runs (a heartbeat), and its final update is conditional on the token, so
a worker whose lease was taken over writes nothing. Concurrency is bounded per kind
and per lane (an entry's channel or webhook subscription): due entries of a full lane
stay pending and unclaimed, so one slow provider cannot take every slot.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, cast, runtime_checkable

from sqlalchemy import Table, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.ids import new_id
from chat.services.group_commit import GroupCommit
from chat.settings import Settings
from connectors.errors import DeliveryError, GiveUp, RetryLater

__all__ = ["GiveUp", "GivesUp", "Handler", "RetryLater", "Worker", "backoff_seconds"]

log = logging.getLogger(__name__)

BATCH = 50
# Backoff delays are stretched by up to this fraction, so retries of entries that
# failed together (a provider's outage) do not come back together.
JITTER = 0.25


DONE_VALUES: dict[str, object] = {"state": "done", "lease_until": None, "last_error": None}
_outbox = cast(Table, m.OutboxEntry.__table__)
# An entry that ran and is still held by this worker (id and claim token) is done.
Held = tuple[str, str | None]


class Handler(Protocol):
    def __call__(self, entry: m.OutboxEntry) -> Awaitable[None]: ...


@runtime_checkable
class GivesUp(Protocol):
    """A handler that wants to know when its entry is given up (optional)."""

    async def gave_up(
        self, session: AsyncSession, entry: m.OutboxEntry, error: DeliveryError
    ) -> Sequence[DomainEvent]:
        """Within the transaction that marks the entry failed; the events are published
        after it commits."""
        ...


def backoff_seconds(settings: Settings, attempts: int, error: RetryLater) -> float:
    """How long to wait after the ``attempts``-th try failed with ``error``."""
    delay: float = min(
        settings.retry_base_seconds * 2.0 ** max(0, attempts - 1), settings.retry_max_seconds
    )
    delay *= 1 + random.uniform(0, JITTER)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def describe(error: DeliveryError) -> str:
    return f"{error.message} ({error.code})" if error.code else error.message


class Worker:
    def __init__(self, db: Database, settings: Settings, bus: Bus | None = None) -> None:
        self.db = db
        self.settings = settings
        self.bus = bus
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._per_kind: Counter[str] = Counter()
        self._per_lane: Counter[str] = Counter()
        self._stopping = False
        # Entries that ran finish in groups: concurrent sends share one write transaction.
        self._dones: GroupCommit[Held, bool] = GroupCommit(self._mark_done, self._mark_one_done)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="parley-worker")

    async def stop(self) -> None:
        """Let the current poll finish, then wait for running entries (bounded).

        The poll is not cancelled mid-query unless it overruns: a database call cut off
        by cancellation can outlive the event loop (aiosqlite's thread then calls into
        a closed loop) and leaves the claim half done.
        """
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=5)
            if not self._task.done():
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        if self._running:
            await asyncio.wait(self._running, timeout=5)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                claimed = await self.run_due()
            except Exception:
                log.exception("outbox poll failed")
                claimed = 0
            if claimed < BATCH and not self._stopping:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.worker_poll_seconds)
                except TimeoutError:
                    pass
                self._wake.clear()

    async def run_due(self) -> int:
        """Claim due entries that have a free slot and start them; returns how many."""
        entries = await self._claim()
        for entry in entries:
            self._per_kind[entry.kind] += 1
            if entry.lane is not None:
                self._per_lane[entry.lane] += 1
            task = asyncio.create_task(self._run(entry))
            self._running.add(task)
            task.add_done_callback(functools.partial(self._finished, entry))
        return len(entries)

    def _finished(self, entry: m.OutboxEntry, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._per_kind[entry.kind] -= 1
        if entry.lane is not None:
            self._per_lane[entry.lane] -= 1
        self._wake.set()  # a slot is free: entries skipped for it may go now

    @property
    def running(self) -> int:
        return len(self._running)

    async def drain(self, timeout: float = 10.0) -> None:
        """Run until nothing is due (tests and shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            claimed = await self.run_due()
            if self._running:
                await asyncio.wait(
                    list(self._running),
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            if claimed == 0:
                return

    def _full(self) -> tuple[set[str], set[str]]:
        kinds = {k for k, n in self._per_kind.items() if n >= self.settings.worker_max_per_kind}
        lanes = {k for k, n in self._per_lane.items() if n >= self.settings.worker_max_per_lane}
        return kinds, lanes

    async def _claim(self) -> list[m.OutboxEntry]:
        now = utcnow()
        due = (
            m.OutboxEntry.state == "pending",
            m.OutboxEntry.due_at <= now,
            or_(m.OutboxEntry.lease_until.is_(None), m.OutboxEntry.lease_until < now),
        )
        full_kinds, full_lanes = self._full()
        query = select(m.OutboxEntry.id, m.OutboxEntry.kind, m.OutboxEntry.lane).where(*due)
        # Entries of a full kind or lane are left out of the query, not only skipped
        # after it: otherwise a backlog on one lane would fill every batch read.
        if full_kinds:
            query = query.where(m.OutboxEntry.kind.not_in(full_kinds))
        if full_lanes:
            query = query.where(
                or_(m.OutboxEntry.lane.is_(None), m.OutboxEntry.lane.not_in(full_lanes))
            )
        # Look first without taking the write path: most wake-ups find nothing due, and
        # on SQLite a write transaction would queue behind (and delay) message writes.
        async with self.db.read() as session:
            rows = (await session.execute(query.order_by(m.OutboxEntry.due_at).limit(BATCH))).all()
        ids = self._admit(rows)
        if not ids:
            return []
        async with self.db.write() as session:
            # Re-checking the due condition in the UPDATE makes two processes that
            # picked the same ids claim each entry once; the token tells this claim
            # from any later one.
            claimed = (
                await session.scalars(
                    update(m.OutboxEntry)
                    .where(m.OutboxEntry.id.in_(ids), *due)
                    .values(
                        lease_until=now + self.lease,
                        claim=new_id("clm"),
                        attempts=m.OutboxEntry.attempts + 1,
                    )
                    .returning(m.OutboxEntry)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            return list(claimed)

    def _admit(self, rows: Sequence[Any]) -> list[str]:
        """The ids that fit the free slots, in due order."""
        kinds = Counter(self._per_kind)
        lanes = Counter(self._per_lane)
        ids = []
        for row in rows:
            if kinds[row.kind] >= self.settings.worker_max_per_kind:
                continue
            if row.lane is not None and lanes[row.lane] >= self.settings.worker_max_per_lane:
                continue
            kinds[row.kind] += 1
            if row.lane is not None:
                lanes[row.lane] += 1
            ids.append(row.id)
        return ids

    async def _run(self, entry: m.OutboxEntry) -> None:
        handler = self.handlers.get(entry.kind)
        values: dict[str, object]
        failure: DeliveryError | None = None
        done = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(entry, done))
        try:
            if handler is None:
                raise GiveUp(f"no handler for outbox kind {entry.kind!r}", code="no_handler")
            await handler(entry)
            values = dict(DONE_VALUES)
        except RetryLater as exc:
            if entry.attempts >= self.settings.max_delivery_attempts:
                failure = exc
            else:
                delay = backoff_seconds(self.settings, entry.attempts, exc)
                values = {
                    "due_at": utcnow() + timedelta(seconds=delay),
                    "lease_until": None,
                    "last_error": describe(exc),
                }
        except GiveUp as exc:
            failure = exc
        except Exception as exc:
            log.exception("outbox entry %s (%s) crashed", entry.id, entry.kind)
            failure = GiveUp(repr(exc), code="crashed")
        finally:
            # Stopped, not cancelled: a database call cut off by cancellation can
            # outlive its connection's state.
            done.set()
            await heartbeat
        if failure is not None:
            values = {"state": "failed", "lease_until": None, "last_error": describe(failure)}
        try:
            events = await self._finish(entry, values, handler, failure)
        except Exception:  # the lease lapses and the entry runs again
            log.exception("outbox entry %s (%s): final update failed", entry.id, entry.kind)
            return
        if failure is not None and events is not None:
            log.warning(
                "outbox entry %s (%s) failed: %s", entry.id, entry.kind, values["last_error"]
            )
        if events:
            if self.bus is not None:
                self.bus.outbox_written()
                await self.bus.publish(events)
            self._wake.set()

    async def _finish(
        self,
        entry: m.OutboxEntry,
        values: dict[str, object],
        handler: Handler | None,
        failure: DeliveryError | None,
    ) -> list[DomainEvent] | None:
        """The final update, if this worker still holds the entry: the events to publish,
        or None when the lease was lost (then nothing is written)."""
        events: list[DomainEvent] = []
        if values == DONE_VALUES and failure is None:  # the common case, grouped
            held = await self._dones.submit((entry.id, entry.claim))
            if isinstance(held, Exception):
                raise held
            if not held:
                self._lost(entry)
                return None
            return events
        async with self.db.write() as session:
            conn = await session.connection()
            result = await conn.execute(
                update(_outbox)
                .where(
                    _outbox.c.id == entry.id,
                    _outbox.c.claim == entry.claim,
                    _outbox.c.state == "pending",
                )
                .values(**values)
            )
            if result.rowcount != 1:
                self._lost(entry)
                return None
            if failure is not None and isinstance(handler, GivesUp):
                events.extend(await handler.gave_up(session, entry, failure))
        return events

    async def _mark_done(
        self, held: Sequence[Held], _committing: Callable[[], None] | None = None
    ) -> list[bool | Exception]:
        """Mark entries done in one statement; for each, whether this worker still held it.
        (One group at a time: ``_committing`` is not needed.)"""
        async with self.db.write() as session:
            conn = await session.connection()
            marked = set(
                (
                    await conn.execute(
                        update(_outbox)
                        .where(
                            tuple_(_outbox.c.id, _outbox.c.claim).in_(list(held)),
                            _outbox.c.state == "pending",
                        )
                        .values(**DONE_VALUES)
                        .returning(_outbox.c.id)
                    )
                ).scalars()
            )
        return [entry_id in marked for entry_id, _ in held]

    async def _mark_one_done(self, held: Held) -> bool:
        result = (await self._mark_done([held]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    @staticmethod
    def _lost(entry: m.OutboxEntry) -> None:
        log.warning(
            "outbox entry %s (%s): lease lost while running; its result is not written",
            entry.id,
            entry.kind,
        )

    def _held(self, entry: m.OutboxEntry) -> tuple[Any, ...]:
        return (
            m.OutboxEntry.id == entry.id,
            m.OutboxEntry.claim == entry.claim,
            m.OutboxEntry.state == "pending",
        )

    async def _heartbeat(self, entry: m.OutboxEntry, done: asyncio.Event) -> None:
        """Renew the lease while the handler runs, at a third of its length."""
        interval = self.lease.total_seconds() / 3
        while True:
            try:
                await asyncio.wait_for(done.wait(), interval)
                return
            except TimeoutError:
                pass
            async with self.db.write() as session:
                result = await session.execute(
                    update(m.OutboxEntry)
                    .where(*self._held(entry))
                    .values(lease_until=utcnow() + self.lease)
                    .execution_options(synchronize_session=False)
                )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                log.warning(
                    "outbox entry %s (%s): lease lost to another worker", entry.id, entry.kind
                )
                return
