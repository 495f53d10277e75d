"""uvicorn's websocket protocol (``websockets`` sans-io), with less kept per connection.

An idle Socket.IO client is mostly a websocket waiting for a frame, so what uvicorn keeps
per websocket is most of what an idle connection costs. ``LeanWebSocketProtocol`` is
uvicorn's ``WebSocketsSansIOProtocol`` with the same behaviour and less memory:

* its attributes live in slots: uvicorn sets about 45 of them, past what an instance
  dict shares keys for, so each connection had its own 1.6 KB dict;
* the incoming ASGI events wait in a list with at most one waiter (an ``asyncio.Queue``
  is four deques and an ``asyncio.Event``, about 3 KB), and "writable" is a flag that
  makes a future only while the transport is paused (an ``asyncio.Event`` with its
  deque, about 0.8 KB);
* the handshake's request and response (the ``websockets`` header objects, about 2 KB)
  are let go once the handshake is answered; nothing reads them afterwards. The request
  is also a local of the generator ``websockets`` parses with, for as long as the
  connection lives, so that generator is swapped for a fresh frame parser in the same
  state (waiting for a frame's first byte, nothing buffered), when it is in that state.

Everything else is uvicorn's, reading frames included. Writing them is uvicorn's only
for what goes through ASGI ``send`` (the handshake, a close, frames of a websocket with
compression): Parley's sockets frame the rest by hand and write it to the transport
themselves (``chat.realtime.ws_frames``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

# The generators a ``ServerProtocol``'s parser is made of while it waits, after the
# handshake, for the next frame: its own ``parse`` in ``Protocol.parse`` in
# ``StreamReader.at_eof``.
_AT_FRAME_START = (ServerProtocol.parse.__code__, Protocol.parse.__code__,
                   StreamReader.at_eof.__code__)


def renew_parser(conn: ServerProtocol) -> bool:
    """Gives ``conn`` a frame parser without the handshake's request in its frames, if
    its parser is waiting for the first byte of a frame with nothing buffered; False
    (nothing changed) otherwise."""
    codes = []
    gen: Any = conn.parser
    while gen is not None:
        codes.append(getattr(gen, "gi_code", None))
        gen = getattr(gen, "gi_yieldfrom", None)
    if tuple(codes) != _AT_FRAME_START or conn.reader.buffer or conn.reader.eof:
        return False
    conn.parser = Protocol.parse(conn)
    next(conn.parser)
    return True


class Mailbox:
    """What ``asyncio.Queue`` does for uvicorn's protocol (``put_nowait``, ``get``,
    ``empty``), unbounded, for one reader at a time (the ASGI app's ``receive``)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            if self._waiter is not None and not self._waiter.done():
                raise RuntimeError("a websocket's events have one reader at a time")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.pop(0)


class Writable:
    """What ``asyncio.Event`` does for uvicorn's "the transport takes writes" flag; a
    future exists only while somebody waits for a paused transport."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    # Every attribute uvicorn's protocol sets (one it adds in a later version lands in an
    # instance dict, made only then, and still works).
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: Any = Mailbox()
        self.writable: Any = Writable()
        self.request: Any = None
        self.response: Any = None

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.response is not None and self.handshake_complete:
            self.request = self.response = None
            renew_parser(self.conn)
