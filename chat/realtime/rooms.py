"""Namespace and room names, the only place they are spelled, and the audience that uses them.

A contact's devices and tabs share one room in ``/client``; the agents of a workspace
share one room in ``/agent``, and each agent also has a room of its own tabs.
Ids are globally unique, so a room name needs no workspace prefix to stay apart.
"""

from __future__ import annotations

from typing import Any, Protocol

CLIENT = "/client"
AGENT = "/agent"


def contact(contact_id: str) -> str:
    return f"contact:{contact_id}"


def agents(workspace_id: str) -> str:
    return f"agents:{workspace_id}"


def agent(agent_id: str) -> str:
    return f"agent:{agent_id}"


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


class SocketAudience:
    """The fan-out's ``Audience`` over Socket.IO rooms (through the client manager, so
    with Redis the sockets of every process are reached)."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter

    async def agents(
        self, workspace_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        await self.emitter.emit(
            event, data, room=agents(workspace_id), skip_sid=skip, namespace=AGENT
        )

    async def contact(
        self, contact_id: str, event: str, data: Any, *, skip: str | None = None
    ) -> None:
        await self.emitter.emit(
            event, data, room=contact(contact_id), skip_sid=skip, namespace=CLIENT
        )
