"""Closing every socket in a room, in every process: the ``Doors`` of
``chat.listeners.realtime_eviction``.

python-socketio closes one socket anywhere (the Redis manager forwards the request to
the process holding it) but knows a room's members only in its own process. So a room is
closed in each process by itself: ``EvictingRedisManager`` sends its ``close_room``
message with ``evict`` set, and every process (this one at once, the others when it
comes through Redis, after the emits this process made before it) disconnects its own
members of the room before dropping the room. Without Redis there is one process.
"""

from __future__ import annotations

from typing import Any

import socketio

from chat.realtime import rooms
from chat.realtime.redis_fanout import RedisFanout


async def evict_local(server: Any, namespace: str, room: str) -> None:
    """Disconnects this process's sockets in ``room`` of ``namespace`` (the client is told
    so with a DISCONNECT packet, and does not reconnect by itself)."""
    for sid, _eio_sid in list(server.manager.get_participants(namespace, room)):
        await server.disconnect(sid, namespace=namespace, ignore_queue=True)


class EvictingRedisManager(RedisFanout):
    """The Redis manager of ``chat.realtime.redis_fanout``, closing rooms everywhere."""

    async def evict(self, room: str, namespace: str) -> None:
        message = {
            "method": "close_room",
            "room": room,
            "namespace": namespace,
            "host_id": self.host_id,
            "evict": True,
        }
        await self._handle_close_room(message)  # this process
        await self._publish(message)  # the others

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        if message.get("evict"):
            await evict_local(self.server, message["namespace"], message["room"])
        await super()._handle_close_room(message)


class SocketDoors:
    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server

    async def _close(self, namespace: str, room: str) -> None:
        manager = self.server.manager
        if isinstance(manager, EvictingRedisManager):
            await manager.evict(room, namespace)
        else:
            await evict_local(self.server, namespace, room)

    async def close_agent(self, agent_id: str) -> None:
        await self._close(rooms.AGENT, rooms.agent(agent_id))

    async def close_agent_token(self, token_id: str) -> None:
        await self._close(rooms.AGENT, rooms.agent_token(token_id))

    async def close_contact(self, contact_id: str) -> None:
        await self._close(rooms.CLIENT, rooms.contact(contact_id))
        await self._close(rooms.RASA, rooms.rasa_session(contact_id))
