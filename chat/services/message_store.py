"""Group commit: many concurrent single-message posts stored in one transaction.

Socket clients post one message at a time, many at once. Writing each in its own
transaction costs a handful of round trips per message; here every post that arrives
while a transaction is in flight joins the next one, which stores the whole group with
a fixed number of statements (one seq UPDATE for all conversations, one INSERT per
table). If a group fails as a whole (say a cross-process race on a client_message_id),
each post is retried alone, so one bad post never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import ConversationStatus, Direction, MessageStatus
from chat.domain.errors import Conflict, NotFound, ParleyError
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.views import conversation_view, message_view

log = logging.getLogger(__name__)

MAX_GROUP = 256
GATHER_TURNS = 16
QUIET_TURNS = 2

# Resolves a post that names no conversation (rare: a conversation's first message).
OpenConversation = Callable[[AsyncSession, Any, list[DomainEvent]], Awaitable[m.Conversation]]
Result = Any  # Posted | ParleyError (kept loose to avoid an import cycle)


class GroupCommit:
    """Collects concurrent posts and stores each group in one transaction."""

    def __init__(
        self,
        db: Database,
        store_group: Callable[[Sequence[Any]], Awaitable[list[Result]]],
        store_one: Callable[[Any], Awaitable[Result]],
    ) -> None:
        self.db = db
        self.store_group = store_group
        self.store_one = store_one
        self._pending: list[tuple[Any, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await self._gather()
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            items = [item for item, _ in group]
            try:
                results = await self.store_group(items)
            except Exception:
                log.info("group of %d failed as a whole; storing one by one", len(items), exc_info=True)
                results = [await self._alone(item) for item in items]
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
            if len(self._pending) >= MAX_GROUP:
                return
            quiet = quiet + 1 if len(self._pending) == before else 0
            if quiet == QUIET_TURNS:
                return

    async def _alone(self, item: Any) -> Result:
        try:
            return await self.store_one(item)
        except ParleyError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - surfaced to that caller alone
            return exc


class Row(SimpleNamespace):
    """A mutable stand-in for a row, accepted by the view functions."""


async def store_group(
    session: AsyncSession,
    items: Sequence[Any],
    open_conversation: OpenConversation,
    initial_status: Callable[[Any, str], MessageStatus],
    status_payload: Callable[[Any, MessageStatus], dict[str, Any]],
    make_posted: Callable[..., Any],
) -> list[Result]:
    """Store ``items`` (NewMessage) in the caller's transaction; a result or error per item."""
    now = utcnow()
    # Core statements on the session's connection: the ORM's per-statement bookkeeping
    # cost more than the SQL on this path.
    conn = await session.connection()
    results: list[Result] = [None] * len(items)
    events: list[list[DomainEvent]] = [[] for _ in items]

    # 1. Repeats of a client_message_id answer with the first message.
    keyed = [(i, it) for i, it in enumerate(items) if it.client_message_id]
    existing: dict[tuple[str, str], Row] = {}
    if keyed:
        wanted_keys = {(it.workspace_id, it.client_message_id) for _, it in keyed}
        rows = await conn.execute(
            _REPEATS,
            {"b_ws": list({ws for ws, _ in wanted_keys}), "b_keys": list({k for _, k in wanted_keys})},
        )
        existing = {
            (r.workspace_id, r.client_message_id): Row(**r._mapping)
            for r in rows
            if (r.workspace_id, r.client_message_id) in wanted_keys
        }

    # 2. The conversations, checked for ownership.
    wanted = {it.conversation_id for it in items if it.conversation_id}
    wanted |= {r.conversation_id for r in existing.values()}
    convs: dict[str, Row] = {}
    if wanted:
        # Locked (PostgreSQL) so the seqs handed out below from last_seq stay ours until
        # the commit; in id order, so two processes' groups never wait on each other in
        # a circle. SQLite has no FOR UPDATE: its one writer is serialised in process.
        rows = await conn.execute(_LOCK_CONVERSATIONS, {"b_ids": list(wanted)})
        convs = {r.id: Row(**r._mapping) for r in rows}

    first_of_key: dict[tuple[str, str], int] = {}
    fresh: list[int] = []  # indexes of items that become new messages
    for i, it in enumerate(items):
        key = (it.workspace_id, it.client_message_id) if it.client_message_id else None
        if key and key in existing:
            old = existing[key]
            if not same_author(old, it):
                results[i] = taken_key()
                continue
            results[i] = make_posted(message_view(old), conversation_view(convs[old.conversation_id]), False)
            continue
        if key and key in first_of_key:
            results[i] = first_of_key[key]  # resolved below to the first one's result
            continue
        if it.conversation_id:
            conv = convs.get(it.conversation_id)
            if (
                conv is None
                or conv.workspace_id != it.workspace_id
                or (it.contact_id and conv.contact_id != it.contact_id)
            ):
                results[i] = NotFound("conversation not found")
                continue
        else:
            try:
                opened = await open_conversation(session, it, events[i])
            except ParleyError as exc:
                results[i] = exc
                continue
            convs[opened.id] = Row(
                **{c.name: getattr(opened, c.name) for c in m.Conversation.__table__.columns}
            )
            items = list(items)
            items[i] = _with_conversation(it, opened.id)
        if key:
            first_of_key[key] = i
        fresh.append(i)

    if fresh:
        await _write(conn, items, fresh, convs, events, now, initial_status, status_payload, make_posted, results)

    for i, res in enumerate(results):
        if isinstance(res, int):  # a repeat inside this group
            first = results[res]
            if not same_author(SimpleNamespace(**_author_of(first.message)), items[i]):
                results[i] = taken_key()
                continue
            results[i] = make_posted(first.message, first.conversation, False)
    return results


_conversations = cast(Table, m.Conversation.__table__)
_messages = cast(Table, m.Message.__table__)
_subs = cast(Table, m.WebhookSubscription.__table__)
# Built once: a statement object caches its compiled form (expanding INs included).
_REPEATS = select(_messages).where(
    # Two plain INs, not a row-value IN: SQLite scans the table for the latter.
    _messages.c.workspace_id.in_(bindparam("b_ws", expanding=True)),
    _messages.c.client_message_id.in_(bindparam("b_keys", expanding=True)),
)
_LOCK_CONVERSATIONS = (
    select(_conversations)
    .where(_conversations.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_conversations.c.id)
    .with_for_update()
)
_ACTIVE_SUBSCRIPTIONS = select(_subs).where(
    _subs.c.workspace_id.in_(bindparam("b_ws", expanding=True)), _subs.c.active.is_(True)
)
_INSERT_MESSAGES = insert(_messages)
_INSERT_STATUSES = insert(cast(Table, m.MessageStatusEvent.__table__))
_INSERT_WORK = insert(cast(Table, m.OutboxEntry.__table__))
_ADVANCE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("b_id"))
    .values(
        last_seq=bindparam("b_seq"),
        status=bindparam("b_status"),
        last_message_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)


def message_values(new: Any, conversation_id: str, seq: int, status: MessageStatus, now: Any) -> dict[str, Any]:
    """The columns of a new message row (shared by the group and the single-message path)."""
    return {
        "id": new_id("msg"),
        "workspace_id": new.workspace_id,
        "conversation_id": conversation_id,
        "seq": seq,
        "direction": new.direction.value,
        "author_type": new.author_type,
        "author_id": new.author_id,
        "content": new.content,
        "status": status.value,
        "private": new.private,
        "client_message_id": new.client_message_id,
        "correlation_id": new.correlation_id,
        "callback_data": new.callback_data,
        "notify_url": new.notify_url,
        "send_at": new.send_at,
        "created_at": now,
        "updated_at": now,
    }


def same_author(old: Any, new: Any) -> bool:
    """A client_message_id repeat counts only from the author who used the key first."""
    return bool(old.author_type == new.author_type and old.author_id == new.author_id)


def taken_key() -> Conflict:
    return Conflict(
        "this client_message_id is already used by another author",
        code="duplicate_client_message_id",
    )


def _author_of(view: dict[str, Any]) -> dict[str, Any]:
    return {"author_type": view["author"]["type"], "author_id": view["author"]["id"]}


def _with_conversation(item: Any, conversation_id: str) -> Any:
    from dataclasses import replace

    return replace(item, conversation_id=conversation_id)


async def _write(
    conn: AsyncConnection,
    items: Sequence[Any],
    fresh: list[int],
    convs: dict[str, Row],
    events: list[list[DomainEvent]],
    now: Any,
    initial_status: Callable[[Any, str], MessageStatus],
    status_payload: Callable[[Any, MessageStatus], dict[str, Any]],
    make_posted: Callable[..., Any],
    results: list[Result],
) -> None:
    # 3. The seqs follow the locked rows' last_seq; one executemany of one fixed
    # statement moves every conversation of the group forward.
    counts: dict[str, int] = {}
    for i in fresh:
        cid = items[i].conversation_id
        counts[cid] = counts.get(cid, 0) + 1
    reopen = {
        items[i].conversation_id
        for i in fresh
        if items[i].direction is Direction.INBOUND
        and convs[items[i].conversation_id].status == ConversationStatus.RESOLVED
    }
    next_seq: dict[str, int] = {}
    moves: list[dict[str, Any]] = []
    for cid, count in counts.items():
        conv = convs[cid]
        next_seq[cid] = conv.last_seq + 1
        conv.last_seq += count
        conv.last_message_at = conv.updated_at = now
        if cid in reopen:
            conv.status = ConversationStatus.OPEN.value
        moves.append({"b_id": cid, "b_seq": conv.last_seq, "b_status": conv.status, "b_now": now})
    await conn.execute(_ADVANCE, moves)
    for cid in reopen:
        events[next(i for i in fresh if items[i].conversation_id == cid)].append(
            DomainEvent("conversation.updated", convs[cid].workspace_id, conversation_view(convs[cid]))
        )

    # 4. Messages, their first status and their outbox work, one INSERT per table.
    messages: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    subs = await _subscriptions(conn, {items[i].workspace_id for i in fresh})
    work: list[dict[str, Any]] = []
    for i in fresh:
        it = items[i]
        work_before = len(work)
        conv = convs[it.conversation_id]
        seq = next_seq[it.conversation_id]
        next_seq[it.conversation_id] = seq + 1
        status = initial_status(it, conv.channel_type)
        row = Row(**message_values(it, conv.id, seq, status, now))
        messages.append(vars(row).copy())
        statuses.append({"id": new_id("mse"), "message_id": row.id, "status": status.value, "detail": None, "created_at": now})
        view = message_view(row)
        work += _webhook_rows(subs.get(it.workspace_id, []), it.workspace_id, row.id, "message.created", {"message": view}, None, now)
        work += _webhook_rows(
            subs.get(it.workspace_id, []), it.workspace_id, row.id, "message.status",
            status_payload(row, status), it.notify_url, now,
        )
        if status is MessageStatus.SCHEDULED:
            work.append(_work_row(it.workspace_id, outbox.RELEASE, row.id, {"message_id": row.id}, it.send_at))
        elif status is MessageStatus.QUEUED:
            work.append(_work_row(it.workspace_id, outbox.DELIVER, row.id, {"message_id": row.id}, now))
        conv_view = conversation_view(conv)
        if status is not MessageStatus.SCHEDULED:
            events[i].append(
                DomainEvent("message.created", it.workspace_id, {"message": view, "conversation": conv_view}, origin=it.origin)
            )
        # A new conversation may have queued conversation.created webhooks.
        queued = len(work) > work_before or any(e.type == "conversation.created" for e in events[i])
        results[i] = make_posted(view, conv_view, True, events[i], queued)
    await conn.execute(_INSERT_MESSAGES, messages)
    await conn.execute(_INSERT_STATUSES, statuses)
    if work:
        await conn.execute(_INSERT_WORK, work)


async def _subscriptions(conn: AsyncConnection, workspace_ids: set[str]) -> dict[str, list[Any]]:
    rows = await conn.execute(_ACTIVE_SUBSCRIPTIONS, {"b_ws": list(workspace_ids)})
    found: dict[str, list[Any]] = {}
    for r in rows:
        found.setdefault(r.workspace_id, []).append(r)
    return found


def _work_row(workspace_id: str, kind: str, ref_id: str | None, payload: dict[str, Any], due: Any) -> dict[str, Any]:
    return {
        "id": new_id("obx"), "workspace_id": workspace_id, "kind": kind, "ref_id": ref_id,
        "payload": payload, "state": "pending", "attempts": 0, "due_at": due,
        "lease_until": None, "last_error": None, "created_at": utcnow(),
    }


def _webhook_rows(
    subs: list[Any], workspace_id: str, message_id: str, event_type: str,
    data: dict[str, Any], notify_url: str | None, now: Any,
) -> list[dict[str, Any]]:
    targets = [s for s in subs if outbox.subscription_wants(s, event_type)]
    if not targets and not notify_url:
        return []
    envelope = outbox.envelope(workspace_id, event_type, data)
    rows = [
        _work_row(workspace_id, outbox.WEBHOOK, message_id, {"url": s.url, "subscription_id": s.id, "body": envelope}, now)
        for s in targets
    ]
    if notify_url:
        rows.append(_work_row(workspace_id, outbox.WEBHOOK, message_id, {"url": notify_url, "subscription_id": None, "body": envelope}, now))
    return rows
