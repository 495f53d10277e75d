"""Engine.IO with a lean websocket path: python-engineio, except how a websocket is served.

python-engineio serves each websocket with a reader that wraps every frame in a new task
and a timeout, and a writer task fed through an ``asyncio.Queue``; with the packet
objects around them that was about a third of a stored message's round trip here.
``LeanSocket`` keeps everything else of python-engineio (handshake, long-polling,
upgrades, pings, the service task that closes silent clients, python-socketio on top)
and replaces only the websocket loop:

* the reader awaits the ASGI ``receive`` directly and hands Engine.IO messages to
  python-socketio as they come; silent clients are closed by the server's ping check,
  which closes the websocket and so ends the reader;
* outgoing frames go to a deque that the socket's writer task empties in order; an emit
  never waits for the network, and a socket whose TCP buffer is full makes only its own
  writer wait, never the code that emitted to it;
* what waits for one client is bounded: past ``max_queued_bytes`` (the setting
  ``PARLEY_SOCKET_MAX_QUEUED_BYTES``) the client is too slow to keep up, and it is
  dropped, its backlog freed (it reconnects and resyncs, as after any drop). The
  long-polling queue has the same bound.

``LeanSocketIOServer`` also takes care of Socket.IO packets that do not parse (not
JSON, an event that is no list, an unknown packet type): python-socketio would log a
traceback for each. Here each one costs the connection a token of its namespaces' rate
limit; the first few of a connection are logged in one line each, the rest are counted
silently, and a connection that keeps sending them is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import engineio
import socketio
from engineio import packet
from engineio.async_socket import AsyncSocket

from chat.realtime.limits import TokenBucket

log = logging.getLogger(__name__)

_CLOSE = object()  # in the deque: close the websocket once what precedes is written

# Malformed packets: how many of one connection are logged, and how many it may send
# (a burst, refilled by one a minute) before it is closed. A working client sends none.
MALFORMED_LOGGED = 3
MALFORMED_BURST = 10
MALFORMED_REFILL_PER_SECOND = 1 / 60


class LeanSocket(AsyncSocket):
    connected: bool  # python-engineio's own attributes, declared for the type checker
    upgraded: bool
    upgrading: bool
    closed: bool

    def __init__(self, server: Any, sid: str) -> None:
        super().__init__(server, sid)
        self.ws: Any = None  # python-engineio's ASGI websocket wrapper, once upgraded
        self._out: deque[Any] = deque()
        self._queued = 0  # bytes waiting in ``_out`` (or in the polling queue)
        self._wake: asyncio.Future[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        self.malformed = 0  # malformed packets received
        self.strikes: TokenBucket | None = None  # made at the first malformed packet

    # -- sending -------------------------------------------------------------------------

    async def send(self, pkt: Any) -> None:
        if self.ws is None:  # long-polling, or still upgrading
            if self.closed:
                return
            if self.queue.empty():  # a poll took everything queued so far
                self._queued = 0
            if not await self._room_for(len(pkt.encode(b64=True))):
                return
            await super().send(pkt)
            return
        if self.closed or not await self.check_ping_timeout():
            return
        frame = pkt.encode()
        if not await self._room_for(len(frame)):
            return
        self._out.append(frame)
        self._kick()

    async def _room_for(self, size: int) -> bool:
        """Counts ``size`` more bytes waiting for this client; past the cap, drops it."""
        self._queued += size
        limit: int = self.server.max_queued_bytes
        if self._queued <= limit:
            return True
        log.warning(
            "%s: dropped: more than %d bytes waiting for a client that does not read",
            self.sid, limit,
        )
        self._out.clear()
        while not self.queue.empty():  # the long-polling backlog
            self.queue.get_nowait()
            self.queue.task_done()
        self._queued = 0
        if self._writing is not None:
            self._writing.cancel()  # it may be stuck on a full TCP buffer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
        if self.ws is not None:
            self.server.start_background_task(self.ws.close)
        return False

    async def close(
        self, wait: bool = True, abort: bool = False, reason: Any = None
    ) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        if self.ws is not None and self.closed:
            # After whatever is queued (a CLOSE packet, say), close the websocket: the
            # reader has no timeout of its own and ends when the connection does.
            self._out.append(_CLOSE)
            self._kick()

    def _kick(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _writer(self) -> None:
        """The only one who writes to the websocket: frames go out in the order sent."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._out:
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
            frame = self._out.popleft()
            if frame is _CLOSE:
                self._out.clear()
                await self.ws.close()
                return
            self._queued -= len(frame)
            await self.ws.send(frame)

    # -- receiving -----------------------------------------------------------------------

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected and not await self._take_upgrade(ws):
            return
        self.connected = self.upgraded = True
        self.upgrading = False
        self._adopt_polling_queue()
        self.ws = ws
        writer = self._writing = asyncio.ensure_future(self._writer())
        try:
            await self._read(ws)
        finally:
            writer.cancel()
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
            await ws.close()

    async def _read(self, ws: Any) -> None:
        receive = ws.asgi_receive
        limit = self.server.max_http_buffer_size
        trigger = self.server._trigger_event
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                return
            data = event.get("text")
            if data is None:
                data = event.get("bytes")
                if data is None:
                    return
                if len(data) > limit:
                    return
                await trigger("message", self.sid, data, run_async=self.server.async_handlers)
                continue
            if len(data) > limit:
                return
            kind = data[:1]
            if kind == "4":  # MESSAGE: the Socket.IO packet follows
                await trigger("message", self.sid, data[1:], run_async=self.server.async_handlers)
            elif kind == "3":  # PONG
                self.schedule_ping()
            elif kind == "1":  # CLOSE
                await self.close(wait=False, abort=True, reason=self.server.reason.CLIENT_DISCONNECT)
                return
            # 2 (a client PING) and 6 (NOOP) need nothing; unknown kinds are ignored

    async def _take_upgrade(self, ws: Any) -> bool:
        """The polling → websocket upgrade: ``2probe`` → ``3probe``, then ``5``."""
        self.upgrading = True  # python-engineio stops answering polls with packets
        try:
            probe = await ws.wait()
            if probe != "2probe":
                return self._upgrade_failed("no PING probe")
            await ws.send("3probe")
            await self.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            if await ws.wait() != "5":
                return self._upgrade_failed("no UPGRADE packet")
        except OSError:
            return self._upgrade_failed("the websocket closed")
        return True

    def _upgrade_failed(self, why: str) -> bool:
        log.info("%s: websocket upgrade failed: %s", self.sid, why)
        self.upgrading = False
        return False

    def _adopt_polling_queue(self) -> None:
        """Packets queued for the long-poll that never came go out on the websocket."""
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is not None and pkt.packet_type != packet.NOOP:
                frame = pkt.encode()
                self._out.append(frame)
                self._queued += len(frame)


class LeanEngineServer(engineio.AsyncServer):
    """python-engineio's server whose sockets are ``LeanSocket``s."""

    start_service_task: bool
    # Bytes that may wait for one slow client before it is dropped (set by the server).
    max_queued_bytes: int = 4 * 1024 * 1024

    async def _handle_connect(
        self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None
    ) -> Any:
        # python-engineio's own _handle_connect, with LeanSocket (and without the
        # sid cookie, which Parley does not set).
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        s = LeanSocket(self, sid)
        self.sockets[sid] = s
        await s.send(
            packet.Packet(
                packet.OPEN,
                {
                    "sid": sid,
                    "upgrades": self._upgrades(sid, transport),
                    "pingTimeout": int(self.ping_timeout * 1000),
                    "pingInterval": int(self.ping_interval + self.ping_interval_grace_period)
                    * 1000,
                    "maxPayload": self.max_http_buffer_size,
                },
            )
        )
        ret = await self._trigger_event("connect", sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            return self._unauthorized(ret or None)
        s.schedule_ping()
        if transport == "websocket":
            ret = await s.handle_get_request(environ)
            if s.closed and sid in self.sockets:
                del self.sockets[sid]
            return ret
        s.connected = True
        try:
            return self._ok(await s.poll(), jsonp_index=jsonp_index)
        except engineio.exceptions.QueueEmpty:
            return self._bad_request()


class LeanSocketIOServer(socketio.AsyncServer):
    """python-socketio's ``AsyncServer`` on ``LeanEngineServer``, bounding what a client
    that sends malformed packets costs."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return LeanEngineServer

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # What python-socketio raises for a packet it cannot read (the handlers of
            # well-formed events run in tasks of their own and never raise here).
            await self._malformed(eio_sid, data, exc)

    async def _malformed(self, eio_sid: str, data: Any, exc: Exception) -> None:
        s = self.eio.sockets.get(eio_sid)
        if not isinstance(s, LeanSocket) or s.closed:
            return
        s.malformed += 1
        if s.malformed <= MALFORMED_LOGGED:
            log.warning(
                "%s: malformed packet #%d (%s: %s): %.60r%s", eio_sid, s.malformed,
                type(exc).__name__, str(exc)[:80], data,
                "; the next ones of this connection are not logged"
                if s.malformed == MALFORMED_LOGGED else "",
            )
        for namespace, handler in self.namespace_handlers.items():
            charge = getattr(handler, "charge", None)
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if charge is not None and sid is not None:
                charge(sid)
        if s.strikes is None:
            s.strikes = TokenBucket(MALFORMED_REFILL_PER_SECOND, MALFORMED_BURST)
        if not s.strikes.take():
            log.warning(
                "%s: closed after %d malformed packets", eio_sid, s.malformed
            )
            await self.eio.disconnect(eio_sid)
