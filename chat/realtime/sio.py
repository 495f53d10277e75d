"""python-socketio's server on Parley's lean Engine.IO (``chat.realtime.engine``), with
the lean event path (``chat.realtime.dispatch``).

``LeanSocketIOServer`` also takes care of Socket.IO packets that do not parse (not
JSON, an event that is no list, an unknown packet type): python-socketio would log a
traceback for each. Here each one costs the connection a token of its namespaces' rate
limit; the first few of a connection are logged in one line each, the rest are counted
silently, and a connection that keeps sending them is closed.
"""

from __future__ import annotations

import logging
from typing import Any

import engineio
import socketio

from chat.realtime.dispatch import Dispatcher, NotLean, decode_event
from chat.realtime.engine import LeanEngineServer, LeanSocket
from chat.realtime.limits import TokenBucket

log = logging.getLogger(__name__)

# Malformed packets: how many of one connection are logged, and how many it may send
# (a burst, refilled by one a minute) before it is closed. A working client sends none.
MALFORMED_LOGGED = 3
MALFORMED_BURST = 10
MALFORMED_REFILL_PER_SECOND = 1 / 60


class LeanSocketIOServer(socketio.AsyncServer):
    """python-socketio's ``AsyncServer`` on ``LeanEngineServer``, bounding what a client
    that sends malformed packets costs."""

    eio: LeanEngineServer
    manager: Any
    namespace_handlers: dict[str, Any]
    _binary_packet: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatcher = Dispatcher(self.eio.send)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return LeanEngineServer

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            if type(data) is str and data[:1] == "2" and eio_sid not in self._binary_packet:
                try:
                    await self._lean_event(eio_sid, data)
                    return
                except NotLean:
                    pass
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # What python-socketio raises for a packet it cannot read (the handlers of
            # well-formed events run in tasks of their own and never raise here).
            await self._malformed(eio_sid, data, exc)

    async def _lean_event(self, eio_sid: str, data: str) -> None:
        """An EVENT for one of Parley's namespaces, queued for its handler (see
        ``chat.realtime.dispatch``); NotLean for anything else."""
        namespace, ack_id, event, args = decode_event(data)
        handler: Any = self.namespace_handlers.get(namespace)
        s = self.eio.sockets.get(eio_sid)
        if not getattr(handler, "lean_dispatch", False) or not isinstance(s, LeanSocket):
            raise NotLean
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return  # as python-socketio: an event of a namespace not joined is ignored
        await self.dispatcher.enqueue(s, eio_sid, (handler, sid, namespace, ack_id, event, args))

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
