"""Bus subscriber: when who a connection speaks for is gone, the connection goes too.

| domain event | connections closed |
| --- | --- |
| ``agent.deactivated`` | every ``/agent`` socket of the agent |
| ``agent.signed_out`` | the ``/agent`` sockets opened with that token |
| ``contact.deleted`` | the contact's ``/client`` sockets and ``/rasa`` sessions |

The ``Doors`` are the transport's side: with Socket.IO and Redis they close the sockets
of every process. A client told so by the server does not reconnect by itself, and if
it does, its credentials are refused.
"""

from __future__ import annotations

from typing import Protocol

from chat.bus import DomainEvent
from chat.services.agents import DEACTIVATED, SIGNED_OUT
from chat.services.contacts import DELETED


class Doors(Protocol):
    async def close_agent(self, agent_id: str) -> None: ...

    async def close_agent_token(self, token_id: str) -> None: ...

    async def close_contact(self, contact_id: str) -> None: ...


class RealtimeEviction:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    async def __call__(self, event: DomainEvent) -> None:
        if event.type == DEACTIVATED:
            await self.doors.close_agent(event.data["agent_id"])
        elif event.type == SIGNED_OUT:
            await self.doors.close_agent_token(event.data["token_id"])
        elif event.type == DELETED:
            await self.doors.close_contact(event.data["contact_id"])
