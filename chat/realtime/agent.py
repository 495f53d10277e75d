"""``/agent``: the agent inbox.

A connection signs in with an agent token, joins its workspace's agents room, its own
agent room and its token's room, and is greeted with ``session``. Deactivating the
agent or logging the token out closes it (``chat.listeners.realtime_eviction``). An agent only ever reaches its own
workspace: every service call carries the token's workspace id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chat.domain.channels import SOCKET_TYPES
from chat.domain.enums import AuthorType, Direction, MessageStatus
from chat.realtime import protocol, rooms
from chat.realtime.namespace import Ack, GuardedNamespace, Peer, handles, refuse
from chat.realtime.protocol import (
    AgentMessage,
    Assign,
    Empty,
    Receipt,
    Resync,
    SetStatus,
    Typing,
    ok,
)
from chat.services.conversations import NewMessage
from chat.services.inbox import UNSET
from chat.services.messages import Reader
from chat.services.presence import AGENT, Person


@dataclass(slots=True)
class AgentPeer(Peer):
    agent_id: str = ""
    name: str = ""
    role: str = ""

    @property
    def person(self) -> Person:
        return Person(self.workspace_id, AGENT, self.agent_id)


class AgentNamespace(GuardedNamespace):
    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> Peer:
        services = self.holder.get()
        try:
            given = protocol.AgentAuth.model_validate(auth)
        except ValidationError as exc:
            raise refuse("invalid_auth", protocol.describe(exc)) from exc
        agent = await services.agents.from_token(given.token)
        if agent is None:
            raise refuse("invalid_token", "the agent token is invalid or expired")
        peer = AgentPeer(
            **self.new_peer(sid, agent.workspace_id),
            agent_id=agent.agent_id,
            name=agent.name,
            role=agent.role,
        )
        # Online first, then into the rooms: the agent's own coming online goes to the
        # others only (it is in its greeting's ``presence``), so ``session`` is the first
        # event this connection hears.
        await services.presence.join(peer.person, sid)
        await self.enter_room(sid, rooms.agents(agent.workspace_id))
        await self.enter_room(sid, rooms.agent(agent.agent_id))
        await self.enter_room(sid, rooms.agent_token(agent.token_id))
        if await services.agents.from_token(given.token) is None:
            # Deactivated or logged out while this connect was under way, before its
            # sockets could be closed: it was in none of the rooms then.
            await services.presence.leave(peer.person, sid)
            raise refuse("invalid_token", "the agent token is invalid or expired")
        peer.greeting = (
            "session",
            {
                "agent": {"id": agent.agent_id, "name": agent.name, "role": agent.role},
                "workspace_id": agent.workspace_id,
                "presence": await services.presence.online(agent.workspace_id),
            },
        )
        return peer

    async def leave(self, peer: Peer) -> None:
        assert isinstance(peer, AgentPeer)
        await self.holder.get().presence.leave(peer.person, peer.sid)

    @handles("message", AgentMessage)
    async def on_message(self, peer: AgentPeer, p: AgentMessage) -> Ack:
        posted = await self.holder.get().conversations.post_message(
            NewMessage(
                workspace_id=peer.workspace_id,
                content=p.content.model_dump(mode="json", exclude_none=True),
                direction=Direction.OUTBOUND,
                author_type=AuthorType.AGENT.value,
                author_id=peer.agent_id,
                conversation_id=p.conversation_id,
                client_message_id=p.client_message_id,
                private=p.private,
                origin=peer.sid,
                message_tag=p.message_tag,
            )
        )
        return ok(
            message=posted.message, conversation=posted.conversation, duplicate=not posted.created
        )

    @handles("typing", Typing)
    async def on_typing(self, peer: AgentPeer, p: Typing) -> Ack:
        ref = await self.holder.get().directory.conversation(peer.workspace_id, p.conversation_id)
        if not peer.typing.allow(p.conversation_id, p.typing):
            return ok(throttled=True)
        data = {
            "conversation_id": p.conversation_id,
            "typing": p.typing,
            "author": {"type": AGENT, "id": peer.agent_id, "name": peer.name},
        }
        if ref.channel_type in SOCKET_TYPES:
            await self.audience.contact(ref.contact_id, "typing", data)
        await self.audience.agents(peer.workspace_id, "typing", data, skip=peer.sid)
        return ok()

    @handles("read", Receipt)
    async def on_read(self, peer: AgentPeer, p: Receipt) -> Ack:
        seq = await self.holder.get().messages.acknowledge(
            peer.workspace_id,
            p.conversation_id,
            Reader(AGENT, peer.agent_id),
            p.seq,
            MessageStatus.READ,
            origin=peer.sid,
        )
        return ok(seq=seq)

    @handles("assign", Assign)
    async def on_assign(self, peer: AgentPeer, p: Assign) -> Ack:
        view = await self.holder.get().inbox.update(
            peer.workspace_id,
            p.conversation_id,
            assignee=p.assignee.model_dump() if p.assignee else None,
            expected_assignee=(
                (p.expected_assignee.model_dump() if p.expected_assignee else None)
                if "expected_assignee" in p.model_fields_set
                else UNSET
            ),
            origin=peer.sid,
        )
        return ok(conversation=view)

    @handles("status", SetStatus)
    async def on_status(self, peer: AgentPeer, p: SetStatus) -> Ack:
        view = await self.holder.get().inbox.update(
            peer.workspace_id, p.conversation_id, status=p.status.value,
            snoozed_until=p.snoozed_until, origin=peer.sid,
        )
        return ok(conversation=view)

    @handles("resync", Resync)
    async def on_resync(self, peer: AgentPeer, p: Resync) -> Ack:
        page = await self.holder.get().messages.catch_up(
            peer.workspace_id, p.conversation_id, p.after_seq, p.limit
        )
        return ok(messages=page.messages, last_seq=page.last_seq, has_more=page.has_more)

    @handles("presence", Empty)
    async def on_presence(self, peer: AgentPeer, p: Empty) -> Ack:
        return ok(online=await self.holder.get().presence.online(peer.workspace_id))
