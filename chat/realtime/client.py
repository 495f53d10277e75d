"""``/client``: end customers in the web widget and the mobile SDKs.

A connection signs in as a contact (see ``chat.services.visitors``), joins the
contact's room (all of the contact's devices and tabs) and is greeted with
``session``. Everything it does goes through the services as that contact, inside
that contact's conversations only.

An anonymous visitor is no contact until its first ``message`` (or ``register_push``)
makes it one; until then it has the id its contact will have, no conversations, and
is not online for the agents. Deleting the contact closes its connections; an event
of one that outlived the deletion answers ``contact_deleted`` and closes it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chat.domain.enums import AuthorType, Direction, MessageStatus
from chat.domain.errors import NotFound, ParleyError
from chat.realtime import protocol, rooms
from chat.realtime.namespace import Ack, GuardedNamespace, Peer, handles, refuse
from chat.realtime.protocol import (
    ClientMessage,
    Profile,
    Receipt,
    RegisterPush,
    Resync,
    Typing,
    ok,
)
from chat.services.conversations import NewMessage
from chat.services.messages import Reader, contact_message_view
from chat.services.presence import CONTACT, Person
from chat.services.visitors import Credentials, UserClaim


@dataclass(slots=True)
class ClientPeer(Peer):
    contact_id: str = ""
    channel_id: str = ""
    known: bool = True  # False: an anonymous visitor that is no contact yet
    becoming: asyncio.Task[None] | None = None  # making it one, awaited by every event

    @property
    def person(self) -> Person:
        return Person(self.workspace_id, CONTACT, self.contact_id)

    @property
    def reader(self) -> Reader:
        return Reader(CONTACT, self.contact_id)


class ClientNamespace(GuardedNamespace):
    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> Peer:
        services = self.holder.get()
        try:
            given = protocol.ClientAuth.model_validate(auth)
        except ValidationError as exc:
            raise refuse("invalid_auth", protocol.describe(exc)) from exc
        user = given.user
        visitor = await services.visitors.sign_in(
            Credentials(
                widget_key=given.widget_key,
                session=given.session,
                user=UserClaim(user.external_id, user.hmac, user.name, user.email)
                if user
                else None,
                user_token=given.user_token,
                origin=environ.get("HTTP_ORIGIN"),
            )
        )
        peer = ClientPeer(
            **self.new_peer(sid, visitor.workspace_id),
            contact_id=visitor.contact_id,
            channel_id=visitor.channel_id,
            known=visitor.known,
        )
        await self.enter_room(sid, rooms.contact(visitor.contact_id))
        peer.greeting = (
            "session",
            {
                "session": visitor.session,
                "contact_id": visitor.contact_id,
                "external_id": visitor.external_id,
                "conversations": visitor.conversations,
                "widget": visitor.widget,
            },
        )
        if peer.known:
            await services.presence.join(peer.person, sid)
        return peer

    async def leave(self, peer: Peer) -> None:
        assert isinstance(peer, ClientPeer)
        await self.holder.get().presence.leave(peer.person, peer.sid)

    async def gone(self, peer: Peer) -> ParleyError | None:
        assert isinstance(peer, ClientPeer)
        if peer.known and not await self.holder.get().visitors.exists(
            peer.workspace_id, peer.contact_id
        ):
            return NotFound("this contact was deleted", code="contact_deleted")
        return None

    async def _become_contact(self, peer: ClientPeer) -> None:
        """The anonymous visitor's first write makes it a contact, once: every event that
        comes meanwhile waits for the same task, and they resume in the order they came."""
        if peer.becoming is None:
            peer.becoming = asyncio.get_running_loop().create_task(self._make_contact(peer))
        try:
            await peer.becoming
        except Exception:
            peer.becoming = None  # the next event tries again
            raise

    async def _make_contact(self, peer: ClientPeer) -> None:
        services = self.holder.get()
        await services.visitors.become_contact(peer.workspace_id, peer.contact_id)
        peer.known = True
        if peer.sid in self.peers:
            await services.presence.join(peer.person, peer.sid)

    @handles("message", ClientMessage)
    async def on_message(self, peer: ClientPeer, p: ClientMessage) -> Ack:
        if not peer.known:
            await self._become_contact(peer)
        # No await comes before the post is queued, so one socket's messages are
        # stored in the order it sent them.
        posted = await self.holder.get().conversations.post_message(
            NewMessage(
                workspace_id=peer.workspace_id,
                content=p.content.model_dump(mode="json", exclude_none=True),
                direction=Direction.INBOUND,
                author_type=AuthorType.CONTACT.value,
                author_id=peer.contact_id,
                conversation_id=p.conversation_id,
                contact_id=peer.contact_id,
                channel_id=peer.channel_id,
                client_message_id=p.client_message_id,
                origin=peer.sid,
            )
        )
        return ok(
            message=contact_message_view(posted.message),
            conversation=posted.conversation,
            duplicate=not posted.created,
        )

    @handles("typing", Typing)
    async def on_typing(self, peer: ClientPeer, p: Typing) -> Ack:
        services = self.holder.get()
        await services.directory.conversation(
            peer.workspace_id, p.conversation_id, contact_id=peer.contact_id
        )
        if not peer.typing.allow(p.conversation_id, p.typing):
            return ok(throttled=True)
        await self.audience.agents(
            peer.workspace_id,
            "typing",
            {
                "conversation_id": p.conversation_id,
                "typing": p.typing,
                "author": {"type": CONTACT, "id": peer.contact_id},
            },
        )
        return ok()

    @handles("delivered", Receipt)
    async def on_delivered(self, peer: ClientPeer, p: Receipt) -> Ack:
        return await self._receipt(peer, p, MessageStatus.DELIVERED)

    @handles("read", Receipt)
    async def on_read(self, peer: ClientPeer, p: Receipt) -> Ack:
        return await self._receipt(peer, p, MessageStatus.READ)

    async def _receipt(self, peer: ClientPeer, p: Receipt, status: MessageStatus) -> Ack:
        seq = await self.holder.get().messages.acknowledge(
            peer.workspace_id, p.conversation_id, peer.reader, p.seq, status, origin=peer.sid
        )
        return ok(seq=seq)

    @handles("resync", Resync)
    async def on_resync(self, peer: ClientPeer, p: Resync) -> Ack:
        page = await self.holder.get().messages.catch_up(
            peer.workspace_id, p.conversation_id, p.after_seq, p.limit, contact_id=peer.contact_id
        )
        return ok(messages=page.messages, last_seq=page.last_seq, has_more=page.has_more)

    @handles("profile", Profile)
    async def on_profile(self, peer: ClientPeer, p: Profile) -> Ack:
        """The pre-chat form: name and email fill the contact's profile where empty."""
        if not peer.known:
            await self._become_contact(peer)
        profile = await self.holder.get().visitors.fill_profile(
            peer.workspace_id, peer.contact_id, p.name, p.email
        )
        return ok(profile=profile)

    @handles("register_push", RegisterPush)
    async def on_register_push(self, peer: ClientPeer, p: RegisterPush) -> Ack:
        if not peer.known:
            await self._become_contact(peer)
        identity = await self.holder.get().visitors.register_push(
            peer.workspace_id, peer.contact_id, p.channel_type, p.token
        )
        return ok(identity=identity)
