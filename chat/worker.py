"""The delivery worker: claims due outbox entries and runs them, with retries.

Each entry kind has a handler. A handler that raises ``RetryLater`` is tried again
after an exponential backoff until ``max_delivery_attempts``; ``GiveUp`` (or the
last attempt) marks the entry failed. Entries are leased, so several processes can
share one outbox and a crashed process's entries are picked up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import or_, select, update

from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.settings import Settings
from connectors.errors import GiveUp, RetryLater

__all__ = ["GiveUp", "RetryLater", "Worker"]

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 50


Handler = Callable[[m.OutboxEntry], Awaitable[None]]


class Worker:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False

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
        """Claim due entries and start them; returns how many were claimed."""
        entries = await self._claim()
        for entry in entries:
            task = asyncio.create_task(self._run(entry))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(entries)

    async def drain(self, timeout: float = 10.0) -> None:
        """Run until nothing is due (tests and shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            claimed = await self.run_due()
            if self._running:
                await asyncio.wait(list(self._running), timeout=max(0.0, deadline - loop.time()))
            if claimed == 0 and not self._running:
                return

    async def _claim(self) -> list[m.OutboxEntry]:
        now = utcnow()
        due = (
            m.OutboxEntry.state == "pending",
            m.OutboxEntry.due_at <= now,
            or_(m.OutboxEntry.lease_until.is_(None), m.OutboxEntry.lease_until < now),
        )
        # Look first without taking the write path: most wake-ups find nothing due, and
        # on SQLite a write transaction would queue behind (and delay) message writes.
        async with self.db.read() as session:
            ids = (
                await session.scalars(
                    select(m.OutboxEntry.id).where(*due).order_by(m.OutboxEntry.due_at).limit(BATCH)
                )
            ).all()
        if not ids:
            return []
        async with self.db.write() as session:
            # Re-checking the due condition in the UPDATE makes two processes that
            # picked the same ids claim each entry once.
            claimed = (
                await session.scalars(
                    update(m.OutboxEntry)
                    .where(m.OutboxEntry.id.in_(ids), *due)
                    .values(lease_until=now + LEASE, attempts=m.OutboxEntry.attempts + 1)
                    .returning(m.OutboxEntry)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            return list(claimed)

    async def _run(self, entry: m.OutboxEntry) -> None:
        handler = self.handlers.get(entry.kind)
        values: dict[str, object]
        try:
            if handler is None:
                raise GiveUp(f"no handler for outbox kind {entry.kind!r}")
            await handler(entry)
            values = {"state": "done", "lease_until": None, "last_error": None}
        except RetryLater as exc:
            if entry.attempts >= self.settings.max_delivery_attempts:
                values = {"state": "failed", "lease_until": None, "last_error": str(exc)}
            else:
                delay = min(
                    self.settings.retry_base_seconds * 2 ** (entry.attempts - 1),
                    self.settings.retry_max_seconds,
                )
                values = {
                    "due_at": utcnow() + timedelta(seconds=delay),
                    "lease_until": None,
                    "last_error": str(exc),
                }
        except GiveUp as exc:
            values = {"state": "failed", "lease_until": None, "last_error": str(exc)}
        except Exception as exc:
            log.exception("outbox entry %s (%s) crashed", entry.id, entry.kind)
            values = {"state": "failed", "lease_until": None, "last_error": repr(exc)}
        async with self.db.write() as session:
            await session.execute(
                update(m.OutboxEntry).where(m.OutboxEntry.id == entry.id).values(**values)
            )
        if values.get("state") == "failed":
            log.warning("outbox entry %s (%s) failed: %s", entry.id, entry.kind, values["last_error"])
