"""The Socket.IO server: built with the app, given the services when the lifespan starts.

With ``redis_url`` set, emits go through Redis (``chat.realtime.redis_fanout``), so a
room emit from any process reaches the sockets of every process.

Origins: Engine.IO accepts every Origin (so the widget's long-polling fallback works
from any site); the per-workspace ``allowed_origins`` of the in-app channel are
enforced when a ``/client`` connection signs in, because only then is the workspace
known (for ``/rasa``: when it connects, naming the widget key in the URL's query).
``/agent`` connections authenticate with a bearer token, not a cookie, so a foreign
page gains nothing from connecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import socketio
from starlette.types import ASGIApp

from chat.listeners.realtime_eviction import RealtimeEviction
from chat.listeners.realtime_fanout import RealtimeFanout
from chat.realtime import rasa, rooms
from chat.realtime.agent import AgentNamespace
from chat.realtime.broadcast import FrameEmit
from chat.realtime.client import ClientNamespace
from chat.realtime.eviction import EvictingRedisManager, SocketDoors
from chat.realtime.namespace import GuardedNamespace, Holder
from chat.realtime.redis_fanout import RedisFanout
from chat.realtime.sio import LeanSocketIOServer
from chat.realtime.wire import JsonPacket
from chat.settings import Settings

if TYPE_CHECKING:
    from chat.services.container import Services

log = logging.getLogger(__name__)

SOCKETIO_PATH = "socket.io"


def _any_origin(origin: str | None, environ: dict[str, Any] | None = None) -> bool:
    return True


def _local_occupancy(manager: Any) -> rooms.Occupied:
    """For the in-process manager: is anyone but ``skip`` in the room? (python-socketio
    keeps ``rooms[namespace][room]`` as a mapping of socket ids.)"""

    def occupied(namespace: str, room: str, skip: str | None) -> bool:
        members = manager.rooms.get(namespace, {}).get(room)
        if not members:
            return False
        return len(members) > 1 or skip not in members

    return occupied


class Realtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.holder = Holder()
        manager = (
            EvictingRedisManager(settings.redis_url, channel=settings.redis_channel)
            if settings.redis_url
            else FrameEmit()
        )
        self.sio = LeanSocketIOServer(
            async_mode="asgi",
            client_manager=manager,
            serializer=JsonPacket,
            cors_allowed_origins=_any_origin,
            max_http_buffer_size=max(
                settings.socket_max_frame_bytes, 2 * settings.socket_max_payload_bytes
            ),
            ping_interval=settings.socket_ping_interval_seconds,
            ping_timeout=settings.socket_ping_timeout_seconds,
            logger=False,
            engineio_logger=False,
        )
        self.sio.eio.max_queued_bytes = settings.socket_max_queued_bytes
        self.audience = rooms.SocketAudience(
            self.sio,
            rasa_view=rasa.bot_messages,
            occupied=rooms.always
            if isinstance(manager, EvictingRedisManager)
            else _local_occupancy(self.sio.manager),
        )
        self.namespaces: list[GuardedNamespace] = [
            ClientNamespace(rooms.CLIENT, self.holder, settings, self.audience),
            AgentNamespace(rooms.AGENT, self.holder, settings, self.audience),
            rasa.RasaNamespace(rooms.RASA, self.holder, settings, self.audience),
        ]
        for namespace in self.namespaces:
            self.sio.register_namespace(namespace)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Socket.IO at ``/socket.io``, everything else to ``app`` (lifespan included)."""
        wrapped: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app, socketio_path=SOCKETIO_PATH)
        return wrapped

    async def start(self, services: Services) -> None:
        services.bus.subscribe(RealtimeFanout(self.audience, services.directory))
        services.bus.subscribe(RealtimeEviction(SocketDoors(self.sio)))
        await services.presence.start()
        self.holder.services = services

    async def stop(self) -> None:
        services, self.holder.services = self.holder.services, None
        try:
            await self.sio.shutdown()
            await _stop_pubsub(self.sio.manager)
        except Exception:
            log.warning("socket.io shutdown failed", exc_info=True)
        if services is not None:
            await services.presence.close()


async def _stop_pubsub(manager: Any) -> None:
    """python-socketio leaves the Redis listener running; end it with the app (after
    the queued emits are out)."""
    if isinstance(manager, RedisFanout):
        await manager.close()
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task) and not listener.done():
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    for name in ("pubsub", "redis"):
        conn = getattr(manager, name, None)
        close = getattr(conn, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
