"""What both clients share: one python-socketio AsyncClient on one namespace.

Events the server sends land in an ``EventBuffer`` (``wait_for``/``take``) and in
callbacks registered with ``on``. Requests wait for their ack; a request in flight
when the connection drops fails at once with ``NotConnected`` (python-socketio's own
``call`` would wait for its whole timeout).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Self

import socketio

from parley_client.errors import AckError, AckTimeout, ConnectRefused, NotConnected, ParleyError
from parley_client.events import EventBuffer, Match

log = logging.getLogger("parley_client")

Callback = Callable[[Any], Any]


class Connection:
    namespace: ClassVar[str]

    def __init__(
        self,
        url: str,
        *,
        reconnection: bool = True,
        reconnection_delay: float = 0.5,
        reconnection_delay_max: float = 5.0,
        ack_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        transports: tuple[str, ...] = ("websocket",),
        socketio_path: str = "socket.io",
    ) -> None:
        self.url = url
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.headers = dict(headers or {})
        self.transports = list(transports)
        self.socketio_path = socketio_path
        self.events = EventBuffer()
        self.sio = socketio.AsyncClient(
            reconnection=reconnection,
            reconnection_delay=reconnection_delay,
            reconnection_delay_max=reconnection_delay_max,
            randomization_factor=0.2,
            handle_sigint=False,
            logger=False,
            engineio_logger=False,
        )
        self._callbacks: dict[str, list[Callback]] = {}
        self._pending: set[asyncio.Future[Any]] = set()
        self._refusal: dict[str, Any] | None = None
        self._ready = asyncio.Event()  # connected and greeted (the "session" event came)
        self._ns_connected = False
        self._greeting: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        ns = self.namespace
        self.sio.on("connect", self._on_connect, namespace=ns)
        self.sio.on("disconnect", self._on_disconnect, namespace=ns)
        self.sio.on("connect_error", self._on_connect_error, namespace=ns)
        self.sio.on("session", self._on_session, namespace=ns)
        self.sio.on("*", self._on_any, namespace=ns)

    # -- lifecycle -------------------------------------------------------------------

    def auth(self) -> dict[str, Any]:
        """The connect ``auth``; asked again before every reconnect."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def connect(self) -> None:
        """Connects and waits for the server's ``session`` greeting; raises ``ConnectRefused``."""
        self._refusal = None
        self._closed = False
        try:
            await self.sio.connect(
                self.url,
                headers=self.headers,
                auth=self.auth,
                transports=self.transports,
                namespaces=[self.namespace],
                socketio_path=self.socketio_path,
                wait_timeout=self.connect_timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            if self._refusal is not None:
                raise ConnectRefused(
                    str(self._refusal.get("code", "refused")),
                    str(self._refusal.get("message", "")),
                ) from exc
            raise NotConnected(str(exc)) from exc
        await self.wait_connected(self.connect_timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout or self.connect_timeout)
        except TimeoutError as exc:
            raise NotConnected("not connected") from exc

    async def disconnect(self) -> None:
        """Closes the connection; ``connect()`` may open it again (state is kept)."""
        self._closed = True
        await self.sio.shutdown()
        self._ready.clear()

    async def close(self) -> None:
        await self.disconnect()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def drop_transport(self) -> None:
        """Test hook: lose the connection as a network failure would (it reconnects)."""
        ws = getattr(self.sio.eio, "ws", None)
        if ws is not None:
            await ws.close()

    # -- events ----------------------------------------------------------------------

    def on(self, event: str, callback: Callback) -> None:
        """Calls ``callback(data)`` (a function or a coroutine function) on each ``event``."""
        self._callbacks.setdefault(event, []).append(callback)

    async def wait_for(self, event: str, match: Match | None = None, timeout: float = 5.0) -> Any:
        """The next ``event`` (first buffered one) whose data satisfies ``match``."""
        return await self.events.wait_for(event, match, timeout)

    def _publish(self, event: str, data: Any) -> None:
        self.events.push(event, data)
        for callback in self._callbacks.get(event, []):
            try:
                result = callback(data)
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                log.exception("callback for %s failed", event)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Handlers are plain functions: python-socketio runs each incoming packet in its own
    # task, and a handler that never awaits keeps them in arrival order.

    def greeted(self, session: dict[str, Any]) -> None:
        """Subclasses: take in the ``session`` greeting (state only, no I/O)."""

    def ready(self, session: dict[str, Any]) -> None:
        """Subclasses: the connection is usable (after every connect and reconnect)."""

    def _on_connect(self) -> None:
        self._refusal = None
        self._ns_connected = True
        self._maybe_ready()

    def _on_session(self, data: Any) -> None:
        if isinstance(data, dict):
            self._greeting = data
            self.greeted(data)
            self._maybe_ready()

    def _maybe_ready(self) -> None:
        # The server greets from its connect handler, so "session" usually comes just
        # before the namespace's CONNECT; requests can go out only after both.
        if self._ns_connected and self._greeting is not None and not self._ready.is_set():
            self._ready.set()
            self.ready(self._greeting)
            self._publish("session", self._greeting)

    def _on_disconnect(self, reason: Any = None) -> None:
        self._ready.clear()
        self._ns_connected = False
        self._greeting = None
        for future in list(self._pending):
            if not future.done():
                future.set_exception(NotConnected(f"connection lost ({reason})"))
        self._publish("disconnected", {"reason": str(reason)})

    def _on_connect_error(self, data: Any = None) -> None:
        self._refusal = data if isinstance(data, dict) else {"message": str(data)}
        self._publish("connect_error", self._refusal)

    def _on_any(self, event: str, data: Any = None) -> None:
        self._publish(event, data)

    # -- requests --------------------------------------------------------------------

    async def request(self, event: str, data: Any = None, timeout: float | None = None) -> Any:
        """Emits ``event`` and returns the server's raw ack."""
        if self.namespace not in self.sio.namespaces:
            raise NotConnected("not connected")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def answered(*args: Any) -> None:
            if not future.done():
                future.set_result(args[0] if len(args) == 1 else list(args))

        self._pending.add(future)
        try:
            await self.sio.emit(event, data, namespace=self.namespace, callback=answered)
            return await asyncio.wait_for(future, timeout or self.ack_timeout)
        except TimeoutError as exc:
            raise AckTimeout(f"no ack for {event!r}") from exc
        except (
            socketio.exceptions.BadNamespaceError,
            socketio.exceptions.DisconnectedError,
        ) as exc:
            raise NotConnected(str(exc)) from exc
        finally:
            self._pending.discard(future)

    async def resync(self, conversation_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """Every message after ``after_seq`` (all pages), in seq order."""
        messages: list[dict[str, Any]] = []
        while True:
            ack = await self.call(
                "resync", {"conversation_id": conversation_id, "after_seq": after_seq}
            )
            messages += ack["messages"]
            after_seq = int(ack["last_seq"])
            if not ack.get("has_more"):
                return messages

    async def call(
        self, event: str, data: Any = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Emits ``event``; the ack if ``ok``, else raises ``AckError``."""
        ack = await self.request(event, data, timeout)
        if not isinstance(ack, dict) or ack.get("ok") is not True:
            raise AckError(event, ack)
        return ack

    async def call_retrying(
        self, event: str, data: Any, timeout: float | None = None
    ) -> dict[str, Any]:
        """``call``, sent again after a reconnect until ``timeout``: for idempotent events."""
        deadline = asyncio.get_running_loop().time() + (timeout or self.ack_timeout)
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AckTimeout(f"no ack for {event!r}")
            try:
                await self.wait_connected(left)
                return await self.call(event, data, left)
            except NotConnected:
                if self._closed:
                    raise
                await asyncio.sleep(0.05)

    async def emit(self, event: str, data: Any = None) -> None:
        """Fire and forget (nothing if the connection is down)."""
        if self.namespace in self.sio.namespaces:
            try:
                await self.sio.emit(event, data, namespace=self.namespace)
            except (socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError):
                pass


__all__ = ["Connection", "ParleyError"]
