"""Room emits to every process through Redis: batched, and off the caller's path.

python-socketio's Redis manager publishes each emit as a Redis message of its own and
waits for the round trip before ``emit`` returns (so a socket's ack waited on Redis),
walks every payload looking for binary parts, and every process decodes the payload
back only to encode it again for its sockets. ``RedisFanout`` instead:

- encodes a broadcast emit (to one room or the whole namespace, without an ack
  callback) once, as its Socket.IO packet; hands this process's share to
  ``FrameEmit.deliver`` at once, and queues ``[namespace, room, skip_sid, packet]`` for
  the other processes. ``emit`` never waits for Redis;
- publishes everything queued as ONE Redis message (``{"method": "batch", "host_id",
  "items"}``) from one flusher task, which runs while anything is queued: the emits of a
  group commit leave together, and while a PUBLISH is under way the next batch gathers;
- queues python-socketio's own messages (emits with a callback or to several rooms,
  disconnects, enter/leave/close_room, evictions) in the same batches, so the other
  processes see all of this process's messages in the order they were made; whoever
  sends one still waits until its batch is out, as it waited for its PUBLISH;
- in the other processes, writes each emit's packet as it came to the local members
  (no decoding, no encoding), and hands the other messages, in order, to
  python-socketio's handlers.

This process's share goes out at once rather than when the batch comes back from Redis
(python-socketio's managers do the same): the neighbours of a socket on this process
hear without a round trip, and no process decodes its own batches. No socket hears an
emit twice: a process skips its own batches (known by the ``host_id`` they start with).
Every process sees one origin's emits in the order they were made (the origin in call
order, the others in PUBLISH order over the flusher's one connection). Emits of two
origins to one room can interleave differently in different processes, as with
python-socketio; messages carry ``seq``, and clients order and resync by it.

Redis down or slow: a failed PUBLISH is logged (once until one succeeds again) and its
batch dropped; messages are stored and clients resync. While a PUBLISH hangs (at most
``publish_timeout``), the queue is capped at ``max_pending_bytes``, dropping the oldest
with a warning: waiting for room instead would hold every socket's ack on Redis, which
is what this module exists to avoid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis import asyncio as aioredis

from chat.domain import jsontext
from chat.realtime.broadcast import FrameEmit, event_packet

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
MAX_PENDING_BYTES = 16 * 1024 * 1024
# What a queued item counts for against the cap besides its packet's length.
_ITEM_OVERHEAD = 64
_MESSAGE_WEIGHT = 512


class _Queued:
    """One of python-socketio's messages, and the future its sender waits on."""

    __slots__ = ("message", "sent")

    def __init__(self, message: dict[str, Any], sent: asyncio.Future[None]) -> None:
        self.message = message
        self.sent = sent

    def settle(self) -> None:
        if not self.sent.done():
            self.sent.set_result(None)


class RedisFanout(socketio.AsyncRedisManager, FrameEmit):
    def __init__(
        self,
        url: str,
        channel: str,
        *,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        publish_timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(url, channel=channel)
        self.max_pending_bytes = max_pending_bytes
        self.publish_timeout = publish_timeout
        self.batches_published = 0
        self._pending: deque[tuple[int, list[Any] | _Queued]] = deque()
        self._pending_bytes = 0
        self._dropped = 0  # queued items dropped since the last warning
        self._failed = 0  # batches lost since Redis last took one
        self._flusher: asyncio.Task[None] | None = None
        self._publisher: Any = None
        self._head = f'{{"method":"batch","host_id":"{self.host_id}","items":'
        self._own = self._head.encode()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: Any = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if (
            callback is not None
            or kwargs.get("ignore_queue")
            or not (room is None or isinstance(room, str))
            or self.server is None
            # a packet class that may carry binary parts: python-socketio's way
            or getattr(self.server.packet_class, "uses_binary_events", True)
        ):
            await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                callback=callback, **kwargs,
            )
            return
        namespace = namespace or "/"
        encoded = event_packet(self.server.packet_class, event, data, namespace)
        if not self.is_sid_room(namespace, room):  # a socket of this process: no one else's
            self._queue([namespace, room, skip_sid, encoded], len(encoded) + _ITEM_OVERHEAD)
        await self.deliver(namespace, room, skip_sid, encoded)

    async def _publish(self, data: Any) -> None:
        """python-socketio's messages: queued behind the emits before them."""
        queued = _Queued(data, asyncio.get_running_loop().create_future())
        self._queue(queued, _MESSAGE_WEIGHT)
        await queued.sent

    def _queue(self, item: list[Any] | _Queued, weight: int) -> None:
        self._pending.append((weight, item))
        self._pending_bytes += weight
        while self._pending_bytes > self.max_pending_bytes and len(self._pending) > 1:
            old_weight, old = self._pending.popleft()
            self._pending_bytes -= old_weight
            if isinstance(old, _Queued):
                old.settle()
            if not self._dropped:
                log.warning(
                    "Redis is not taking emits as fast as they come: dropping the oldest "
                    "queued (over %d bytes); clients resync", self.max_pending_bytes,
                )
            self._dropped += 1
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = list(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                if self._dropped:
                    log.warning("%d queued emits were dropped while Redis was slow", self._dropped)
                    self._dropped = 0
                try:
                    await self._send_batch([
                        item.message if isinstance(item, _Queued) else item for _, item in batch
                    ])
                finally:
                    for _, item in batch:
                        if isinstance(item, _Queued):
                            item.settle()
        finally:
            self._flusher = None

    async def _send_batch(self, items: list[Any]) -> None:
        try:
            await self._send(f"{self._head}{jsontext.dumps(items)}}}")
        except Exception as exc:  # noqa: BLE001 - logged once per outage, the batch dropped
            if not self._failed:
                log.warning(
                    "cannot publish to Redis (%s: %s); emits for other processes are "
                    "dropped until it works again (clients resync)", type(exc).__name__, exc,
                )
            self._failed += 1
            return
        self.batches_published += 1
        if self._failed:
            log.warning("publishing to Redis again; %d batches were dropped", self._failed)
            self._failed = 0

    async def _send(self, payload: str) -> None:
        if self._publisher is None:
            self._publisher = aioredis.Redis.from_url(
                self.redis_url,
                socket_connect_timeout=self.publish_timeout,
                socket_timeout=self.publish_timeout,
            )
        try:
            await asyncio.wait_for(
                self._publisher.publish(self.channel, payload), self.publish_timeout
            )
        except Exception:
            await self._close_publisher()  # a fresh connection next time
            raise

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.aclose()

    async def _listen(self) -> AsyncIterator[Any]:
        async for raw in super()._listen():
            if isinstance(raw, bytes) and raw.startswith(self._own):
                continue  # this process's own batch, delivered here when it was queued
            try:
                message = jsontext.loads(raw)
            except (TypeError, ValueError):
                continue
            if not isinstance(message, dict):
                continue
            if message.get("method") != "batch":
                yield message
                continue
            for item in message.get("items") or ():
                if isinstance(item, dict):
                    yield item  # python-socketio's handlers take it from here
                else:
                    await self._deliver_remote(item)

    async def _deliver_remote(self, item: Any) -> None:
        try:
            namespace, room, skip_sid, encoded = item
            await self.deliver(namespace, room, skip_sid, encoded)
        except Exception:
            log.exception("cannot deliver an emit from another process: %.80r", item)

    async def close(self, timeout: float = 1.0) -> None:
        """Sends what is queued (for at most ``timeout``), then lets go of Redis."""
        flusher = self._flusher
        if flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(flusher), timeout)
            if not flusher.done():
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
        for _, item in self._pending:
            if isinstance(item, _Queued):
                item.settle()
        self._pending.clear()
        self._pending_bytes = 0
        await self._close_publisher()
