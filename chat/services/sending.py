"""The unified send: one request, many recipients, any channel type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import models as m
from chat.domain.channels import Registry
from chat.domain.enums import AuthorType, Direction
from chat.domain.errors import NotFound, Unprocessable
from chat.services import templating
from chat.services.conversations import Conversations, NewMessage, Posted
from chat.services.identities import contact_for_address


@dataclass(frozen=True)
class Recipient:
    contact_id: str | None = None
    address: str | None = None
    substitutions: dict[str, Any] | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class SendRequest:
    channel_type: str
    recipients: list[Recipient]
    content: dict[str, Any]
    send_at: datetime | None = None
    client_message_id: str | None = None
    callback_data: Any = None
    notify_url: str | None = None
    author_type: str = AuthorType.SYSTEM.value
    author_id: str | None = None
    channel_id: str | None = None  # a specific channel of that type


class Sender:
    def __init__(self, conversations: Conversations, registry: Registry) -> None:
        self.conversations = conversations
        # A type is sendable when it has a working delivery path: the socket fan-out or
        # a connector (``registry.spec(type).sendable``).
        self.registry = registry

    async def send(self, workspace_id: str, req: SendRequest) -> list[Posted]:

        async def build(session: AsyncSession) -> list[NewMessage]:
            return await self._prepare(session, workspace_id, req)

        return await self.conversations.transact(build)

    async def _prepare(
        self, session: AsyncSession, workspace_id: str, req: SendRequest
    ) -> list[NewMessage]:
        """Resolve every recipient and fill placeholders; raising rolls everything back."""
        many = len(req.recipients) > 1
        query = select(m.Channel).where(
            m.Channel.workspace_id == workspace_id, m.Channel.type == req.channel_type
        )
        if req.channel_id:
            query = query.where(m.Channel.id == req.channel_id)
        channel = await session.scalar(query.order_by(m.Channel.id).limit(1))
        if channel is None and req.channel_id:
            raise Unprocessable(
                f"no '{req.channel_type}' channel {req.channel_id} in this workspace",
                code="channel_not_configured",
            )
        if channel is None:
            raise Unprocessable(
                f"no '{req.channel_type}' channel is configured in this workspace",
                code="channel_not_configured",
            )
        spec = self.registry.spec(req.channel_type)
        if not spec.sendable:
            raise Unprocessable(
                f"sending on '{req.channel_type}' is not available yet",
                code="channel_not_supported",
            )
        batch: list[NewMessage] = []
        problems: list[dict[str, Any]] = []
        for index, rcpt in enumerate(req.recipients):
            if rcpt.contact_id:
                contact = await session.get(m.Contact, rcpt.contact_id)
                if contact is None or contact.workspace_id != workspace_id:
                    if many:
                        problems.append({"recipient": index, "error": "contact not found"})
                        continue
                    raise NotFound("contact not found")
            else:
                assert rcpt.address is not None
                try:
                    address = spec.normalise(rcpt.address)
                except ValueError as exc:
                    problems.append({"recipient": index, "error": str(exc)})
                    continue
                contact = await contact_for_address(session, workspace_id, req.channel_type, address)
            content, missing = _fill(req.content, contact, rcpt.substitutions or {})
            if missing:
                problems.append({"recipient": index, "missing_placeholders": sorted(missing)})
                continue
            cmid = req.client_message_id
            if cmid and many:
                cmid = f"{cmid}:{index}"
            batch.append(
                NewMessage(
                    workspace_id=workspace_id,
                    content=content,
                    direction=Direction.OUTBOUND,
                    author_type=req.author_type,
                    author_id=req.author_id,
                    contact_id=contact.id,
                    channel_id=channel.id,
                    client_message_id=cmid,
                    correlation_id=rcpt.correlation_id,
                    callback_data=req.callback_data,
                    notify_url=req.notify_url,
                    send_at=req.send_at,
                )
            )
        if problems:
            raise Unprocessable(
                "some recipients cannot be sent to", code="invalid_recipients", details=problems
            )
        return batch


def _fill(
    content: dict[str, Any], contact: m.Contact, substitutions: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    text_keys = [k for k in ("text", "caption") if isinstance(content.get(k), str)]
    if not any(templating.placeholders(content[k]) for k in text_keys):
        return content, set()
    values = templating.values_for(contact, substitutions)
    filled = dict(content)
    missing: set[str] = set()
    for key in text_keys:
        filled[key], gaps = templating.render(content[key], values)
        missing |= gaps
    return filled, missing
