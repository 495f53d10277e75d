"""Namespace and room names, the only place they are spelled, and the audience that uses them.

A contact's devices and tabs share one room in ``/client``; the agents of a workspace
share one room in ``/agent``, each agent also has a room of its own tabs, and the tabs
opened with one agent token another (closed when it logs out). The sockets of a Rasa
widget session share one room in ``/rasa``.
Ids are globally unique, so a room name needs no workspace prefix to stay apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

CLIENT = "/client"
AGENT = "/agent"
RASA = "/rasa"

# Rasa's name for a reply; see chat.realtime.rasa.
BOT_UTTERED = "bot_uttered"


def contact(contact_id: str) -> str:
    return f"contact:{contact_id}"


def agents(workspace_id: str) -> str:
    return f"agents:{workspace_id}"


def agent(agent_id: str) -> str:
    return f"agent:{agent_id}"


def agent_token(token_id: str) -> str:
    """The ``/agent`` sockets opened with the token whose ``jti`` is ``token_id``."""
    return f"token:{token_id}"


def rasa_session(contact_id: str) -> str:
    """The sockets of the Rasa session whose contact is ``contact_id``."""
    return f"rasa:{contact_id}"


class Emitter(Protocol):
    """The part of ``socketio.AsyncServer`` used here."""

    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        room: str | None = None,
        skip_sid: str | None = None,
        namespace: str | None = None,
    ) -> None: ...


# Renders a message (the contact's view) as the payloads of Rasa's ``bot_uttered``.
RasaView = Callable[[Mapping[str, Any]], Sequence[Any]]

# Whether an emit to (namespace, room) skipping one socket could reach anyone.
Occupied = Callable[[str, str, str | None], bool]


def always(_namespace: str, _room: str, _skip: str | None) -> bool:
    return True


class SocketAudience:
    """The fan-out's ``Audience`` over Socket.IO rooms (through the client manager, so
    with Redis the sockets of every process are reached).

    ``rasa_view`` is ``chat.realtime.rasa.bot_messages``, handed in by the server (that
    module builds on this one). ``occupied`` lets the server skip emits that would reach
    nobody (encoding a payload for an empty room costs as much as sending it); with
    several processes it must answer True, since the room's members may be elsewhere."""

    def __init__(
        self, emitter: Emitter, rasa_view: RasaView, occupied: Occupied = always
    ) -> None:
        self.emitter = emitter
        self.rasa_view = rasa_view
        self.occupied = occupied

    async def _emit(
        self, namespace: str, room: str, event: str, data: Any, skip: str | None
    ) -> None:
        if self.occupied(namespace, room, skip):
            await self.emitter.emit(event, data, room=room, skip_sid=skip, namespace=namespace)

    async def agents(
        self, workspace_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        await self._emit(AGENT, agents(workspace_id), event, data, skip)

    async def contact(
        self, contact_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        await self._emit(CLIENT, contact(contact_id), event, data, skip)

    async def rasa(self, contact_id: str, message: Mapping[str, Any]) -> None:
        room = rasa_session(contact_id)
        if not self.occupied(RASA, room, None):
            return
        for payload in self.rasa_view(message):
            await self._emit(RASA, room, BOT_UTTERED, payload, None)
