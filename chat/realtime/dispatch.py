"""The lean Socket.IO event path: an EVENT packet straight to its namespace, its ack
written straight back.

python-socketio handles a client event in layers: Engine.IO starts a task for the
message, python-socketio parses it into a packet object, checks the connection, starts a
second task, looks the handler up, and sends the ack as another packet object through
Engine.IO's ``send``. For an EVENT to one of Parley's namespaces (those with
``lean_dispatch``) this module does the same work once:

* ``decode_event`` reads ``2[/namespace,][id][json]`` into its parts (the other packet
  types, CONNECT, DISCONNECT, ACK and binary ones, still go through python-socketio:
  they are rare, and python-socketio keeps its connection state);
* the event joins its connection's inbox; one task per connection, alive only while the
  inbox has something, runs the handlers one after the other, in the order the client
  sent them. A slow handler holds up its own connection only; past ``INBOX_LIMIT``
  waiting events the reader stops reading that connection until its inbox drains, so a
  client that floods waits on TCP instead of growing the server's memory;
* the ack is encoded once into its Engine.IO frame (``43/ns,id[...]``) and handed to
  the socket's writer (``LeanSocket.offer``), or through Engine.IO's ``send`` when the
  socket is long-polling.

Handlers of one connection used to run concurrently (a task each); now they run in
order, which is also the order the client's messages are stored in.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Protocol

from chat.domain import jsontext

log = logging.getLogger(__name__)

# Events of one connection that may wait for their handler before its reader pauses.
INBOX_LIMIT = 64


class LeanHandler(Protocol):
    """A namespace handler the lean path may call (``GuardedNamespace``)."""

    lean_dispatch: bool

    async def trigger_event(self, event: Any, *args: Any) -> Any: ...


class NotLean(Exception):
    """The packet is well formed but needs python-socketio's own path."""


def decode_event(data: str) -> tuple[str, int | None, Any, list[Any]]:
    """``(namespace, ack id or None, event name, arguments)`` of an EVENT packet
    (``data`` starts with ``2``); ValueError when it does not parse."""
    ep = data[1:]
    namespace = "/"
    if ep[:1] == "/":
        sep = ep.find(",")
        if sep == -1:
            namespace, ep = ep, ""
        else:
            namespace, ep = ep[:sep], ep[sep + 1 :]
        q = namespace.find("?")
        if q != -1:
            namespace = namespace[:q]
    ack_id = None
    i, end = 0, len(ep)
    while i < end and ep[i].isdigit():
        i += 1
    if i:
        if i > 100:
            raise ValueError("id field is too long")
        if ep[i : i + 1] == "-":  # an attachment count: python-socketio's business
            raise NotLean
        ack_id = int(ep[:i])
        ep = ep[i:]
    args = jsontext.loads(ep) if ep else None
    if type(args) is not list or not args:
        raise ValueError("an event is a non-empty JSON list")
    return namespace, ack_id, args[0], args[1:]


def ack_frame(namespace: str, ack_id: int, result: Any) -> str:
    """The Engine.IO text frame of a Socket.IO ACK (python-socketio's shape: a tuple is
    several arguments, None none)."""
    if result is None:
        data: list[Any] = []
    elif isinstance(result, tuple):
        data = list(result)
    else:
        data = [result]
    prefix = "43" if namespace == "/" else f"43{namespace},"
    return f"{prefix}{ack_id}{jsontext.dumps(data)}"


class Inbox:
    """The events of one connection waiting for their handler, and the task running them."""

    __slots__ = ("events", "running")

    def __init__(self) -> None:
        self.events: deque[tuple[LeanHandler, str, str, int | None, Any, list[Any]]] = deque()
        self.running: asyncio.Task[None] | None = None


class Conduit(Protocol):
    """What the dispatcher needs of an Engine.IO socket (``LeanSocket``)."""

    inbox: Inbox | None

    def offer(self, frame: str) -> bool: ...


class Dispatcher:
    """Runs the lean events of every connection; ``send`` is Engine.IO's fallback for a
    socket that takes no frame directly (long-polling, upgrading, backlogged)."""

    def __init__(self, send: Any) -> None:
        self.send = send

    async def enqueue(
        self,
        socket: Conduit,
        eio_sid: str,
        job: tuple[LeanHandler, str, str, int | None, Any, list[Any]],
    ) -> None:
        inbox = socket.inbox
        if inbox is None:
            inbox = socket.inbox = Inbox()
        inbox.events.append(job)
        if inbox.running is None:
            inbox.running = asyncio.get_running_loop().create_task(
                self._drain(socket, eio_sid, inbox)
            )
        elif len(inbox.events) >= INBOX_LIMIT:
            await asyncio.wait([inbox.running])  # back-pressure on this connection only

    async def _drain(self, socket: Conduit, eio_sid: str, inbox: Inbox) -> None:
        events = inbox.events
        try:
            while events:
                handler, sid, namespace, ack_id, event, args = events.popleft()
                try:
                    result = await handler.trigger_event(event, sid, *args)
                except Exception:
                    log.exception("%s %.50r failed", namespace, event)
                    continue
                if ack_id is not None:
                    frame = ack_frame(namespace, ack_id, result)
                    if not socket.offer(frame):
                        await self.send(eio_sid, frame[1:])
        finally:
            inbox.running = None
            if not events:
                socket.inbox = None  # an idle connection keeps no inbox
