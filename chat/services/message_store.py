"""The one message write path: new messages become rows, outbox work and events.

Every message of every channel is stored here (REST sends, socket posts, inbound
webhooks, bots, and scheduled messages at their release), by ``store_messages`` inside
the caller's transaction: the group commit's, or an all-or-nothing batch's. In order:

1. repeats of a ``client_message_id`` answer with the first message;
2. recipients named by address become contacts (created in bulk when new);
3. ``{{placeholders}}`` are filled from each contact's profile;
4. conversations are found or opened (one open conversation per contact and channel:
   a partial unique index says so, so concurrent first messages cannot open two);
5. the rules (``StoreRules``) may refuse an item: a channel nothing can deliver on, a
   country not on the workspace's list (SMS, voice), a message tag the channel does not
   take, a free-form message outside the customer-service window (``chat.domain.send_rules``).
   A refused item leaves nothing behind: a contact or conversation created for it
   alone is removed again in the same transaction;
6. seqs are handed out from the locked conversation rows, and messages, their first
   status, and their outbox work (webhooks, delivery, release at ``send_at``, and every
   registered trigger such as a bot turn) are inserted with one statement per table.

Events for the in-memory fan-out are returned as data and published after the commit.
A scheduled message is stored without a ``seq`` and is invisible to the customer; it
gets its seq when it is released (``release_scheduled``), so clients see it as new.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    ARRAY,
    String,
    Table,
    and_,
    any_,
    bindparam,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.bulk import BulkStatement, run_together
from chat.db.dialect import insert_or
from chat.db.types import utcnow
from chat.domain import send_rules
from chat.domain.channels import Capabilities
from chat.domain.countries import DEFAULT_SEND_COUNTRIES
from chat.domain.enums import ConversationStatus, Direction, MessageStatus
from chat.domain.errors import Conflict, NotFound, ParleyError, Unprocessable
from chat.domain.ids import new_id
from chat.domain.sms import segment_count
from chat.services import outbox, templating, work
from chat.services.rows import MessageValues, StatusRow, WorkRow
from chat.services.statuses import INSERT_STATUSES, Row, status_payload, status_row
from chat.services.views import ConversationView, MessageView, conversation_view, message_view


@dataclass(frozen=True, slots=True)
class NewMessage:
    workspace_id: str
    content: dict[str, Any]
    direction: Direction
    author_type: str
    author_id: str | None = None
    # Either an existing conversation, or a contact (by id or by its address on the
    # channel) and a channel to find or open one.
    conversation_id: str | None = None
    contact_id: str | None = None
    channel_id: str | None = None
    # Without a channel_id: the workspace's oldest channel of this type.
    channel_type: str | None = None
    address: str | None = None  # normalised; becomes a new contact if nobody owns it
    # Given (even empty), {{placeholders}} in the text are filled from it and the
    # contact's profile, and one without a value refuses the item; None: text as is.
    substitutions: Mapping[str, Any] | None = None
    client_message_id: str | None = None
    correlation_id: str | None = None
    callback_data: Any = None
    notify_url: str | None = None
    send_at: datetime | None = None
    private: bool = False
    origin: str | None = None  # e.g. the socket id that sent it
    # A provider's message tag (Messenger's HUMAN_AGENT ...), checked against the
    # channel type's capabilities and handed to its connector.
    message_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    message: MessageView
    conversation: ConversationView
    created: bool  # False when a client_message_id repeat returned the first message
    events: list[DomainEvent] = field(default_factory=list)
    queued_work: bool = False  # outbox rows were written (the worker needs waking)


class Trigger(Protocol):
    """Durable work caused by a stored message (a bot turn, a flow step, a push).

    ``work_for`` is called inside the write transaction for every message that becomes
    visible; it must be quick and pure. What it returns becomes an outbox row of
    ``kind``, run by the worker after the commit and retried: nothing slow runs before
    the sender's ack, and a crash loses nothing."""

    kind: str

    def work_for(self, message: Mapping[str, Any], conversation: Mapping[str, Any]) -> dict[str, Any] | None: ...


# Who a conversation a customer opens is first assigned to, per (workspace, channel id)
# asked: (assignee type, id); a pair left out stays unassigned. Bots register here.
FirstAssignees = Callable[
    [AsyncConnection, set[tuple[str, str]]], Awaitable[Mapping[tuple[str, str], tuple[str, str]]]
]


@dataclass(frozen=True)
class StoreRules:
    """What the write path is told by the composition root."""

    # Whether a channel type has a way out (the socket, or a connector).
    sendable: Callable[[str], bool]
    # A new contact's profile fields from its first address (e.g. ``phone`` for SMS).
    contact_fields: Callable[[str, str], dict[str, Any]] = lambda _type, _address: {}
    # Whether customers of a type hear messages through the socket fan-out (in-app):
    # those are ``sent`` at once; others are ``queued`` for their connector.
    socket_delivered: Callable[[str], bool] = lambda t: t == "inapp"
    triggers: Sequence[Trigger] = ()
    # What a channel type can carry and the send-time rules it is under (the window,
    # message tags, the country allow-list, SMS segments): the registry's capabilities.
    capabilities: Callable[[str], Capabilities] = lambda _type: Capabilities()
    first_assignees: FirstAssignees | None = None


Result = Posted | ParleyError


class RecipientError(Unprocessable):
    """One recipient of a send cannot be sent to; a batch reports all of them at once
    (``invalid_recipients``, each with its ``detail``)."""

    def __init__(self, message: str, detail: dict[str, Any], code: str = "invalid_recipients") -> None:
        super().__init__(message, code=code, details=[{"recipient": 0, **detail}])
        self.detail = detail


def refused(refusal: send_rules.Refusal) -> RecipientError:
    return RecipientError(refusal.message, refusal.detail, refusal.code)


_conversations = cast(Table, m.Conversation.__table__)
_messages = cast(Table, m.Message.__table__)
_contacts = cast(Table, m.Contact.__table__)
_identities = cast(Table, m.ContactIdentity.__table__)
_channels = cast(Table, m.Channel.__table__)
_workspaces = cast(Table, m.Workspace.__table__)
_OPEN = _conversations.c.status != ConversationStatus.RESOLVED.value
_OPEN_INDEX = text("status <> 'resolved'")  # the partial index's own WHERE, as written

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
# PostgreSQL: one array parameter, so the statement's text is the same for every group
# size and asyncpg prepares it once per connection (an IN list is a new statement, and
# a new prepare round trip, for each size).
_TEXTS = ARRAY(String)
# A lookup in the unique index per (workspace, key) pair, forced by LATERAL (and its
# LIMIT, which keeps the planner from turning it back into a plain join): with two
# "= ANY" conditions (or a plain join) the planner, misled by statistics that a burst of
# messages had outdated, looked up the workspace alone and filtered all of its messages
# by key, or scanned the table (measured: 5-10 ms a group at 12,000 messages, growing
# with them; a lookup per pair stays under a millisecond).
_REPEAT_COLUMNS = ", ".join(f"m.{c.name}" for c in _messages.c)  # by name: tables made by
# migrations hold some columns in another order than the model
_REPEATS_PG = (
    text(
        f"SELECT {_REPEAT_COLUMNS} FROM unnest(:b_ws, :b_keys) AS k(ws, key) CROSS JOIN LATERAL"
        " (SELECT * FROM messages WHERE workspace_id = k.ws AND client_message_id = k.key LIMIT 1) AS m"
    )
    .bindparams(bindparam("b_ws", type_=_TEXTS), bindparam("b_keys", type_=_TEXTS))
    .columns(*_messages.c)
)
_LOCK_CONVERSATIONS_PG = (
    select(_conversations)
    .where(_conversations.c.id == any_(bindparam("b_ids", type_=_TEXTS)))
    .order_by(_conversations.c.id)
    .with_for_update()
)
_CHANNELS = (
    select(_channels.c.id, _channels.c.workspace_id, _channels.c.type)
    .where(
        or_(
            _channels.c.id.in_(bindparam("b_ids", expanding=True)),
            and_(
                _channels.c.workspace_id.in_(bindparam("b_ws", expanding=True)),
                _channels.c.type.in_(bindparam("b_types", expanding=True)),
            ),
        )
    )
    .order_by(_channels.c.id)
)
_CONTACTS = select(_contacts).where(_contacts.c.id.in_(bindparam("b_ids", expanding=True)))
_IDENTITIES = select(_identities.c.address, _identities.c.contact_id).where(
    _identities.c.workspace_id == bindparam("b_ws"),
    _identities.c.channel_type == bindparam("b_type"),
    _identities.c.address.in_(bindparam("b_addresses", expanding=True)),
)
_OPEN_CONVERSATIONS = select(_conversations.c.id, _conversations.c.contact_id, _conversations.c.channel_id).where(
    _conversations.c.contact_id.in_(bindparam("b_contacts", expanding=True)),
    _conversations.c.channel_id.in_(bindparam("b_channels", expanding=True)),
    _OPEN,
)
# The address a delivery uses when the sender named none: the contact's newest identity
# of the channel type (chat.services.deliveries.newest_address, for many at once).
_NEWEST_ADDRESSES = (
    select(_identities.c.contact_id, _identities.c.channel_type, _identities.c.address)
    .where(
        _identities.c.contact_id.in_(bindparam("b_contacts", expanding=True)),
        _identities.c.channel_type.in_(bindparam("b_types", expanding=True)),
    )
    .order_by(_identities.c.created_at.desc(), _identities.c.id.desc())
)
_SEND_COUNTRIES = select(_workspaces.c.id, _workspaces.c.send_countries).where(
    _workspaces.c.id.in_(bindparam("b_ids", expanding=True))
)
# The group's rows go to the driver with one prepared statement each (chat.db.bulk).
_INSERT_MESSAGES = BulkStatement(_messages, tuple(MessageValues.__annotations__))
_INSERT_STATUSES = BulkStatement(cast(Table, m.MessageStatusEvent.__table__), tuple(StatusRow.__annotations__))
_INSERT_WORK = BulkStatement(cast(Table, m.OutboxEntry.__table__), tuple(WorkRow.__annotations__))
# Status is written only when it changes (a reopen): both conversation indexes hold it,
# and SQLite rewrites an index's entry whenever an UPDATE assigns one of its columns,
# even to the same value (measured: 30 instead of 11 µs a row over 20,000 conversations).
_ADVANCE_MANY = BulkStatement(
    _conversations, ("last_seq", "last_message_at", "last_inbound_at", "updated_at"), key="id"
)
_REOPEN_MANY = BulkStatement(_conversations, ("status",), key="id")
_INSERT_CONTACTS = insert(_contacts)
_INSERT_IDENTITIES = insert(_identities)
_ADVANCE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("b_id"))
    .values(
        last_seq=bindparam("b_seq"),
        status=bindparam("b_status"),
        last_message_at=bindparam("b_now"),
        last_inbound_at=bindparam("b_inbound"),
        updated_at=bindparam("b_now"),
    )
)


async def store_messages(
    session: AsyncSession | AsyncConnection, items: Sequence[NewMessage], rules: StoreRules,
    known: dict[str, Row] | None = None,
) -> list[Result]:
    """Store ``items`` in the caller's transaction; a result or an error per item.

    ``known``: conversation rows, by id, that are the database's as of now (see
    ``chat.services.conversation_rows``); they are not read again, and this run adds
    and updates the rows it reads and writes there."""
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    return await _Store(conn, list(items), rules, known).run()


class _Store:
    """One run of the write path over a group of items."""

    def __init__(
        self, conn: AsyncConnection, items: list[NewMessage], rules: StoreRules, known: dict[str, Row] | None
    ) -> None:
        self.conn = conn
        self.items = items
        self.rules = rules
        self.sqlite = conn.dialect.name == "sqlite"
        self.now = utcnow()
        self.results: list[Result | int | None] = [None] * len(items)
        self.events: list[list[DomainEvent]] = [[] for _ in items]
        self.convs: dict[str, Row] = {} if known is None else known
        self.channels: dict[str, Row] = {}
        self.contacts: dict[str, Row] = {}
        self.opened: set[str] = set()
        self.new_contacts: set[str] = set()  # created in this run for addresses

    def open_items(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r is None]

    def fail(self, i: int, error: ParleyError) -> None:
        self.results[i] = error

    async def run(self) -> list[Result]:
        await self._repeats()
        await self._channels()
        await self._recipients()
        await self._contacts()
        await self._conversations()
        await self._rules()
        await self._forget_refused()
        fresh = self.open_items()
        if fresh:
            await self._write(fresh)
        return self._finish()

    # 1. Repeats of a client_message_id answer with the first message.
    async def _repeats(self) -> None:
        keyed = {(it.workspace_id, it.client_message_id) for it in self.items if it.client_message_id}
        existing: dict[tuple[str, str], Row] = {}
        if keyed:
            if self.sqlite:
                params = {"b_ws": list({ws for ws, _ in keyed}), "b_keys": list({k for _, k in keyed})}
            else:
                pairs = list(keyed)
                params = {"b_ws": [ws for ws, _ in pairs], "b_keys": [k for _, k in pairs]}
            rows = await self.conn.execute(_REPEATS if self.sqlite else _REPEATS_PG, params)
            existing = {
                (r.workspace_id, r.client_message_id): Row(**r._mapping)
                for r in rows
                if (r.workspace_id, r.client_message_id) in keyed
            }
        if existing:
            await self._lock({r.conversation_id for r in existing.values()})
        first_of_key: dict[tuple[str, str], int] = {}
        for i, it in enumerate(self.items):
            if not it.client_message_id:
                continue
            key = (it.workspace_id, it.client_message_id)
            if key in existing:
                old = existing[key]
                self.results[i] = (
                    Posted(message_view(old), conversation_view(self.convs[old.conversation_id]), False)
                    if same_author(old, it)
                    else taken_key()
                )
            elif key in first_of_key:
                self.results[i] = first_of_key[key]  # resolved in _finish to the first's result
            else:
                first_of_key[key] = i

    # The channels of items that open a conversation: named, or the oldest of a type.
    async def _channels(self) -> None:
        opening = [i for i in self.open_items() if not self.items[i].conversation_id]
        ids = {self.items[i].channel_id for i in opening} - {None}
        by_type = {(self.items[i].workspace_id, self.items[i].channel_type) for i in opening if not self.items[i].channel_id}
        oldest: dict[tuple[str, str], str] = {}
        if ids or by_type:
            rows = await self.conn.execute(
                _CHANNELS,
                {
                    "b_ids": list(ids),
                    "b_ws": list({ws for ws, _ in by_type}),
                    "b_types": list({t for _, t in by_type if t}),
                },
            )
            for r in rows:
                self.channels[r.id] = Row(**r._mapping)
                oldest.setdefault((r.workspace_id, r.type), r.id)  # rows come in id order
        for i in opening:
            it = self.items[i]
            if not it.channel_id and it.channel_type:
                found = oldest.get((it.workspace_id, it.channel_type))
                if found is None:
                    self.fail(i, Unprocessable(
                        f"no '{it.channel_type}' channel is configured in this workspace",
                        code="channel_not_configured",
                    ))
                    continue
                it = self.items[i] = replace(it, channel_id=found)
            if not (it.channel_id and (it.contact_id or it.address)):
                self.fail(i, Unprocessable("a conversation_id, or a contact and a channel, is required"))
                continue
            channel = self.channels.get(it.channel_id)
            if (channel is None or channel.workspace_id != it.workspace_id) and not it.channel_type:
                self.fail(i, NotFound("channel not found"))
            elif it.channel_type and (
                channel is None or channel.workspace_id != it.workspace_id or channel.type != it.channel_type
            ):
                self.fail(i, Unprocessable(
                    f"no '{it.channel_type}' channel {it.channel_id} in this workspace",
                    code="channel_not_configured",
                ))

    # 2. Recipients by address: the contact that owns it, or a new one (in bulk).
    async def _recipients(self) -> None:
        wanted: dict[tuple[str, str], set[str]] = {}
        for i in self.open_items():
            it = self.items[i]
            if not it.conversation_id and not it.contact_id and it.address:
                key = (it.workspace_id, self.channels[cast(str, it.channel_id)].type)
                wanted.setdefault(key, set()).add(it.address)
        owners: dict[tuple[str, str, str], str] = {}
        for (ws, ctype), addresses in wanted.items():
            rows = await self.conn.execute(
                _IDENTITIES, {"b_ws": ws, "b_type": ctype, "b_addresses": list(addresses)}
            )
            found = {r.address: r.contact_id for r in rows}
            new_contacts, new_identities = [], []
            for address in sorted(addresses - found.keys()):
                contact_id = new_id("ct")
                new_contacts.append({
                    "id": contact_id, "workspace_id": ws, "external_id": None, "name": None,
                    "email": None, "phone": None, "country": None, "locale": None,
                    "timezone": None, "birthdate": None, "attributes": {},
                    "created_at": self.now, "updated_at": self.now,
                    **self.rules.contact_fields(ctype, address),
                })
                new_identities.append({
                    "id": new_id("idn"), "workspace_id": ws, "contact_id": contact_id,
                    "channel_type": ctype, "address": address, "created_at": self.now,
                })
                found[address] = contact_id
                self.new_contacts.add(contact_id)
            if new_contacts:
                # A concurrent first message to the same address makes one of the two
                # transactions fail on the identity's unique index; it is retried and
                # then finds the other's contact.
                await self.conn.execute(_INSERT_CONTACTS, new_contacts)
                await self.conn.execute(_INSERT_IDENTITIES, new_identities)
            owners.update({(ws, ctype, a): c for a, c in found.items()})
        for i in self.open_items():
            it = self.items[i]
            if not it.conversation_id and not it.contact_id and it.address:
                ctype = self.channels[cast(str, it.channel_id)].type
                self.items[i] = replace(it, contact_id=owners[(it.workspace_id, ctype, it.address)])

    # 3. Contacts: named ones must be the workspace's; placeholders are filled.
    async def _contacts(self) -> None:
        needs_fill = {
            i for i in self.open_items()
            if self.items[i].substitutions is not None and _has_placeholders(self.items[i].content)
        }
        named = {
            i for i in self.open_items()
            if self.items[i].contact_id and not self.items[i].conversation_id
        }
        ids = {self.items[i].contact_id for i in named | needs_fill} - {None}
        if not ids:
            return
        for r in await self.conn.execute(_CONTACTS, {"b_ids": list(ids)}):
            self.contacts[r.id] = Row(**r._mapping)
        for i in sorted(named | needs_fill):
            it = self.items[i]
            contact = self.contacts.get(it.contact_id or "")
            if it.contact_id and (contact is None or contact.workspace_id != it.workspace_id):
                self.fail(i, NotFound("contact not found"))
                continue
            if i in needs_fill:
                content, missing = _fill(it.content, contact, dict(it.substitutions or {}))
                if missing:
                    self.fail(i, RecipientError(
                        "a placeholder has no value for this recipient: " + ", ".join(sorted(missing)),
                        {"missing_placeholders": sorted(missing)},
                    ))
                    continue
                self.items[i] = replace(it, content=content)

    # 4. Conversations: found or opened, then locked for their seqs.
    async def _conversations(self) -> None:
        pairs = {
            (self.items[i].workspace_id, cast(str, self.items[i].contact_id), cast(str, self.items[i].channel_id))
            for i in self.open_items()
            if not self.items[i].conversation_id
        }
        if pairs:
            customers = {
                (self.items[i].workspace_id, cast(str, self.items[i].channel_id))
                for i in self.open_items()
                if not self.items[i].conversation_id and self.items[i].direction is Direction.INBOUND
            }
            open_ids = await self._find_or_open(pairs, customers)
            for i in self.open_items():
                it = self.items[i]
                if not it.conversation_id:
                    self.items[i] = replace(
                        it, conversation_id=open_ids[(it.workspace_id, cast(str, it.contact_id), cast(str, it.channel_id))]
                    )
        await self._lock({cast(str, self.items[i].conversation_id) for i in self.open_items()})
        for i in self.open_items():
            it = self.items[i]
            conv = self.convs.get(cast(str, it.conversation_id))
            if (
                conv is None
                or conv.workspace_id != it.workspace_id
                or (it.contact_id and conv.contact_id != it.contact_id)
            ):
                self.fail(i, NotFound("conversation not found"))
        await self._redirect_reopened()

    async def _find_or_open(
        self, pairs: set[tuple[str, str, str]], customers: set[tuple[str, str]]
    ) -> dict[tuple[str, str, str], str]:
        """``customers``: the (workspace, channel) pairs where a customer's own message
        opens the conversation; those get their first assignee (a bot attached there)."""
        found = await self._open_conversations(pairs)
        missing = pairs - found.keys()
        if missing:
            asked = {(ws, ch) for ws, _, ch in missing} & customers
            first = (
                await self.rules.first_assignees(self.conn, asked)
                if asked and self.rules.first_assignees is not None
                else {}
            )
            rows = [
                {
                    "id": new_id("cnv"), "workspace_id": ws, "contact_id": contact, "channel_id": channel,
                    "channel_type": self.channels[channel].type, "status": ConversationStatus.OPEN.value,
                    "assignee_type": first.get((ws, channel), (None, None))[0],
                    "assignee_id": first.get((ws, channel), (None, None))[1],
                    "team": None, "last_seq": 0, "last_message_at": None,
                    "created_at": self.now, "updated_at": self.now,
                }
                for ws, contact, channel in sorted(missing)
            ]
            # The partial unique index on the open conversation makes a concurrent opener
            # wait for ours (or we for theirs) and then do nothing: both use the winner.
            stmt = insert_or(self.conn, _conversations).on_conflict_do_nothing(
                index_elements=["workspace_id", "contact_id", "channel_id"], index_where=_OPEN_INDEX
            )
            await self.conn.execute(stmt, rows)
            found = await self._open_conversations(pairs)
            self.opened |= {r["id"] for r in rows} & set(found.values())
        return found

    async def _open_conversations(self, pairs: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        rows = await self.conn.execute(
            _OPEN_CONVERSATIONS,
            {"b_contacts": list({c for _, c, _ in pairs}), "b_channels": list({ch for _, _, ch in pairs})},
        )
        by_pair = {(r.contact_id, r.channel_id): r.id for r in rows}
        return {(ws, c, ch): by_pair[(c, ch)] for ws, c, ch in pairs if (c, ch) in by_pair}

    async def _lock(self, ids: set[str]) -> None:
        """Lock conversations (PostgreSQL; in id order so two groups never wait in a
        circle) so the seqs handed out from last_seq stay ours until the commit. SQLite
        has no FOR UPDATE: its one writer is serialised in process."""
        ids -= self.convs.keys()
        if ids:
            lock = _LOCK_CONVERSATIONS if self.sqlite else _LOCK_CONVERSATIONS_PG
            rows = await self.conn.execute(lock, {"b_ids": sorted(ids)})
            keys = tuple(rows.keys())  # once: a row's _mapping builds its keys every time
            for r in rows:
                values = dict(zip(keys, r, strict=True))
                self.convs[values["id"]] = Row(**values)

    async def _redirect_reopened(self) -> None:
        """A customer writing into a resolved conversation reopens it, unless another
        conversation with them on that channel is open by now: the message joins that one."""
        resolved = {
            (c.contact_id, c.channel_id)
            for i in self.open_items()
            if self.items[i].direction is Direction.INBOUND
            and (c := self.convs[cast(str, self.items[i].conversation_id)]).status == ConversationStatus.RESOLVED
        }
        if not resolved:
            return
        open_now = await self._open_conversations({("", c, ch) for c, ch in resolved})
        await self._lock(set(open_now.values()))
        for i in self.open_items():
            it = self.items[i]
            conv = self.convs[cast(str, it.conversation_id)]
            other = open_now.get(("", conv.contact_id, conv.channel_id))
            if it.direction is Direction.INBOUND and conv.status == ConversationStatus.RESOLVED and other:
                self.items[i] = replace(it, conversation_id=other)

    # 5. Rules that may refuse an item before anything of it is written.
    async def _rules(self) -> None:
        restricted: list[int] = []
        for i in self.open_items():
            it = self.items[i]
            if it.direction is not Direction.OUTBOUND or it.private:
                continue  # customers' messages and private notes never leave
            conv = self.convs[cast(str, it.conversation_id)]
            ctype = conv.channel_type
            if not self.rules.sendable(ctype):
                self.fail(i, Unprocessable(
                    f"sending on '{ctype}' is not available yet (no connector for this channel type)",
                    code="channel_not_supported",
                ))
                continue
            caps = self.rules.capabilities(ctype)
            # A scheduled message must still be inside the window when it goes out.
            at = max(self.now, it.send_at) if it.send_at else self.now
            refusal = send_rules.tag_refusal(ctype, caps, it.message_tag) or send_rules.window_refusal(
                ctype, caps, it.content, it.message_tag, conv.last_inbound_at, at
            )
            if refusal is not None:
                self.fail(i, refused(refusal))
            elif caps.country_restricted:
                restricted.append(i)
        if restricted:
            await self._countries(restricted)

    async def _countries(self, indexes: list[int]) -> None:
        """SMS and voice go only to the countries on the workspace's list."""
        convs = [self.convs[cast(str, self.items[i].conversation_id)] for i in indexes]
        unnamed = [c for i, c in zip(indexes, convs, strict=True) if not self.items[i].address]
        newest: dict[tuple[str, str], str] = {}
        if unnamed:
            rows = await self.conn.execute(_NEWEST_ADDRESSES, {
                "b_contacts": list({c.contact_id for c in unnamed}),
                "b_types": list({c.channel_type for c in unnamed}),
            })
            for r in rows:
                newest.setdefault((r.contact_id, r.channel_type), r.address)  # newest first
        lists = {
            r.id: r.send_countries
            for r in await self.conn.execute(
                _SEND_COUNTRIES, {"b_ids": list({self.items[i].workspace_id for i in indexes})}
            )
        }
        for i, conv in zip(indexes, convs, strict=True):
            it = self.items[i]
            address = it.address or newest.get((conv.contact_id, conv.channel_type))
            if address is None:
                continue  # no address at all: the delivery fails with no_address
            chosen = lists.get(it.workspace_id)
            allowed = DEFAULT_SEND_COUNTRIES if chosen is None else frozenset(chosen)
            refusal = send_rules.country_refusal(address, allowed)
            if refusal is not None:
                self.fail(i, refused(refusal))

    async def _forget_refused(self) -> None:
        """A conversation opened or a contact created in this run for refused items alone
        is deleted again (same transaction): a refusal stores nothing."""
        if not (self.opened or self.new_contacts):
            return
        used_convs = {self.items[i].conversation_id for i in self.open_items()}
        used_contacts = {self.convs[c].contact_id for c in used_convs if c in self.convs}
        stale_convs = self.opened - used_convs
        stale_contacts = self.new_contacts - used_contacts
        if stale_convs:
            ids = list(stale_convs)
            await self.conn.execute(_conversations.delete().where(_conversations.c.id.in_(ids)))
            self.opened -= stale_convs
            for cid in ids:
                self.convs.pop(cid, None)
        if stale_contacts:
            ids = list(stale_contacts)
            await self.conn.execute(_identities.delete().where(_identities.c.contact_id.in_(ids)))
            await self.conn.execute(_contacts.delete().where(_contacts.c.id.in_(ids)))
            self.new_contacts -= stale_contacts

    # 6. Seqs, then one INSERT per table.
    async def _write(self, fresh: list[int]) -> None:
        live = {i for i in fresh if not _scheduled(self.items[i], self.now)}
        counts: dict[str, int] = {}
        for i in live:
            cid = cast(str, self.items[i].conversation_id)
            counts[cid] = counts.get(cid, 0) + 1
        reopen = {
            cast(str, self.items[i].conversation_id)
            for i in live
            if self.items[i].direction is Direction.INBOUND
            and self.convs[cast(str, self.items[i].conversation_id)].status == ConversationStatus.RESOLVED
        }
        # The customer wrote: the customer-service window starts again.
        heard = {cast(str, self.items[i].conversation_id) for i in live if self.items[i].direction is Direction.INBOUND}
        next_seq: dict[str, int] = {}
        moves: list[tuple[Any, ...]] = []
        for cid, count in counts.items():
            conv = self.convs[cid]
            next_seq[cid] = conv.last_seq + 1
            conv.last_seq += count
            conv.last_message_at = conv.updated_at = self.now
            if cid in heard:
                conv.last_inbound_at = self.now
            if cid in reopen:
                conv.status = ConversationStatus.OPEN.value
            moves.append((conv.last_seq, self.now, conv.last_inbound_at, self.now, cid))

        subs = await work.subscriptions(self.conn, {self.items[i].workspace_id for i in fresh})
        work_rows: list[WorkRow] = []
        opened_by: set[int] = set()  # the items whose event opens their conversation
        for cid in self.opened:
            conv = self.convs[cid]
            opened = conversation_view(conv)
            work_rows += work.webhook_rows(subs, conv.workspace_id, None, "conversation.created", {"conversation": opened})
            first = next((i for i in fresh if self.items[i].conversation_id == cid), None)
            if first is not None:
                self.events[first].append(DomainEvent("conversation.created", conv.workspace_id, opened))
                opened_by.add(first)
        for cid in reopen:
            first = next(i for i in live if self.items[i].conversation_id == cid)
            self.events[first].append(
                DomainEvent("conversation.updated", self.convs[cid].workspace_id, conversation_view(self.convs[cid]))
            )

        messages: list[MessageValues] = []
        statuses: list[StatusRow] = []
        conv_views: dict[str, ConversationView] = {}  # final for this group: one view each
        for i in fresh:
            it = self.items[i]
            conv = self.convs[cast(str, it.conversation_id)]
            conv_view = conv_views.get(conv.id) or conv_views.setdefault(conv.id, conversation_view(conv))
            before = len(work_rows)
            if i in live:
                seq: int | None = next_seq[conv.id]
                next_seq[conv.id] = cast(int, seq) + 1
                status = live_status(it, conv.channel_type, self.rules)
            else:
                seq, status = None, MessageStatus.SCHEDULED
            values = message_values(
                it, conv.id, seq, status, self.now, _segments(it, self.rules.capabilities(conv.channel_type))
            )
            messages.append(values)
            row = Row(**values)
            statuses.append(status_row(row.id, status, None, self.now))
            view = message_view(row)
            if subs.get(it.workspace_id) or it.notify_url:
                work_rows += work.webhook_rows(subs, it.workspace_id, row.id, "message.created", {"message": view})
                work_rows += work.webhook_rows(
                    subs, it.workspace_id, row.id, "message.status", status_payload(row, status), it.notify_url
                )
            if status is MessageStatus.SCHEDULED:
                release = {"message_id": row.id, **({"address": it.address} if it.address else {})}
                work_rows.append(work.work_row(it.workspace_id, outbox.RELEASE, row.id, release, it.send_at))
            else:
                effects, event = live_effects(row, view, conv, conv_view, status, self.rules, it.origin, it.address)
                work_rows += effects
                self.events[i].append(event)
            self.results[i] = Posted(view, conv_view, True, self.events[i], len(work_rows) > before or i in opened_by)
        # Its own statement: PostgreSQL applies one UPDATE of a row per statement.
        await _REOPEN_MANY.run(self.conn, [(ConversationStatus.OPEN.value, c) for c in reopen])
        # One round trip on PostgreSQL for all of the group's other writes (chat.db.bulk).
        await run_together(self.conn, [
            (_ADVANCE_MANY, moves), (_INSERT_MESSAGES, messages), (_INSERT_STATUSES, statuses),
            (_INSERT_WORK, work_rows),
        ])

    def _finish(self) -> list[Result]:
        out: list[Result] = []
        for i, res in enumerate(self.results):
            if isinstance(res, int):  # a repeat inside this group
                first = self.results[res]
                if isinstance(first, Posted):
                    author = first.message["author"]
                    if author["type"] == self.items[i].author_type and author["id"] == self.items[i].author_id:
                        res = Posted(first.message, first.conversation, False)
                    else:
                        res = taken_key()
                else:
                    res = cast(ParleyError, first)
            assert res is not None
            out.append(res)
        return out


def live_status(new: Any, channel_type: str, rules: StoreRules) -> MessageStatus:
    """The first status of a message that becomes visible now."""
    if new.direction is Direction.INBOUND:
        return MessageStatus.DELIVERED  # it has reached us
    if new.private or rules.socket_delivered(channel_type):
        # In-app delivery is the socket fan-out right after commit; private notes
        # never leave Parley.
        return MessageStatus.SENT
    return MessageStatus.QUEUED


def live_effects(
    row: Row, view: MessageView, conv: Row, conv_view: ConversationView, status: MessageStatus,
    rules: StoreRules, origin: str | None, address: str | None = None,
) -> tuple[list[WorkRow], DomainEvent]:
    """What follows from a message becoming visible: delivery, triggers, the live event."""
    rows: list[WorkRow] = []
    if status is MessageStatus.QUEUED:
        rows.append(work.delivery_row(row.workspace_id, row.id, conv.channel_id, address))
    for trigger in rules.triggers:
        payload = trigger.work_for(view, conv_view)
        if payload is not None:
            rows.append(work.work_row(row.workspace_id, trigger.kind, row.id, payload))
    event = DomainEvent("message.created", row.workspace_id, {"message": view, "conversation": conv_view}, origin=origin)
    return rows, event


async def release_scheduled(
    session: AsyncSession, message_id: str, rules: StoreRules, address: str | None = None
) -> list[DomainEvent] | None:
    """A scheduled message's time has come: it gets the next seq and goes out.

    The message row is locked first, so a concurrent cancel (a compare-and-set on
    ``scheduled``) and this release cannot both win. None if the message is gone."""
    conn = await session.connection()
    found = (
        await conn.execute(select(_messages).where(_messages.c.id == message_id).with_for_update())
    ).first()
    if found is None:
        return None
    if found.status != MessageStatus.SCHEDULED:
        return []  # cancelled meanwhile
    conv_row = (
        await conn.execute(select(_conversations).where(_conversations.c.id == found.conversation_id).with_for_update())
    ).one()
    conv = Row(**conv_row._mapping)
    now = utcnow()
    new = Row(**found._mapping)
    new.direction = Direction(found.direction)
    # The window may have closed since the message was scheduled (or the customer may
    # have written since): it is checked again now.
    window = None if new.private else send_rules.window_refusal(
        conv.channel_type, rules.capabilities(conv.channel_type), new.content, new.message_tag,
        conv.last_inbound_at, now,
    )
    detail: Any = None
    if not new.private and not rules.sendable(conv.channel_type):
        status = MessageStatus.FAILED
        detail = {"code": "channel_not_supported", "message": f"no connector for '{conv.channel_type}'"}
    elif window is not None:
        status = MessageStatus.FAILED
        detail = {"code": window.code, "message": window.message}
    else:
        status = live_status(new, conv.channel_type, rules)
    conv.last_seq += 1
    conv.last_message_at = conv.updated_at = now
    await conn.execute(_ADVANCE, {
        "b_id": conv.id, "b_seq": conv.last_seq, "b_status": conv.status, "b_now": now,
        "b_inbound": conv.last_inbound_at,
    })
    await conn.execute(
        update(_messages)
        .where(and_(_messages.c.id == message_id, _messages.c.status == MessageStatus.SCHEDULED.value))
        .values(seq=conv.last_seq, status=status.value, updated_at=now)
    )
    new.seq, new.status, new.updated_at = conv.last_seq, status.value, now
    await conn.execute(INSERT_STATUSES, [status_row(new.id, status, detail, now)])
    subs = await work.subscriptions(conn, {new.workspace_id})
    rows = work.webhook_rows(subs, new.workspace_id, new.id, "message.status", status_payload(new, status), new.notify_url)
    events = [DomainEvent("message.status", new.workspace_id, status_payload(new, status))]
    if status is not MessageStatus.FAILED:
        effects, event = live_effects(
            new, message_view(new), conv, conversation_view(conv), status, rules, None, address
        )
        rows += effects
        events.append(event)
    if rows:
        await conn.execute(work.INSERT_WORK, rows)
    return events


def message_values(
    new: Any, conversation_id: str, seq: int | None, status: MessageStatus, now: datetime,
    segments: int | None = None,
) -> MessageValues:
    """The columns of a new message row."""
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
        "segments": segments,
        "message_tag": new.message_tag,
        "created_at": now,
        "updated_at": now,
    }


def _segments(new: NewMessage, caps: Capabilities) -> int | None:
    """The SMS parts of a text message on a channel type billed by the part."""
    if caps.sms_segments and new.content.get("type") == "text":
        return segment_count(str(new.content.get("text", "")))
    return None


def same_author(old: Any, new: Any) -> bool:
    """A client_message_id repeat counts only from the author who used the key first."""
    return bool(old.author_type == new.author_type and old.author_id == new.author_id)


def taken_key() -> Conflict:
    return Conflict(
        "this client_message_id is already used by another author",
        code="duplicate_client_message_id",
    )


def _scheduled(new: NewMessage, now: datetime) -> bool:
    return new.direction is Direction.OUTBOUND and new.send_at is not None and new.send_at > now


_TEXT_KEYS = ("text", "caption")


def _has_placeholders(content: Mapping[str, Any]) -> bool:
    return any(
        isinstance(content.get(k), str) and templating.placeholders(content[k]) for k in _TEXT_KEYS
    )


def _fill(
    content: dict[str, Any], contact: Any, substitutions: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    values = templating.values_for(contact, substitutions)
    filled = dict(content)
    missing: set[str] = set()
    for key in _TEXT_KEYS:
        if isinstance(content.get(key), str):
            filled[key], gaps = templating.render(content[key], values)
            missing |= gaps
    return filled, missing
