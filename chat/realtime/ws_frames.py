"""Writing a socket's outgoing websocket frames straight to its TCP transport.

Through ASGI every Engine.IO frame is one ``websocket.send`` message: uvicorn's protocol
makes a websockets ``Frame`` of it, serialises it, and writes it to the transport, one
``send`` system call per frame. In a room fan-out that was over a third of the server's
time. A socket's writer takes all the frames waiting for it at once, so here they are
framed by hand (a server's frame is two to ten header bytes and the payload, never
masked: RFC 6455, section 5.2) and written with one ``transport.write``: one system
call for everything that came for that client since its last write.

This reaches into uvicorn's websockets-sansio protocol (the object behind the ASGI
``send`` callable): its transport, its flow control (``writable``) and its close state.
``DirectWrites.of`` checks that shape and otherwise answers None, and the socket keeps
using ASGI ``send`` (another ASGI server, another uvicorn websocket implementation, a
negotiated extension such as compression). ``tests/realtime/test_engine_internals.py``
fails if the installed uvicorn no longer matches.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from websockets.protocol import State

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # another uvicorn, or none: every socket uses ASGI send
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]


def frame(message: str | bytes) -> bytes:
    """One unmasked, unfragmented websocket frame (FIN set): text for a str, binary for
    bytes. A room emit offers the same str to every member: it is framed once."""
    if type(message) is str and len(message) <= _CACHED_UP_TO:
        return _cached_frame(message)
    return _frame(message)


_CACHED_UP_TO = 16 * 1024


@lru_cache(maxsize=64)
def _cached_frame(message: str) -> bytes:
    return _frame(message)


def _frame(message: str | bytes) -> bytes:
    if isinstance(message, str):
        data, first = message.encode(), 0x81
    else:
        data, first = message, 0x82
    size = len(data)
    if size < 126:
        return bytes((first, size)) + data
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + data
    return bytes((first, 127)) + size.to_bytes(8, "big") + data


class DirectWrites:
    """The transport under one ASGI websocket, for frames written by hand."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, asgi_send: Any) -> DirectWrites | None:
        protocol = getattr(asgi_send, "__self__", None)
        if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        conn = getattr(protocol, "conn", None)
        if (
            getattr(conn, "extensions", None) != []
            or not hasattr(protocol, "transport")
            or not hasattr(protocol, "writable")
            or not hasattr(protocol, "close_sent")
        ):
            return None
        return cls(protocol)

    def ready(self) -> bool:
        """Whether the transport takes more without waiting (its buffer is below the
        high-water mark, or the connection is gone and nothing will be written)."""
        return bool(self.protocol.writable.is_set())

    def closing(self) -> bool:
        """Whether the connection is closing or gone: nothing more is written to it, and
        the ASGI ``receive`` answers ``websocket.disconnect`` (now or once it closes)."""
        protocol = self.protocol
        return bool(
            protocol.disconnected
            or protocol.close_sent
            or protocol.conn.state is not State.OPEN
            or protocol.transport.is_closing()
        )

    def write_now(self, frames: list[str | bytes]) -> bool:
        """Writes ``frames`` in order, in one go; False once the connection is closing
        (nothing is written then)."""
        protocol = self.protocol
        if (  # closing(), inlined: this runs for every write
            protocol.disconnected
            or protocol.close_sent
            or protocol.conn.state is not State.OPEN
            or protocol.transport.is_closing()
        ):
            return False
        if len(frames) == 1:
            protocol.transport.write(frame(frames[0]))
        else:
            protocol.transport.write(b"".join([frame(f) for f in frames]))
        return True

    def buffered(self) -> int:
        """Bytes written that the transport still holds (the kernel's buffer is full)."""
        return int(self.protocol.transport.get_write_buffer_size())

    def abort(self) -> None:
        """Ends the connection now, dropping what the transport holds: for a client that
        does not read, a websocket close (which waits until the transport takes writes)
        would wait forever. uvicorn's ``connection_lost`` then hands the app its
        ``websocket.disconnect``."""
        self.protocol.transport.abort()

    async def drained(self) -> None:
        """Returns once the transport's buffer is below its low-water mark (or the
        connection is gone)."""
        await self.protocol.writable.wait()
