"""Tables. Every row carries ``workspace_id``: tenants never share a row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chat.db.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _fk(target: str) -> Any:
    return ForeignKey(target, ondelete="CASCADE")


class InstanceSecret(Base):
    """Server-wide values generated once (e.g. the token signing key)."""

    __tablename__ = "instance_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    widget_key: Mapped[str] = mapped_column(String(80), unique=True)
    identity_secret: Mapped[str] = mapped_column(String(120))
    webhook_secret: Mapped[str] = mapped_column(String(120))
    # Where SMS and voice may go (ISO 3166-1 alpha-2 codes); None: the default list
    # (chat.domain.countries.DEFAULT_SEND_COUNTRIES).
    send_countries: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="default")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedToken(Base):
    """An agent token logged out before it expired (by its ``jti``); kept until it would
    have expired anyway."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    agent_id: Mapped[str] = mapped_column(_fk("agents.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        Index("ix_contacts_ws_email", "workspace_id", "email"),
        Index("ix_contacts_ws_phone", "workspace_id", "phone"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    locale: Mapped[str | None] = mapped_column(String(35), default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    birthdate: Mapped[date | None] = mapped_column(Date, default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactIdentity(Base):
    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("workspace_id", "channel_type", "address"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    contact_id: Mapped[str] = mapped_column(_fk("contacts.id"), index=True)
    channel_type: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_lookup", "workspace_id", "contact_id", "channel_id", "status"),
        # One open (not resolved) conversation per contact and channel, whoever opens it.
        Index(
            "uq_conversations_open",
            "workspace_id",
            "contact_id",
            "channel_id",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    contact_id: Mapped[str] = mapped_column(_fk("contacts.id"))
    channel_id: Mapped[str] = mapped_column(_fk("channels.id"))
    channel_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_type: Mapped[str | None] = mapped_column(String(16), default=None)
    assignee_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # The agents' queue it waits in (a bot's hand-off may name one); None: everyone's.
    team: Mapped[str | None] = mapped_column(String(80), default=None)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
    # The customer's latest inbound message: the customer-service window counts from it.
    last_inbound_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # Also the index for lookups by workspace: no separate one on workspace_id.
        UniqueConstraint("workspace_id", "client_message_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    conversation_id: Mapped[str] = mapped_column(_fk("conversations.id"))
    # None while scheduled: a message gets its place in the conversation when released.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    direction: Mapped[str] = mapped_column(String(16))
    author_type: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(String(40), default=None)
    content: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    client_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    correlation_id: Mapped[str | None] = mapped_column(String(200), default=None)
    callback_data: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    notify_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    # SMS parts the text takes, on channel types billed by the part; None elsewhere.
    segments: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    # A provider's message tag (Messenger's HUMAN_AGENT ...), handed to the connector.
    message_tag: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageStatusEvent(Base):
    __tablename__ = "message_status_events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    message_id: Mapped[str] = mapped_column(_fk("messages.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReadHorizon(Base):
    """How far each participant has read a conversation."""

    __tablename__ = "read_horizons"
    conversation_id: Mapped[str] = mapped_column(_fk("conversations.id"), primary_key=True)
    participant_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[str | None] = mapped_column(_fk("contacts.id"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """Durable work written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # What the entry competes with for the worker's slots besides its kind: the channel
    # of a provider send, the subscription of a webhook. None: only the kind's bound.
    lane: Mapped[str | None] = mapped_column(String(200), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # A fresh value at every claim: the holder's later writes are conditional on it.
    claim: Mapped[str | None] = mapped_column(String(40), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One try at handing something to the outside (a provider or a webhook receiver)."""

    __tablename__ = "delivery_attempts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    outbox_id: Mapped[str] = mapped_column(_fk("outbox.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    target: Mapped[str] = mapped_column(String(2000))
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)  # the provider's
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """A message as a provider knows it: where it went and the provider's id for it.

    A table beside ``messages`` rather than columns on it: in-app messages, the bulk,
    never have one, and the unique index stays small. One row per message, at most.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # A provider's status callback finds its message in one lookup.
        UniqueConstraint("channel_id", "provider_message_id", name="uq_deliveries_provider_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    message_id: Mapped[str] = mapped_column(_fk("messages.id"), unique=True)
    channel_id: Mapped[str] = mapped_column(_fk("channels.id"))
    channel_type: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(512))  # the recipient address actually used
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(120))
    events: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)



class CannedResponse(Base):
    """A saved reply agents insert in the inbox by typing ``/<shortcut>``."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("workspace_id", "shortcut"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    shortcut: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Bot(Base):
    """A bot of a workspace: what answers (``kind`` and ``config``) and where (``channel_ids``,
    empty for every channel of the workspace). It is the first assignee of conversations
    customers open there."""

    __tablename__ = "bots"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # python | rasa | http
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_ids: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # None: the server's bot_timeout_seconds.
    timeout_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotMemory(Base):
    """What a bot remembers in one conversation between its turns (slots and the like)."""

    __tablename__ = "bot_memories"
    conversation_id: Mapped[str] = mapped_column(_fk("conversations.id"), primary_key=True)
    bot_id: Mapped[str] = mapped_column(_fk("bots.id"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotTurn(Base):
    """One bot turn: the customer message it answered and how it went. One per message
    and bot, written with the turn's effects: a retried turn finds it and does nothing."""

    __tablename__ = "bot_turns"
    __table_args__ = (
        UniqueConstraint("bot_id", "message_id"),
        Index("ix_bot_turns_conversation", "conversation_id", "id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_fk("workspaces.id"), index=True)
    bot_id: Mapped[str] = mapped_column(_fk("bots.id"))
    conversation_id: Mapped[str] = mapped_column(_fk("conversations.id"))
    message_id: Mapped[str] = mapped_column(_fk("messages.id"))
    intent: Mapped[str | None] = mapped_column(String(200), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    handler: Mapped[str | None] = mapped_column(String(200), default=None)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16))  # replied | handed_off | failed | timed_out
    error: Mapped[str | None] = mapped_column(Text, default=None)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The inbox's order (chat.services.inbox): latest activity first, then id.
Index(
    "ix_conversations_activity",
    Conversation.workspace_id,
    func.coalesce(Conversation.last_message_at, Conversation.created_at),
    Conversation.id,
)
