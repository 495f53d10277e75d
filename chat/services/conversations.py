"""The conversation service: every message of every channel passes through here.

It runs the one write path (``message_store.store_messages``) either through the
group commit (single posts, joined with concurrent ones into one transaction) or as
one all-or-nothing batch, then publishes the events after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus
from chat.db.engine import Database
from chat.domain.errors import NotFound, ParleyError, Unprocessable
from chat.services.conversation_rows import ConversationRows
from chat.services.group_commit import Committing, GroupCommit
from chat.services.message_store import (
    NewMessage,
    Posted,
    RecipientError,
    StoreRules,
    release_scheduled,
    store_messages,
)
from chat.services.statuses import status_payload

__all__ = ["BatchBuilder", "Conversations", "NewMessage", "Posted", "status_payload"]

BatchBuilder = Callable[[AsyncSession], Awaitable[Sequence[NewMessage]]]

# PostgreSQL: the next group runs its statements while the previous one commits.
GROUPS_IN_FLIGHT = 2


class Conversations:
    def __init__(self, db: Database, bus: Bus, rules: StoreRules) -> None:
        self.db = db
        self.bus = bus
        self.rules = rules
        self._rows = ConversationRows()
        self._group: GroupCommit[NewMessage, Posted] = GroupCommit(
            self._store_group, self._store_alone, in_flight=1 if db.is_sqlite else GROUPS_IN_FLIGHT
        )

    async def post_message(self, new: NewMessage) -> Posted:
        """Store one message (joining a group commit with concurrent posts), then publish."""
        result = await self._group.submit(new)
        if isinstance(result, Exception):
            raise result
        await self._after_commit([result])
        return result

    async def post_messages(self, batch: Sequence[NewMessage]) -> list[Posted]:
        """Store a batch in one transaction (all or nothing), then publish."""

        async def given(_session: AsyncSession) -> Sequence[NewMessage]:
            return batch

        return await self.transact(given)

    async def transact(self, build: BatchBuilder) -> list[Posted]:
        """Build a batch inside the write transaction and store it, all or nothing.

        ``build`` may run twice: when a concurrent transaction wins a race on a unique
        key (a client_message_id, a new contact's address), this one rolls back whole and
        runs again, and then finds what the other stored."""
        results = await self._store_atomic(build)
        await self._after_commit(results)
        return results

    async def release(self, message_id: str, address: str | None = None) -> bool:
        """Release a scheduled message (the worker calls this at ``send_at``); ``address``
        is the recipient address its sender named, if any.

        False if the message no longer exists."""
        async with self.db.write() as session:
            events = await release_scheduled(session, message_id, self.rules, address)
        if events is None:
            return False
        if events:
            self.bus.outbox_written()
            await self.bus.publish(events)
        return True

    async def _store_atomic(self, build: BatchBuilder) -> list[Posted]:
        for attempt in (1, 2):
            try:
                async with self.db.write() as session:
                    batch = await build(session)
                    results = await store_messages(session, batch, self.rules)
                    _raise_any(results)
                    return [r for r in results if isinstance(r, Posted)]
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _after_commit(self, results: Sequence[Posted]) -> None:
        if any(p.queued_work for p in results):
            self.bus.outbox_written()
        for posted in results:
            await self.bus.publish(posted.events)

    async def _store_group(self, items: Sequence[NewMessage], committing: Committing) -> list[Posted | Exception]:
        try:
            async with self.db.write_connection() as conn:
                seen = await self.db.commits_seen(conn)
                known = self._rows.valid_at(seen)
                results: list[Posted | Exception] = list(await store_messages(conn, items, self.rules, known))
                # Another process may have committed before this group's first write.
                unchanged = seen is not None and await self.db.commits_seen(conn) == seen
                committing()  # the block's end commits: the next group may start meanwhile
        except BaseException:
            self._rows.forget()
            raise
        self._rows.keep(seen if unchanged else None)  # None: forgets them
        return results

    async def _store_alone(self, new: NewMessage) -> Posted:
        async def given(_session: AsyncSession) -> Sequence[NewMessage]:
            return [new]

        return (await self._store_atomic(given))[0]


def _raise_any(results: Sequence[Posted | ParleyError]) -> None:
    """A batch is all or nothing: any refused item refuses it (the transaction rolls back).

    Recipient problems of a multi-recipient batch are reported together, by index."""
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, ParleyError)]
    if not errors:
        return
    if len(results) > 1 and all(isinstance(e, RecipientError | NotFound) for _, e in errors):
        raise Unprocessable(
            "some recipients cannot be sent to",
            code="invalid_recipients",
            details=[
                {"recipient": i, **(e.detail if isinstance(e, RecipientError) else {"error": e.message})}
                for i, e in errors
            ],
        )
    raise errors[0][1]
