"""The guarded namespace: what every Parley namespace does before and around its handlers.

A subclass authenticates a connection into a ``Peer`` and declares its events with
``@handles(name, PayloadModel)``. For every incoming event this base:

1. takes a token from the socket's bucket (``rate_limited`` otherwise),
2. checks the event is known (``unknown_event``) and its size (``payload_too_large``),
3. validates the payload (``invalid_payload``),
4. runs the handler, turning a service error into its code and anything unexpected
   into ``internal_error`` (or, when who the connection speaks for is gone, into the
   namespace's error for that, closing the connection).

The handler's return value is the ack; a client that asked for none gets nothing.
No event, however malformed, raises out of here or drops the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from chat.domain.errors import NotFound, ParleyError
from chat.realtime import protocol
from chat.realtime.limits import TokenBucket, TypingThrottle, payload_size
from chat.realtime.rooms import SocketAudience
from chat.settings import Settings

if TYPE_CHECKING:
    from chat.services.container import Services

log = logging.getLogger(__name__)

Ack = dict[str, Any]
H = TypeVar("H", bound=Callable[..., Awaitable[Ack]])


class NotReady(ParleyError):
    status = 503
    code = "unavailable"


class Holder:
    """The services, filled in when the app's lifespan starts and emptied when it ends."""

    def __init__(self) -> None:
        self.services: Services | None = None

    def get(self) -> Services:
        if self.services is None:
            raise NotReady("the server is starting or stopping; try again")
        return self.services


@dataclass(slots=True)
class Peer:
    """One connection to one namespace."""

    sid: str
    workspace_id: str
    bucket: TokenBucket
    typing: TypingThrottle
    connected_at: float = field(default_factory=time.monotonic)
    # The first event the connection hears, sent once the namespace's CONNECT answer
    # has gone out (a client must not see an event of a namespace it is not in yet).
    greeting: tuple[str, Any] | None = None


@dataclass(frozen=True)
class Route:
    model: type[BaseModel]
    method: str


def handles(event: str, model: type[BaseModel]) -> Callable[[H], H]:
    """Declares ``event`` with its payload model; the method gets ``(peer, payload)``."""

    def mark(method: H) -> H:
        method.__parley_event__ = (event, model)  # type: ignore[attr-defined]
        return method

    return mark


def client_address(environ: dict[str, Any]) -> str:
    """The peer's address as the ASGI server saw it (python-engineio's environ always
    says 127.0.0.1; uvicorn's proxy headers setting decides whom to believe)."""
    client = environ.get("asgi.scope", {}).get("client")
    return str(client[0]) if client else "unknown"


def refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    exc = socketio.exceptions.ConnectionRefusedError(message)
    exc.error_args = protocol.refusal(code, message)
    return exc


class GuardedNamespace(socketio.AsyncNamespace):
    routes: ClassVar[dict[str, Route]] = {}
    # Events come through chat.realtime.dispatch: one connection's handlers run in order.
    lean_dispatch: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.routes = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                marked = getattr(attr, "__parley_event__", None)
                if marked is not None:
                    cls.routes[marked[0]] = Route(marked[1], name)

    def __init__(
        self, namespace: str, holder: Holder, settings: Settings, audience: SocketAudience
    ) -> None:
        super().__init__(namespace)
        self.holder = holder
        self.settings = settings
        self.audience = audience
        self.peers: dict[str, Peer] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what subclasses provide -----------------------------------------------------

    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> Peer:
        """Check the connect ``auth`` and join rooms; set ``peer.greeting`` to greet. Raise
        ``refuse(...)`` to say no."""
        raise NotImplementedError

    async def leave(self, peer: Peer) -> None:
        """Clean up after a connection that ended."""

    async def gone(self, peer: Peer) -> ParleyError | None:
        """After a handler failed unexpectedly (or found nothing): the error to answer if who the connection
        speaks for is gone (the connection is then closed), else None."""
        return None

    def new_peer(self, sid: str, workspace_id: str) -> dict[str, Any]:
        """The guard fields of a new peer, from the settings."""
        return {
            "sid": sid,
            "workspace_id": workspace_id,
            "bucket": TokenBucket(
                self.settings.socket_rate_per_second, self.settings.socket_rate_burst
            ),
            "typing": TypingThrottle(self.settings.typing_throttle_seconds),
        }

    # -- dispatch --------------------------------------------------------------------

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        manager = self.server.manager
        if event == "connect":
            # A client may name an event "connect"; only the server's own call comes
            # while the connection is still pending.
            if len(args) == 3 and manager.is_pre_connected(args[0], self.namespace):
                return await self._connect(*args)
            return self._reject_reserved(event, args)
        if event == "disconnect":
            if args and not manager.is_connected(args[0], self.namespace):
                return await self._disconnect(args[0])
            return self._reject_reserved(event, args)
        if not args:
            return None
        return await self._dispatch(args[0], event, args[1:])

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        try:
            await self.holder.get().throttle.connect(client_address(environ))
            peer = await self.authenticate(sid, environ, auth)
        except socketio.exceptions.ConnectionRefusedError:
            raise
        except ParleyError as exc:
            raise refuse(exc.code, exc.message) from exc
        except Exception as exc:
            log.exception("connect to %s failed", self.namespace)
            raise refuse("internal_error", "the server could not accept the connection") from exc
        self.peers[sid] = peer
        if peer.greeting is not None:
            # python-socketio queues the CONNECT answer after this returns, without
            # pausing in between, so a task started now speaks after it.
            event, data = peer.greeting
            peer.greeting = None
            task = asyncio.get_running_loop().create_task(self.emit(event, data, to=sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _disconnect(self, sid: str) -> None:
        peer = self.peers.pop(sid, None)
        if peer is None:
            return
        try:
            await self.leave(peer)
        except NotReady:
            pass  # the app is stopping: nothing left to tell
        except Exception:
            log.exception("cleanup after a %s connection failed", self.namespace)

    def charge(self, sid: str) -> None:
        """A malformed packet from ``sid``: it costs a token of the connection's rate limit."""
        peer = self.peers.get(sid)
        if peer is not None:
            peer.bucket.take()

    def _reject_reserved(self, event: str, args: tuple[Any, ...]) -> Ack:
        return protocol.fail("unknown_event", f"'{event}' is reserved")

    async def _dispatch(self, sid: str, event: Any, args: tuple[Any, ...]) -> Ack:
        peer = self.peers.get(sid)
        if peer is None:
            return protocol.fail("not_connected", "this connection is not signed in")
        if not peer.bucket.take():
            return protocol.fail("rate_limited", "too many events; slow down")
        route = self.routes.get(event) if isinstance(event, str) else None
        if route is None:
            return protocol.fail(
                "unknown_event", f"no event {str(event)[:50]!r} in {self.namespace}"
            )
        if len(args) > 1:
            return protocol.fail("invalid_payload", "send one JSON object")
        data = args[0] if args else None
        limit = self.settings.socket_max_payload_bytes
        if payload_size(data) > limit:
            return protocol.fail("payload_too_large", f"an event may carry at most {limit} bytes")
        if data is None and not any(f.is_required() for f in route.model.model_fields.values()):
            data = {}  # an event whose every field is optional may come bare
        try:
            payload = route.model.model_validate(data)
        except ValidationError as exc:
            return protocol.fail("invalid_payload", protocol.describe(exc))
        try:
            ack: Ack = await getattr(self, route.method)(peer, payload)
            return ack
        except ParleyError as exc:
            # A contact deleted meanwhile shows up as its rows not being found.
            gone = await self._gone(peer) if isinstance(exc, NotFound) else None
            if gone is not None:
                return protocol.fail(gone.code, gone.message)
            return protocol.fail(exc.code, exc.message)
        except Exception:
            gone = await self._gone(peer)
            if gone is not None:
                return protocol.fail(gone.code, gone.message)
            log.exception("%s %s failed", self.namespace, event)
            return protocol.fail("internal_error", "the server failed to handle this event")

    async def _gone(self, peer: Peer) -> ParleyError | None:
        try:
            gone = await self.gone(peer)
        except Exception:
            log.exception("checking a failed %s connection", self.namespace)
            return None
        if gone is not None:
            # Closed once the answer is out (python-socketio sends the ack right after
            # this returns, before a task started now runs).
            task = asyncio.get_running_loop().create_task(self.disconnect(peer.sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return gone
