"""The JSON shapes of rows, shared by REST, sockets and webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chat.db import models as m


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# Views take ORM rows or anything with the same attributes (group commit builds plain rows).
MessageRow = m.Message | Any
ConversationRow = m.Conversation | Any


def message_view(msg: MessageRow) -> dict[str, Any]:
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


def message_preview(msg: MessageRow) -> dict[str, Any]:
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


def conversation_view(conv: ConversationRow) -> dict[str, Any]:
    assignee = (
        {"type": conv.assignee_type, "id": conv.assignee_id} if conv.assignee_type else None
    )
    return {
        "id": conv.id,
        "contact_id": conv.contact_id,
        "channel_id": conv.channel_id,
        "channel_type": conv.channel_type,
        "status": conv.status,
        "assignee": assignee,
        "last_seq": conv.last_seq,
        "last_message_at": iso(conv.last_message_at),
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
    }


def identity_view(ident: m.ContactIdentity) -> dict[str, Any]:
    return {
        "id": ident.id,
        "channel_type": ident.channel_type,
        "address": ident.address,
        "created_at": iso(ident.created_at),
    }


def contact_view(c: m.Contact, identities: list[m.ContactIdentity]) -> dict[str, Any]:
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


def status_event_view(ev: m.MessageStatusEvent) -> dict[str, Any]:
    return {"status": ev.status, "detail": ev.detail, "at": iso(ev.created_at)}


def attempt_view(a: m.DeliveryAttempt) -> dict[str, Any]:
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


def delivery_view(d: m.Delivery) -> dict[str, Any]:
    return {
        "channel_id": d.channel_id,
        "channel_type": d.channel_type,
        "address": d.address,
        "provider_message_id": d.provider_message_id,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
    }
