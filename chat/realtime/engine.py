"""Engine.IO with a lean websocket path: python-engineio, except how a websocket is served.

python-engineio serves each websocket with a reader that wraps every frame in a new task
and a timeout, and a writer task fed through an ``asyncio.Queue``; with the packet
objects around them that was about a third of a stored message's round trip here.
``LeanSocket`` keeps everything else of python-engineio (handshake, long-polling,
upgrades, pings, the service task that closes silent clients, python-socketio on top)
and replaces only the websocket loop:

* the reader awaits the ASGI ``receive`` directly and hands Engine.IO messages to
  python-socketio as they come, in its own task; an EVENT to one of Parley's namespaces
  takes the lean path of ``chat.realtime.dispatch`` (no packet objects, no task per
  event, the ack written straight to the socket); silent clients are closed by the server's ping check,
  which closes the websocket and so ends the reader;
* outgoing frames go to a list; once per loop turn, everything in it is framed by hand
  and written to uvicorn's transport in one write (``chat.realtime.ws_frames``). Only
  while the transport's buffer is over its high-water mark (the client reads slower
  than it is sent to) does a writer task of the socket's own wait for it to drain and
  then write the backlog; an emit never waits for the network, and a slow client makes
  only its own writer wait. Under another ASGI server (or with compression) the writer
  task sends frame by frame through ASGI ``send`` for the socket's whole life;
* what waits for one client is bounded: past ``max_queued_bytes`` (the setting
  ``PARLEY_SOCKET_MAX_QUEUED_BYTES``), counting the frames in the list and what the
  transport's buffer still holds, the client is too slow to keep up. It is dropped:
  its backlog freed, its connection aborted at once (a websocket close would wait for
  a client that does not read), its disconnect handlers run and it leaves its rooms,
  as after any lost connection (it reconnects and resyncs). The long-polling queue has
  the same bound.

python-socketio runs on top, as ``chat.realtime.sio.LeanSocketIOServer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import engineio
from engineio import packet
from engineio.async_socket import AsyncSocket

from chat.realtime.dispatch import Inbox
from chat.realtime.limits import TokenBucket
from chat.realtime.ws_frames import DirectWrites

log = logging.getLogger(__name__)

_CLOSE = object()  # among the frames: close the websocket once what precedes is written
# How long a close may wait for the client to read what comes before it (the close
# frame included); past that the connection is aborted.
CLOSE_SECONDS = 10.0



class LeanSocket(AsyncSocket):
    connected: bool  # python-engineio's own attributes, declared for the type checker
    upgraded: bool
    upgrading: bool
    closed: bool
    closing: bool
    last_ping: float | None

    def __init__(self, server: Any, sid: str) -> None:
        super().__init__(server, sid)
        self.ws: Any = None  # python-engineio's ASGI websocket wrapper, once upgraded
        # Frames waiting for the writer; a list the writer swaps for a fresh one (an
        # empty list is 56 bytes, an empty deque 600).
        self._out: list[Any] = []
        # Bytes waiting for this client: in ``_out`` (or in the polling queue), plus
        # ``_held``, what the transport still held after the last direct write. That
        # one is not looked at again per frame: it only shrinks as the client reads,
        # so the count errs high, and ``_room_for`` looks again before dropping anyone.
        self._queued = 0
        self._held = 0
        self._wake: asyncio.Future[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        # Frames written straight to the transport (``chat.realtime.ws_frames``), by a
        # callback scheduled once per loop turn; a writer task only while one must wait.
        self._direct: DirectWrites | None = None
        self._flush_soon = False
        self.malformed = 0  # malformed packets received
        self.strikes: TokenBucket | None = None  # made at the first malformed packet
        self.inbox: Inbox | None = None  # lean events waiting for their handler
        self._ping_timer: asyncio.TimerHandle | None = None

    def offer(self, frame: str) -> bool:
        """Queues an encoded Engine.IO text frame without waiting, if this socket is on
        its websocket and in good standing; False: use ``send`` (which also handles a
        closed socket, a missed ping and a backlog past the cap)."""
        if self.ws is None or self.closed:
            return False
        last_ping = self.last_ping
        if last_ping and time.time() - last_ping > self.server.ping_timeout:
            return False
        queued = self._queued + len(frame)
        if queued > self.server.max_queued_bytes:
            return False
        self._queued = queued
        self._out.append(frame)
        self._kick()
        return True

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
        direct = self._direct
        if direct is not None:  # what the transport holds now, not at the last write
            held = direct.buffered()
            self._queued += held - self._held
            self._held = held
            if self._queued <= limit:
                return True
        log.warning(
            "%s: dropped: more than %d bytes waiting for a client that does not read",
            self.sid, limit,
        )
        self._discard()
        while not self.queue.empty():  # the long-polling backlog
            self.queue.get_nowait()
            self.queue.task_done()
        if self._writing is not None:
            self._writing.cancel()  # it may be stuck on a full TCP buffer
        if direct is not None:
            # Ended outright: a websocket close would wait for the client to read. The
            # reader then gets its disconnect and ends, as after any lost connection.
            direct.abort()
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
        self._discard()  # what its disconnect handlers queued for it, and the close marker
        # Gone at once (python-engineio forgets a closed socket when it next looks it up,
        # which a frame emit, handing frames to sockets directly, does not do).
        if self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]
        if self.ws is not None and direct is None:
            self.server.start_background_task(self.ws.close)
        return False

    def _discard(self) -> None:
        """Forgets what waits for this client: nothing more will reach it."""
        self._out = []
        self._queued = self._held = 0

    async def close(
        self, wait: bool = True, abort: bool = False, reason: Any = None
    ) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        await super().close(wait=wait, abort=abort, reason=reason)
        if self.ws is not None and self.closed:
            # After whatever is queued (a CLOSE packet, say), close the websocket: the
            # reader has no timeout of its own and ends when the connection does.
            self._out.append(_CLOSE)
            self._kick()

    def _kick(self) -> None:
        if self._direct is not None and self._writing is None:
            if not self._flush_soon:
                self._flush_soon = True
                asyncio.get_running_loop().call_soon(self._flush)
        elif self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _flush(self) -> None:
        """Everything that came for this client in the last loop turn, in one write;
        a writer task takes over when the transport's buffer is full or a close waits."""
        self._flush_soon = False
        direct = self._direct
        if direct is None or self._writing is not None or not self._out:
            return
        if not direct.ready() or _CLOSE in self._out:
            if direct.closing():  # the reader ends with the connection; no one to write to
                self._discard()
                return
            self._writing = asyncio.ensure_future(self._writer())
            return
        batch, self._out = self._out, []
        direct.write_now(batch)  # False: closing; the reader ends with the connection
        self._queued = self._held = direct.buffered()

    async def _writer(self) -> None:
        """The only one who writes to the websocket while it runs: frames go out in the
        order sent. With direct writes it runs only until the backlog is written."""
        loop = asyncio.get_running_loop()
        direct = self._direct
        try:
            while True:
                while not self._out:
                    if direct is not None:
                        return  # the next frames go out through _flush again
                    self._wake = loop.create_future()
                    await self._wake
                    self._wake = None
                if direct is not None and direct.closing():
                    self._discard()  # the reader ends with the connection
                    return
                if direct is not None and _CLOSE not in self._out:
                    if not direct.ready():
                        # Frames wait in _out (and count against the cap, as does what
                        # the transport holds) until the client has read enough, or
                        # until a close comes (it must not wait for a reader forever).
                        drain = asyncio.ensure_future(direct.drained())
                        try:
                            while not drain.done() and _CLOSE not in self._out:
                                self._wake = loop.create_future()
                                await asyncio.wait((drain, self._wake), return_when=asyncio.FIRST_COMPLETED)
                                self._wake = None
                        finally:
                            drain.cancel()
                        continue
                    batch, self._out = self._out, []
                    direct.write_now(batch)
                    self._queued = self._held = direct.buffered()
                    continue
                if direct is not None:
                    # A close waits for the client to read what comes before it; one
                    # that does not read is cut off, not waited for without end.
                    try:
                        async with asyncio.timeout(CLOSE_SECONDS):
                            await self._send_through_close()
                    except TimeoutError:
                        log.info("%s: closed without its close frame: the client does not read", self.sid)
                        direct.abort()
                        self._discard()
                    return
                if await self._send_through_close():
                    return
        finally:
            if self._writing is asyncio.current_task():
                self._writing = None

    async def _send_through_close(self) -> bool:
        """Sends the waiting frames through ASGI, in order; True once the websocket is
        closed or gone (nothing more will be sent)."""
        batch, self._out = self._out, []
        for frame in batch:
            if frame is _CLOSE:
                self._out = []
                await self.ws.close()
                return True
            self._queued -= len(frame)
            try:
                await self.ws.send(frame)
            except (OSError, RuntimeError):
                # Gone meanwhile (uvicorn: ClientDisconnected, an OSError; or
                # RuntimeError once a close was sent): the reader ends with it.
                self._discard()
                return True
        return False

    # -- receiving -----------------------------------------------------------------------

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected and not await self._take_upgrade(ws):
            return
        self.connected = self.upgraded = True
        self.upgrading = False
        self._adopt_polling_queue()
        self.queue = DRAINED  # nothing is queued for polls once on the websocket
        self.ws = ws
        self._direct = DirectWrites.of(ws.asgi_send)
        if self._direct is None:
            self._writing = asyncio.ensure_future(self._writer())
        elif self._out:  # what was queued for the poll that never came
            self._kick()
        try:
            await self._read(ws)
        finally:
            if self._writing is not None:
                self._writing.cancel()
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
            await ws.close()

    async def _read(self, ws: Any) -> None:
        receive = ws.asgi_receive
        limit = self.server.max_http_buffer_size
        deliver = self.server.deliver
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
                await deliver(self.sid, data)
                continue
            if len(data) > limit:
                return
            kind = data[:1]
            if kind == "4":  # MESSAGE: the Socket.IO packet follows
                await deliver(self.sid, data[1:])
            elif kind == "3":  # PONG
                self.schedule_ping()
            elif kind == "1":  # CLOSE
                await self.close(wait=False, abort=True, reason=self.server.reason.CLIENT_DISCONNECT)
                return
            # 2 (a client PING) and 6 (NOOP) need nothing; unknown kinds are ignored

    # -- pings -------------------------------------------------------------------------

    def schedule_ping(self) -> None:
        """python-engineio's, with a timer instead of a sleeping task per socket."""
        if self.last_ping:
            self.last_ping = None
            self._ping_timer = asyncio.get_running_loop().call_later(
                self.server.ping_interval, self._ping
            )

    def _ping(self) -> None:
        self._ping_timer = None
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        if not self.offer("2"):
            self.server.start_background_task(self.send, packet.Packet(packet.PING))

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
        self._queued = 0  # counted again as frames
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is not None and pkt.packet_type != packet.NOOP:
                frame = pkt.encode()
                self._out.append(frame)
                self._queued += len(frame)


# What of a connection's environ outlives its connect request (python-socketio keeps the
# environ for namespace connects, and the websocket lives inside the request's frames):
# python-engineio's own keys, and these headers, in the environ and in the ASGI scope's
# ``headers`` (which uvicorn's websocket keeps too).
KEPT_HEADERS = frozenset(
    {"HTTP_ORIGIN", "HTTP_USER_AGENT", "HTTP_CONNECTION", "HTTP_UPGRADE", "HTTP_HOST",
     "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"}
)
_KEPT_SCOPE_HEADERS = frozenset(
    name[5:].lower().replace("_", "-").encode() for name in KEPT_HEADERS
)


def _slim(environ: dict[str, Any]) -> None:
    """Drops the other headers in place (a dict never shrinks by deleting, so it is
    rebuilt): about 1 KB per connection, more with a browser's cookies."""
    kept = {k: v for k, v in environ.items() if not k.startswith("HTTP_") or k in KEPT_HEADERS}
    if len(kept) < len(environ):
        environ.clear()
        environ.update(kept)
    scope = environ.get("asgi.scope")
    if scope is not None and "headers" in scope:
        scope["headers"] = [h for h in scope["headers"] if h[0].lower() in _KEPT_SCOPE_HEADERS]


class _Drained:
    """The polling queue of a socket on its websocket, shared by all of them: always
    empty (python-engineio's ``close(wait=True)`` joins it). An ``asyncio.Queue`` per
    socket is four deques, about 3 KB."""

    __slots__ = ()

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    async def join(self) -> None:
        return None

    def get_nowait(self) -> Any:
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        raise ValueError("task_done() called too many times")

    def put_nowait(self, item: Any) -> None:
        raise RuntimeError("nothing is queued for polls once a socket is on its websocket")

    async def put(self, item: Any) -> None:
        self.put_nowait(item)


DRAINED: Any = _Drained()


class LeanEngineServer(engineio.AsyncServer):
    """python-engineio's server whose sockets are ``LeanSocket``s."""

    start_service_task: bool
    handlers: dict[str, Any]
    # Bytes that may wait for one slow client before it is dropped (set by the server).
    max_queued_bytes: int = 4 * 1024 * 1024

    async def deliver(self, sid: str, data: Any) -> None:
        """A websocket's Engine.IO message to python-socketio, in the reader's own task
        (python-engineio starts a task per message): the reader reads the next frame once
        this returns, and events are queued for their handlers without waiting for them
        (``chat.realtime.dispatch``)."""
        handler = self.handlers.get("message")
        if handler is None:
            return
        try:
            await handler(sid, data)
        except Exception:
            log.exception("%s: a Socket.IO message failed", sid)

    async def _handle_connect(
        self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None
    ) -> Any:
        # python-engineio's own _handle_connect, with LeanSocket (and without the
        # sid cookie, which Parley does not set).
        # python-engineio's environ holds the request body's reader, an instance of a class
        # made per request (2.5 KB); a connect is a GET, and python-socketio keeps the
        # environ for the connection's life.
        environ.pop("wsgi.input", None)
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
        _slim(environ)
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
