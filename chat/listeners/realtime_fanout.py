"""Bus subscriber: committed changes become socket events in the right rooms.

| domain event | ``/agent`` (workspace's agents room) | ``/client`` (the contact's room) |
| --- | --- | --- |
| ``message.created`` | ``message`` | ``message`` (never a private note) |
| ``message.status`` | ``message.status`` | ``message.status`` |
| ``conversation.created`` | ``conversation.created`` | ``conversation.updated`` |
| ``conversation.updated`` | ``conversation.updated`` | ``conversation.updated`` |
| ``conversation.read`` | ``read`` | ``read`` |
| ``presence.changed`` | ``presence`` | |
| ``conversation.typing`` (a bot at work) | ``typing`` | ``typing`` |

A Rasa widget session of the contact (``/rasa``) hears only the replies: messages not
written by the contact, never a private note.

The socket that caused a change (the event's ``origin``) has its ack and is skipped.
Customers only hear about their conversations on socket-delivered channel types (the
registry's ``socket``: in-app); other channels reach them through their connectors. The ``Audience`` is the transport's side: with Socket.IO it
emits to rooms through the server's client manager, so with Redis every process's
sockets are reached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from chat.bus import DomainEvent
from chat.domain.channels import SOCKET_TYPES
from chat.domain.enums import AuthorType
from chat.services.directory import ConversationRef, Directory
from chat.services.messages import contact_message_view
from chat.services.views import ContactMessageView


class Audience(Protocol):
    """Who hears an event; the transport (``chat.realtime``) knows how to reach them."""

    async def agents(
        self, workspace_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        """Every agent connection of the workspace, except the socket ``skip``."""

    async def contact(
        self, contact_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        """Every device and tab of the contact, except the socket ``skip``."""

    async def rasa(self, contact_id: str, message: ContactMessageView) -> None:
        """The contact's Rasa widget sessions, with a reply (the contact's view of the
        message); the transport puts it in Rasa's shape."""


class RealtimeFanout:
    def __init__(self, audience: Audience, directory: Directory) -> None:
        self.audience = audience
        self.directory = directory
        self._routes: dict[str, Callable[[DomainEvent], Awaitable[None]]] = {
            "message.created": self._message_created,
            "message.status": self._message_status,
            "conversation.created": self._conversation_created,
            "conversation.updated": self._conversation_updated,
            "conversation.read": self._conversation_read,
            "presence.changed": self._presence_changed,
            "conversation.typing": self._conversation_typing,
        }

    async def __call__(self, event: DomainEvent) -> None:
        route = self._routes.get(event.type)
        if route is not None:
            await route(event)

    async def _to_agents(self, name: str, event: DomainEvent, data: Any) -> None:
        await self.audience.agents(event.workspace_id, name, data, skip=event.origin)

    async def _to_contact(
        self, name: str, event: DomainEvent, ref: ConversationRef, data: Any
    ) -> None:
        if ref.channel_type in SOCKET_TYPES:
            await self.audience.contact(ref.contact_id, name, data, skip=event.origin)

    def _remember(self, event: DomainEvent, conv: Mapping[str, Any]) -> ConversationRef:
        """The ref of a conversation the event carries whole (warming the directory)."""
        ref = ConversationRef(
            conv["id"], event.workspace_id, conv["contact_id"], conv["channel_type"]
        )
        self.directory.remember(ref)
        return ref

    async def _message_created(self, event: DomainEvent) -> None:
        msg, conv = event.data["message"], event.data["conversation"]
        await self._to_agents(
            "message", event, {"conversation_id": conv["id"], "message": msg, "conversation": conv}
        )
        if msg.get("private"):
            return
        ref = self._remember(event, conv)
        shown = contact_message_view(msg)
        await self._to_contact(
            "message", event, ref, {"conversation_id": conv["id"], "message": shown}
        )
        if ref.channel_type in SOCKET_TYPES and shown["author"]["type"] != AuthorType.CONTACT:
            await self.audience.rasa(ref.contact_id, shown)

    async def _message_status(self, event: DomainEvent) -> None:
        data = event.data
        await self._to_agents("message.status", event, data)
        ref = await self.directory.conversation(event.workspace_id, data["conversation_id"])
        shown = {
            k: data[k] for k in ("message_id", "conversation_id", "seq", "status") if k in data
        }
        await self._to_contact("message.status", event, ref, shown)

    async def _conversation_created(self, event: DomainEvent) -> None:
        await self._to_agents("conversation.created", event, event.data)
        await self._to_contact(
            "conversation.updated", event, self._remember(event, event.data), event.data
        )

    async def _conversation_updated(self, event: DomainEvent) -> None:
        await self._to_agents("conversation.updated", event, event.data)
        await self._to_contact(
            "conversation.updated", event, self._remember(event, event.data), event.data
        )

    async def _conversation_read(self, event: DomainEvent) -> None:
        data = event.data
        shown = {k: data[k] for k in ("conversation_id", "reader", "seq")}
        await self._to_agents("read", event, shown)
        ref = await self.directory.conversation(event.workspace_id, data["conversation_id"])
        await self._to_contact("read", event, ref, shown)

    async def _conversation_typing(self, event: DomainEvent) -> None:
        data = event.data
        await self._to_agents("typing", event, data)
        ref = await self.directory.conversation(event.workspace_id, data["conversation_id"])
        await self._to_contact("typing", event, ref, data)

    async def _presence_changed(self, event: DomainEvent) -> None:
        await self._to_agents("presence", event, event.data)
