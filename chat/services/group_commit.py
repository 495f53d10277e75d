"""Group commit: many concurrent single-message posts stored in one transaction.

Socket clients and single-recipient sends post one message at a time, many at once.
Writing each in its own transaction costs a handful of round trips and a commit per
message; here every post that arrives while a transaction is in flight joins the next
one. If a group fails as a whole (say a cross-process race on a new contact), each post
is retried alone, so one bad post never fails its neighbours.

Groups may overlap (``in_flight`` > 1, PostgreSQL): once a group has run all its
statements and only its COMMIT is left (``store_group`` calls ``committing``), the next
group starts on another connection, so its statements run while the previous commit
waits for the WAL flush. A conversation in both waits at its row lock for the first
group's commit and then reads the seq it left, so seqs stay gap-free and follow the order
the groups started in: a client's messages keep their order. A committing group waits for
nothing the next one holds, so groups never wait in a circle. Only a failed COMMIT (a lost
connection) stores its posts one by one after a later group. With ``in_flight`` = 1
(SQLite, one writer) each group starts when the previous one is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from chat.domain.errors import ParleyError

log = logging.getLogger(__name__)

MAX_GROUP = 256
GATHER_TURNS = 16
QUIET_TURNS = 2

Item = TypeVar("Item")
Result = TypeVar("Result")
Committing = Callable[[], None]


class GroupCommit(Generic[Item, Result]):
    """Collects concurrent posts and stores each group in one transaction."""

    def __init__(
        self,
        store_group: Callable[[Sequence[Item], Committing], Awaitable[list[Result | Exception]]],
        store_one: Callable[[Item], Awaitable[Result]],
        in_flight: int = 1,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.store_group = store_group
        self.store_one = store_one
        self.in_flight = in_flight
        self.max_group = max_group
        self._pending: list[tuple[Item, asyncio.Future[Result | Exception]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        # Set once the newest group is committing (or over): the next may start.
        self._previous: asyncio.Event | None = None

    async def submit(self, item: Item) -> Result | Exception:
        future: asyncio.Future[Result | Exception] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await self._gather()
        while self._pending:
            if self._previous is not None:
                await self._previous.wait()
            while len(busy := [t for t in self._running if not t.done()]) >= self.in_flight:
                await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
            if not self._pending:
                break
            group, self._pending = self._pending[: self.max_group], self._pending[self.max_group :]
            started = self._previous = asyncio.Event()
            task = asyncio.create_task(self._store(group, started))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            if self.in_flight == 1:
                await task  # one group at a time: the next gathers while this one runs

    async def _store(
        self, group: list[tuple[Item, asyncio.Future[Result | Exception]]], committing: asyncio.Event
    ) -> None:
        items = [item for item, _ in group]
        try:
            try:
                results: list[Result | Exception] = await self.store_group(items, committing.set)
            except Exception:
                log.info("group of %d failed as a whole; storing one by one", len(items), exc_info=True)
                results = [await self._alone(item) for item in items]
        finally:
            committing.set()
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _gather(self) -> None:
        """Let posts already on their way join the group before it is written.

        A commit costs about the same for one message as for a hundred (SQLite writes
        every touched page), and a socket message takes a few loop turns from the wire
        to ``submit``; so the group waits while it keeps growing, a few turns at most."""
        quiet = 0
        for _ in range(GATHER_TURNS):
            before = len(self._pending)
            await asyncio.sleep(0)
            if len(self._pending) >= self.max_group:
                return
            quiet = quiet + 1 if len(self._pending) == before else 0
            if quiet == QUIET_TURNS:
                return

    async def _alone(self, item: Item) -> Result | Exception:
        try:
            return await self.store_one(item)
        except ParleyError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - surfaced to that caller alone
            return exc
