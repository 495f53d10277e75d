"""The JSON shapes of rows, shared by REST, sockets and webhooks.

Each view is a ``TypedDict``: a plain dict at run time (so it is what goes out as JSON),
with its keys and their types known to the type checker. The REST response models in
``chat.api`` document the same shapes for OpenAPI.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, NotRequired, TypedDict, TypeVar, overload

from chat.db import models as m

T = TypeVar("T")


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
@overload
def iso(value: datetime | None) -> str | None: ...
def iso(value: datetime | None) -> str | None:
    return _iso(value) if value else None


# A group of stored messages shares one timestamp, shown in every view of them.
@lru_cache(maxsize=256)
def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Page(TypedDict, Generic[T]):
    """A page of a list; ``next_cursor`` fetches the next one, None on the last."""

    data: list[T]
    next_cursor: str | None


class Party(TypedDict):
    """Who wrote a message, or who holds a conversation."""

    type: str  # contact, agent, bot or system
    id: str | None


class ContactMessageView(TypedDict):
    """A message as its contact's devices see it (``messages.contact_message_view``)."""

    id: str
    conversation_id: str
    seq: int | None  # None while scheduled: the seq comes at release
    direction: str
    author: Party
    content: dict[str, Any]
    status: str
    private: bool
    client_message_id: str | None
    send_at: str | None
    created_at: str


class MessageView(ContactMessageView):
    """A message as the workspace sees it: with its server-to-server fields."""

    correlation_id: str | None
    callback_data: Any
    segments: int | None  # SMS parts of the text (sms channels); None elsewhere
    message_tag: str | None  # the provider message tag it went out with (Messenger)


class StatusEventView(TypedDict):
    status: str
    detail: Any
    at: str


class AttemptView(TypedDict):
    """One try at handing something to the outside (a provider or a webhook receiver)."""

    id: str
    target: str
    attempt: int
    ok: bool
    status_code: int | None
    error_code: str | None
    error: str | None
    duration_ms: int
    at: str


class DeliveryView(TypedDict):
    """Where a message was handed over: the channel, the address used, the provider's id."""

    channel_id: str
    channel_type: str
    address: str
    provider_message_id: str | None
    created_at: str
    updated_at: str


class MessageDetail(MessageView):
    """One message with its status history and delivery (``GET /v1/messages/{id}``)."""

    status_history: list[StatusEventView]
    delivery: DeliveryView | None
    delivery_attempts: list[AttemptView]


class StatusPayload(TypedDict):
    """``message.status`` as webhooks, ``notify_url`` and sockets get it."""

    message_id: str
    conversation_id: str
    seq: int | None
    status: str
    correlation_id: str | None
    callback_data: Any
    error: NotRequired[dict[str, Any]]  # a failure's ``code`` and ``message`` (the provider's)


class MessagePreview(TypedDict):
    """A conversation's last message as the inbox list shows it."""

    id: str
    seq: int | None
    author_type: str
    content_type: str | None
    text: str | None
    private: bool
    at: str


class Assignee(TypedDict):
    type: str  # agent or bot
    id: str | None


class ConversationView(TypedDict):
    id: str
    contact_id: str
    channel_id: str
    channel_type: str
    status: str
    assignee: Assignee | None
    team: str | None
    last_seq: int
    last_message_at: str | None
    created_at: str
    updated_at: str


class InboxConversationView(ConversationView):
    """A conversation as the inbox lists it."""

    contact_name: str | None
    last_message: MessagePreview | None
    unread_count: int | None  # None when no agent asks (an API key reads nothing)


class IdentityView(TypedDict):
    id: str
    channel_type: str
    address: str
    created_at: str


class ContactIdentityView(IdentityView):
    """An identity with the contact it belongs to."""

    contact_id: str


class ContactView(TypedDict):
    id: str
    external_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    country: str | None
    locale: str | None
    timezone: str | None
    birthdate: str | None
    attributes: dict[str, Any]
    identities: list[IdentityView]
    created_at: str
    updated_at: str


class AgentView(TypedDict):
    id: str
    email: str
    name: str
    role: str
    active: bool
    created_at: str


class ChannelView(TypedDict):
    id: str
    type: str
    name: str
    config: dict[str, Any]  # secrets masked
    webhook_url: str | None  # where the provider calls back, for types that receive webhooks
    created_at: str
    updated_at: str


class EventView(TypedDict):
    id: str
    name: str
    contact_id: str | None
    payload: dict[str, Any]
    created_at: str


class WebhookView(TypedDict):
    """A webhook subscription; ``secret`` is masked except in the answer that creates it."""

    id: str
    url: str
    events: list[str]
    active: bool
    secret: str
    created_at: str


class CarriedEvent(TypedDict):
    id: str | None
    type: str | None


class WebhookDeliveryState(TypedDict):
    id: str
    state: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


class WebhookAttemptView(AttemptView):
    """One POST to a subscription, with the event it carried and where its delivery stands."""

    message_id: str | None
    event: CarriedEvent
    delivery: WebhookDeliveryState | None


class PresenceView(TypedDict):
    type: str  # agent or contact
    id: str
    online: bool


# Views take ORM rows or anything with the same attributes (group commit builds plain rows).
MessageRow = m.Message | Any
ConversationRow = m.Conversation | Any


def message_view(msg: MessageRow) -> MessageView:
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "seq": msg.seq,
        "direction": msg.direction,
        "author": {"type": msg.author_type, "id": msg.author_id},
        "content": msg.content,
        "status": msg.status,
        "private": msg.private,
        "client_message_id": msg.client_message_id,
        "correlation_id": msg.correlation_id,
        "callback_data": msg.callback_data,
        "segments": msg.segments,
        "message_tag": msg.message_tag,
        "send_at": iso(msg.send_at),
        "created_at": iso(msg.created_at),
    }


PREVIEW_CHARS = 200


# Which content field a list shows, per content type (a template shows none).
_PREVIEW_FIELDS = {"text": "text", "buttons": "text", "media": "caption", "location": "name"}


def preview_text(content: dict[str, Any]) -> str | None:
    """What a list shows of a message: its text, caption or place name, cut short."""
    value = content.get(_PREVIEW_FIELDS.get(content.get("type", ""), ""))
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= PREVIEW_CHARS else value[: PREVIEW_CHARS - 1] + "…"


def message_preview(msg: MessageRow) -> MessagePreview:
    """A conversation's last message as the inbox list shows it."""
    content = msg.content or {}
    return {
        "id": msg.id,
        "seq": msg.seq,
        "author_type": msg.author_type,
        "content_type": content.get("type"),
        "text": preview_text(content),
        "private": msg.private,
        "at": iso(msg.created_at),
    }


def conversation_view(conv: ConversationRow) -> ConversationView:
    assignee: Assignee | None = (
        {"type": conv.assignee_type, "id": conv.assignee_id} if conv.assignee_type else None
    )
    return {
        "id": conv.id,
        "contact_id": conv.contact_id,
        "channel_id": conv.channel_id,
        "channel_type": conv.channel_type,
        "status": conv.status,
        "assignee": assignee,
        "team": conv.team,
        "last_seq": conv.last_seq,
        "last_message_at": iso(conv.last_message_at),
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
    }


def identity_view(ident: m.ContactIdentity) -> IdentityView:
    return {
        "id": ident.id,
        "channel_type": ident.channel_type,
        "address": ident.address,
        "created_at": iso(ident.created_at),
    }


def contact_view(c: m.Contact, identities: list[m.ContactIdentity]) -> ContactView:
    return {
        "id": c.id,
        "external_id": c.external_id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "country": c.country,
        "locale": c.locale,
        "timezone": c.timezone,
        "birthdate": c.birthdate.isoformat() if c.birthdate else None,
        "attributes": c.attributes or {},
        "identities": [identity_view(i) for i in identities],
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def status_event_view(ev: m.MessageStatusEvent) -> StatusEventView:
    return {"status": ev.status, "detail": ev.detail, "at": iso(ev.created_at)}


def attempt_view(a: m.DeliveryAttempt) -> AttemptView:
    return {
        "id": a.id,
        "target": a.target,
        "attempt": a.attempt,
        "ok": a.ok,
        "status_code": a.status_code,
        "error_code": a.error_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "at": iso(a.created_at),
    }


def delivery_view(d: m.Delivery) -> DeliveryView:
    return {
        "channel_id": d.channel_id,
        "channel_type": d.channel_type,
        "address": d.address,
        "provider_message_id": d.provider_message_id,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
    }
