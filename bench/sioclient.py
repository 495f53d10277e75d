"""A minimal, fast Socket.IO v5 / Engine.IO v4 client speaking the wire format directly.

python-socketio's own client costs far more CPU per message than the servers under test,
so a load generator built on it measures itself. This one is an ``asyncio.Protocol``
with its own RFC 6455 framing (websocket transport only, no HTTP long-polling, no
permessage-deflate, no binary attachments):

* ``GET /socket.io/?EIO=4&transport=websocket`` upgrade, then the Engine.IO open packet
  ``0{"sid",...}``;
* namespace connect ``40/client,{auth}`` -> ``40/client,{"sid"}`` (or ``44`` = refused);
* Engine.IO ping ``2`` answered with pong ``3``;
* events ``42/client,["name",{...}]``, with an ack id ``42/client,17["name",{...}]``, ack
  replies ``43/client,17[{...}]``.

Frames sent by the client are masked with the all-zero key (valid per RFC 6455 5.3: the
key is merely "unpredictable" for proxies' sake), which makes masking a no-op. Received
events whose raw text starts with a caller-chosen prefix are counted without JSON
decoding, so one Python core can count well over 100,000 deliveries a second.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
from collections.abc import Callable
from typing import Any, cast

__all__ = ["ConnectRefused", "Delivery", "SioClient", "connect"]

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ZERO_MASK = b"\x00\x00\x00\x00"

AckCallback = Callable[[bytes], None]
"""Called with the raw JSON array text of an ack, e.g. ``b'[{"ok":true}]'``."""

DeliveryCallback = Callable[["SioClient", bytes], None]
"""Called with the raw Socket.IO packet text of a counted event (``42/ns,["ev",...]``)."""

EventCallback = Callable[["SioClient", str, list[Any]], None]
"""Called with a decoded event name and argument list for events that are not counted."""


class ConnectRefused(Exception):
    """The server refused the namespace connection (``44`` packet) or the upgrade."""


class Delivery:
    """Counts events matching a prefix, shared by many clients.

    ``on_match`` (optional) sees each matching packet, e.g. to record latency.
    """

    __slots__ = ("count", "on_match")

    def __init__(self) -> None:
        self.count = 0
        self.on_match: DeliveryCallback | None = None


def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked (zero key) client frame."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _ZERO_MASK + payload


_PONG_FRAME = _ws_frame(b"3")


class SioClient(asyncio.Protocol):
    """One websocket connection carrying one Socket.IO namespace."""

    def __init__(
        self,
        host: str,
        port: int,
        namespace: str,
        auth: dict[str, Any] | None,
        *,
        delivery_prefix: bytes | None = None,
        delivery: Delivery | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.namespace = namespace
        self.auth = auth
        self.on_event = on_event
        self.delivery = delivery
        self.delivery_prefix = delivery_prefix
        self.sid: str | None = None
        self.connected: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        # A failed connect nobody awaits any more must not log "exception never retrieved".
        self.connected.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.user: Any = None  # free slot for the scenario driver
        self._transport: asyncio.Transport | None = None
        self._upgraded = False
        self._key = base64.b64encode(os.urandom(16))
        self._buf = b""
        self._frag: list[bytes] = []
        self._acks: dict[int, AckCallback] = {}
        self._next_ack = 0
        # "/client" -> b"/client," ; "/" -> b""
        self._nsp = b"" if namespace == "/" else namespace.encode() + b","
        self._event_head = b"42" + self._nsp
        self._ack_head = b"43" + self._nsp

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclass, so no isinstance check
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        request = (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        )
        self._transport.write(request.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.connected.done():
            self.connected.set_exception(
                ConnectionError(f"connection lost before namespace connect: {exc!r}")
            )
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if not self._upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buf = data
                return
            self._check_upgrade(data[:end])
            data = data[end + 4 :]
        prefix = self.delivery_prefix
        delivery = self.delivery
        n = len(data)
        i = 0
        while i + 2 <= n:
            b0 = data[i]
            b1 = data[i + 1]
            length = b1 & 0x7F
            j = i + 2
            if length == 126:
                if j + 2 > n:
                    break
                length = (data[j] << 8) | data[j + 1]
                j += 2
            elif length == 127:
                if j + 8 > n:
                    break
                length = int.from_bytes(data[j : j + 8], "big")
                j += 8
            if b1 & 0x80:  # servers must not mask; be lenient (slow path)
                if j + 4 + length > n:
                    break
                mask = data[j : j + 4]
                payload = bytes(c ^ mask[k & 3] for k, c in enumerate(data[j + 4 : j + 4 + length]))
                i = j + 4 + length
                self._on_frame(b0, b0 & 0x0F, payload)
                continue
            end = j + length
            if end > n:
                break
            i = end
            if b0 == 0x81:  # final text frame: one Engine.IO packet
                # Hot path: count a delivery without slicing or decoding it.
                if prefix is not None and delivery is not None and data.startswith(prefix, j, end):
                    delivery.count += 1
                    if delivery.on_match is not None:
                        delivery.on_match(self, data[j:end])
                else:
                    self._on_packet(data[j:end])
            else:
                self._on_frame(b0, b0 & 0x0F, data[j:end])
        if i < n:
            self._buf = data[i:]

    # ---- websocket level ------------------------------------------------------------

    def _check_upgrade(self, head: bytes) -> None:
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            self._fail(
                ConnectRefused(f"websocket upgrade refused: {status.decode(errors='replace')}")
            )
            return
        expected = base64.b64encode(hashlib.sha1(self._key + _WS_GUID).digest())
        if expected not in head:
            self._fail(ConnectRefused("bad Sec-WebSocket-Accept"))
            return
        self._upgraded = True

    def _on_frame(self, b0: int, opcode: int, payload: bytes) -> None:
        if opcode in (0x0, 0x1, 0x2):  # fragmented message
            self._frag.append(payload)
            if b0 & 0x80:
                whole = b"".join(self._frag)
                self._frag.clear()
                self._on_packet(whole)
        elif opcode == 0x8:  # close
            self.close()
        elif opcode == 0x9:  # ping -> pong
            self._write(_ws_frame(payload, 0xA))

    def _write(self, frame: bytes) -> None:
        if self._transport is not None:
            self._transport.write(frame)

    def _fail(self, exc: Exception) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc)
        self.close()

    # ---- Engine.IO / Socket.IO level --------------------------------------------------

    def _on_packet(self, p: bytes) -> None:
        prefix = self.delivery_prefix
        if prefix is not None and p.startswith(prefix):
            d = self.delivery
            if d is not None:
                d.count += 1
                if d.on_match is not None:
                    d.on_match(self, p)
            return
        if p.startswith(self._ack_head):
            body = p[len(self._ack_head) :]
            k = 0
            while k < len(body) and 48 <= body[k] <= 57:
                k += 1
            cb = self._acks.pop(int(body[:k]), None) if k else None
            if cb is not None:
                cb(body[k:])
            return
        if p == b"2":
            self._write(_PONG_FRAME)
            return
        if p.startswith(self._event_head):
            if self.on_event is not None:
                args = json.loads(p[len(self._event_head) :])
                self.on_event(self, args[0], args[1:])
            return
        kind = p[:1]
        if kind == b"0":  # Engine.IO open: connect the namespace
            self._write(_ws_frame(b"40" + self._nsp + json.dumps(self.auth or {}).encode()))
        elif kind == b"4":
            self._on_sio_control(p[1:])
        elif kind == b"1":  # Engine.IO close
            self.close()

    def _on_sio_control(self, p: bytes) -> None:
        kind = p[:1]
        rest = p[1:]
        if self._nsp:
            if not rest.startswith(self._nsp):
                return  # another namespace
            rest = rest[len(self._nsp) :]
        if kind == b"0":
            info = json.loads(rest) if rest else {}
            self.sid = str(info.get("sid", ""))
            if not self.connected.done():
                self.connected.set_result(self.sid)
        elif kind == b"4":
            self._fail(ConnectRefused(rest.decode(errors="replace")))
        elif kind == b"1":
            self.close()

    # ---- public API ---------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def emit_raw(self, event_json: bytes, ack: AckCallback | None = None) -> None:
        """Send an already-encoded event array (``["name",{...}]``), optionally with ack."""
        if ack is None:
            self._write(_ws_frame(self._event_head + event_json))
            return
        self._next_ack += 1
        ack_id = self._next_ack
        self._acks[ack_id] = ack
        self._write(_ws_frame(self._event_head + str(ack_id).encode() + event_json))

    def emit(self, event: str, data: Any, ack: AckCallback | None = None) -> None:
        self.emit_raw(json.dumps([event, data], separators=(",", ":")).encode(), ack)

    async def call(self, event: str, data: Any, timeout: float = 10.0) -> Any:
        """Emit with an ack and return the ack's first argument, decoded."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def done(raw: bytes) -> None:
            if not fut.done():
                fut.set_result(raw)

        self.emit(event, data, done)
        raw = await asyncio.wait_for(fut, timeout)
        args = json.loads(raw)
        return args[0] if args else None

    @property
    def pending_acks(self) -> int:
        return len(self._acks)

    def close(self) -> None:
        t = self._transport
        if t is not None:
            self._transport = None
            try:
                t.write(_ws_frame(b"\x03\xe8", 0x8))  # close, 1000
            finally:
                t.close()


async def connect(
    host: str,
    port: int,
    namespace: str,
    auth: dict[str, Any] | None,
    *,
    timeout: float = 10.0,
    delivery_prefix: bytes | None = None,
    delivery: Delivery | None = None,
    on_event: EventCallback | None = None,
) -> SioClient:
    """Open a websocket, connect ``namespace`` with ``auth`` and return the client."""
    loop = asyncio.get_running_loop()

    def factory() -> SioClient:
        return SioClient(
            host,
            port,
            namespace,
            auth,
            delivery_prefix=delivery_prefix,
            delivery=delivery,
            on_event=on_event,
        )

    _, proto = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    try:
        await asyncio.wait_for(asyncio.shield(proto.connected), timeout)
    except BaseException:
        proto.close()
        raise
    return proto


def delivery_prefix(namespace: str, event: str) -> bytes:
    """Raw packet prefix of server event ``event`` on ``namespace``."""
    nsp = b"" if namespace == "/" else namespace.encode() + b","
    return b"42" + nsp + b'["' + event.encode() + b'"'
