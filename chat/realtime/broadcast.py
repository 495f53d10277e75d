"""A room emit to this process's sockets: encoded once, the same frame to every member.

python-socketio's ``AsyncManager.emit`` encodes the packet once too, but then starts a
task per recipient to send it through Engine.IO's ``send`` (which makes a packet object
and encodes the frame again), and waits for all of them. ``FrameEmit`` builds the
Engine.IO frame once and hands it to each member's writer (``LeanSocket.offer``), with
no task and no await; only a socket that cannot take it that way (long-polling, closed,
past its backlog cap) goes through Engine.IO's ``send``. An empty room costs nothing.

It sits under the Redis manager too (``chat.realtime.redis_fanout``), which encodes an
emit once for every process and hands each process's share to ``deliver``.
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet


def event_packet(packet_class: Any, event: str, data: Any, namespace: str) -> str:
    """The encoded Socket.IO EVENT packet of an emit (``data`` as ``emit`` takes it: one
    argument, a tuple of them, or None for none)."""
    if isinstance(data, tuple):
        args = list(data)
    elif data is not None:
        args = [data]
    else:
        args = []
    encoded: str = packet_class(packet.EVENT, namespace=namespace, data=[event, *args]).encode()
    return encoded


class FrameEmit(socketio.AsyncManager):
    server: Any
    rooms: dict[str, dict[Any, Any]]

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or not (room is None or isinstance(room, str)):
            # an emit that waits for acks, or to a list of rooms: python-socketio's way
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        if not self.rooms.get(namespace, {}).get(room):
            return
        await self.deliver(
            namespace, room, skip_sid, event_packet(self.server.packet_class, event, data, namespace)
        )

    async def deliver(self, namespace: str, room: str | None, skip_sid: Any, encoded: str) -> None:
        """Sends the encoded packet to this process's members of ``room`` but ``skip_sid``
        (one sid or a list of them)."""
        members = self.rooms.get(namespace, {}).get(room)
        if not members:
            return
        frame = "4" + encoded
        skip = skip_sid if isinstance(skip_sid, list) else (skip_sid,)
        sockets = self.server.eio.sockets
        slow = []
        # python-socketio's bidict of sid -> eio sid; its forward dict is the fast way in
        for sid, eio_sid in list(getattr(members, "_fwdm", members).items()):
            if sid in skip:
                continue
            s = sockets.get(eio_sid)
            offer = getattr(s, "offer", None)
            if offer is None or not offer(frame):
                slow.append(eio_sid)
        for eio_sid in slow:
            await self.server._send_eio_packet(
                eio_sid, eio_packet.Packet(eio_packet.MESSAGE, encoded)
            )
