"""The unified send: one request, many recipients, any channel type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chat.domain.channels import Registry
from chat.domain.enums import AuthorType, Direction
from chat.domain.errors import Unprocessable
from chat.services.conversations import Conversations, NewMessage, Posted


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
    message_tag: str | None = None  # a provider message tag (Messenger)


class Sender:
    """Checks the channel and the addresses, then hands the messages to the write path:
    one recipient joins the group commit; many are stored all or nothing."""

    def __init__(
        self,
        conversations: Conversations,
        registry: Registry,
    ) -> None:
        self.conversations = conversations
        # A type is sendable when it has a way out: the socket fan-out or a connector.
        self.registry = registry

    async def send(self, workspace_id: str, req: SendRequest) -> list[Posted]:
        # Whether the channel exists and can send is the write path's rule (one place).
        batch = self._messages(workspace_id, req)
        if len(batch) == 1:
            return [await self.conversations.post_message(batch[0])]
        return await self.conversations.post_messages(batch)

    def _messages(self, workspace_id: str, req: SendRequest) -> list[NewMessage]:
        many = len(req.recipients) > 1
        batch: list[NewMessage] = []
        problems: list[dict[str, Any]] = []
        for index, rcpt in enumerate(req.recipients):
            address = None
            if not rcpt.contact_id:
                assert rcpt.address is not None
                try:
                    address = self.registry.spec(req.channel_type).normalise(rcpt.address)
                except ValueError as exc:
                    problems.append({"recipient": index, "error": str(exc)})
                    continue
            cmid = req.client_message_id
            if cmid and many:
                cmid = f"{cmid}:{index}"
            batch.append(
                NewMessage(
                    workspace_id=workspace_id,
                    content=req.content,
                    direction=Direction.OUTBOUND,
                    author_type=req.author_type,
                    author_id=req.author_id,
                    contact_id=rcpt.contact_id,
                    address=address,
                    channel_id=req.channel_id,
                    channel_type=req.channel_type,
                    substitutions=rcpt.substitutions or {},
                    client_message_id=cmid,
                    correlation_id=rcpt.correlation_id,
                    callback_data=req.callback_data,
                    notify_url=req.notify_url,
                    send_at=req.send_at,
                    message_tag=req.message_tag,
                )
            )
        if problems:
            raise Unprocessable(
                "some recipients cannot be sent to", code="invalid_recipients", details=problems
            )
        return batch
