"""Room emits to every process through Redis: batched, and off the caller's path.

python-socketio's Redis manager publishes each emit as a Redis message of its own and
waits for the round trip before ``emit`` returns (so a socket's ack waited on Redis),
walks every payload looking for binary parts, and every process decodes the payload
back only to encode it again for its sockets. ``RedisFanout`` instead:

- encodes a broadcast emit (to one room or the whole namespace, without an ack
  callback) once, as its Socket.IO packet; hands this process's share to
  ``FrameEmit.deliver`` at once, and queues ``[namespace, room, skip_sid, packet]`` for
  the other processes. ``emit`` never waits for Redis;
- publishes what is queued from one flusher task, which runs while anything is queued,
  as few Redis messages (``{"method": "batch", "host_id", "items"}``) of at most
  ``max_publish_bytes`` each (512 KB; one item larger than that goes alone): the emits
  of a group commit leave together, and while a PUBLISH is under way the next batch
  gathers;
- queues python-socketio's own messages (emits with a callback or to several rooms,
  disconnects, enter/leave/close_room, evictions), turned into JSON when they are queued
  (a sender whose data is not JSON gets the error), in the same batches, so the other
  processes see all of this process's messages in the order they were made. Whoever
  sends one waits until Redis took it, or gets ``PublishFailed`` (see below);
- in the other processes, decodes each batch (one JSON document) and writes each emit's
  packet as it came to the local members (no encoding), and hands the other messages,
  in order, to python-socketio's handlers. A Redis message that is not a JSON object is
  dropped, with a warning at most once a minute.

This process's share goes out at once rather than when the batch comes back from Redis
(python-socketio's managers do the same): the neighbours of a socket on this process
hear without a round trip, and no process decodes its own batches. No socket hears an
emit twice: a process skips its own batches (known by the ``host_id`` they start with).
Every process sees one origin's emits in the order they were made (the origin in call
order, the others in PUBLISH order over the flusher's one connection). Emits of two
origins to one room can interleave differently in different processes, as with
python-socketio; messages carry ``seq``, and clients order and resync by it.

Redis down or slow: a failed PUBLISH is logged (once until one succeeds again); its
emits are dropped (messages are stored and clients resync), its python-socketio
messages go back to the front of the queue and are tried again, with a back-off, up to
``send_attempts`` times; then they are logged as errors and their senders get
``PublishFailed`` (an eviction that did not reach the others must not look done). While
a PUBLISH hangs (at most ``publish_timeout``), the queue is capped at
``max_pending_bytes`` by dropping the oldest emits, with a warning (python-socketio's
messages are never dropped for room): waiting for room instead would hold every
socket's ack on Redis, which is what this module exists to avoid. After ``close`` emits
reach this process's sockets only, and python-socketio's other messages fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeAlias

import orjson
import socketio
from redis import asyncio as aioredis

from chat.domain import jsontext
from chat.realtime.broadcast import FrameEmit, event_packet

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
MAX_PENDING_BYTES = 16 * 1024 * 1024
# Far under Redis's default pub/sub output buffer limit for a subscriber (32 MB, or 8 MB
# for 60 s), and no receiving loop stalls long on one message.
MAX_PUBLISH_BYTES = 512 * 1024
# A python-socketio message is tried this many times, waiting 0.2, 0.4 ... (at most 5) s
# between failures: some 11 s, through a Redis restart.
SEND_ATTEMPTS = 7
RETRY_DELAY_SECONDS = 0.2
MAX_RETRY_DELAY_SECONDS = 5.0
UNDECODABLE_LOG_SECONDS = 60.0
# What a queued item counts for against the caps besides its packet's or text's length.
_ITEM_OVERHEAD = 64


class PublishFailed(Exception):
    """A message of python-socketio's did not reach Redis: the other processes never see it."""


class _Queued:
    """The sender's side of one of python-socketio's messages: the future it waits on."""

    __slots__ = ("attempts", "method", "sent")

    def __init__(self, method: str, sent: asyncio.Future[None]) -> None:
        self.method = method
        self.sent = sent
        self.attempts = 0

    def settle(self) -> None:
        if not self.sent.done():
            self.sent.set_result(None)

    def fail(self, why: str) -> None:
        if not self.sent.done():
            self.sent.set_exception(PublishFailed(f"{self.method} not published to Redis: {why}"))


# What a queued item counts for against the caps; an emit for the other processes
# (``[namespace, room, skip_sid, packet]``) or one of python-socketio's messages (its JSON
# text as an ``orjson.Fragment``); and, for the latter, its ``_Queued``.
_Entry: TypeAlias = tuple[int, Any, "_Queued | None"]


class RedisFanout(socketio.AsyncRedisManager, FrameEmit):
    def __init__(
        self,
        url: str,
        channel: str,
        *,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_publish_bytes: int = MAX_PUBLISH_BYTES,
        publish_timeout: float = PUBLISH_TIMEOUT_SECONDS,
        send_attempts: int = SEND_ATTEMPTS,
        retry_delay: float = RETRY_DELAY_SECONDS,
        max_retry_delay: float = MAX_RETRY_DELAY_SECONDS,
    ) -> None:
        super().__init__(url, channel=channel)
        self.max_pending_bytes = max_pending_bytes
        self.max_publish_bytes = max_publish_bytes
        self.publish_timeout = publish_timeout
        self.send_attempts = send_attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.batches_published = 0
        # The queue is ``_held`` then ``_pending``: ``_held`` keeps python-socketio's
        # messages whose earlier emits were dropped for room (so none of them is dropped,
        # and dropping stays O(1) a drop); ``_pending_bytes`` counts both.
        self._held: deque[_Entry] = deque()
        self._pending: deque[_Entry] = deque()
        self._pending_bytes = 0
        self._dropped = 0  # emits dropped for room since the last warning
        self._failures = 0  # PUBLISHes failed in a row
        self._lost = 0  # emits of those PUBLISHes
        self._retry_at = 0.0
        self._undecodable = 0  # since the last warning
        self._undecodable_log_at = 0.0
        self._closed = False
        self._closing = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._publisher: Any = None
        self._own = f'{{"method":"batch","host_id":"{self.host_id}","items":'.encode()

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
            if self._closed:
                log.debug("closed: an emit to %s %s reaches this process only", namespace, room)
            else:
                self._queue((len(encoded) + _ITEM_OVERHEAD, [namespace, room, skip_sid, encoded], None))
        await self.deliver(namespace, room, skip_sid, encoded)

    async def _publish(self, data: Any) -> None:
        """python-socketio's messages: queued behind the emits before them, as JSON."""
        method = str(data.get("method")) if isinstance(data, dict) else "message"
        if self._closed:
            if method == "emit":
                log.debug("closed: an emit reaches this process only")
                return
            raise PublishFailed(f"{method} not published to Redis: the fan-out is closed")
        text = jsontext.dumps(data)  # data that is not JSON fails here, for its sender
        queued = _Queued(method, asyncio.get_running_loop().create_future())
        self._queue((len(text) + _ITEM_OVERHEAD, orjson.Fragment(text), queued))
        await queued.sent

    def _queue(self, entry: _Entry) -> None:
        self._pending.append(entry)
        self._pending_bytes += entry[0]
        if self._pending_bytes > self.max_pending_bytes:
            self._make_room()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def _make_room(self) -> None:
        """Drops the oldest queued emits until the queue fits (or only the newest item is
        left of ``_pending``); python-socketio's messages met on the way move to ``_held``."""
        pending = self._pending
        while self._pending_bytes > self.max_pending_bytes and len(pending) > 1:
            entry = pending.popleft()
            if entry[2] is not None:
                self._held.append(entry)
                continue
            self._pending_bytes -= entry[0]
            if not self._dropped:
                log.warning(
                    "Redis is not taking emits as fast as they come: dropping the oldest "
                    "queued emits (over %d bytes); clients resync", self.max_pending_bytes,
                )
            self._dropped += 1

    def _requeue(self, entries: list[_Entry]) -> None:
        """Puts ``entries`` back at the front of the queue, before what came meanwhile."""
        if not entries:
            return
        self._pending = deque([*entries, *self._held, *self._pending])
        self._held.clear()
        self._pending_bytes += sum(entry[0] for entry in entries)
        if self._pending_bytes > self.max_pending_bytes:
            self._make_room()

    async def _flush(self) -> None:
        try:
            while self._held or self._pending:
                await self._back_off()
                batch = [*self._held, *self._pending]
                size, self._pending_bytes = self._pending_bytes, 0
                self._held.clear()
                self._pending.clear()
                if self._dropped:
                    log.warning("%d queued emits were dropped while Redis was slow", self._dropped)
                    self._dropped = 0
                await self._send_batch(batch, size)
        finally:
            self._flusher = None

    async def _back_off(self) -> None:
        """After a failed PUBLISH, waits until the next try is due (unless closing)."""
        delay = self._retry_at - asyncio.get_running_loop().time()
        if delay > 0 and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def _send_batch(self, batch: list[_Entry], size: int) -> None:
        """``batch`` in order, as PUBLISHes of at most ``max_publish_bytes`` (an item
        larger than that alone); what follows a failed one goes back to the queue."""
        todo = deque([batch] if size <= self.max_publish_bytes else self._chunks(batch))
        while todo:
            chunk = todo.popleft()
            payload = self._payload(chunk)
            if len(payload) > self.max_publish_bytes and len(chunk) > 1:
                half = len(chunk) // 2  # escaping made it larger than its weight said
                todo.extendleft((chunk[half:], chunk[:half]))
                continue
            try:
                await self._send(payload)
            except asyncio.CancelledError:
                self._requeue([*chunk, *(entry for rest in todo for entry in rest)])
                raise
            except Exception as exc:  # noqa: BLE001 - logged once per outage, retried
                self._send_failed(chunk, exc)
                self._requeue([*self._retried(chunk, exc), *(e for rest in todo for e in rest)])
                return
            self._sent(chunk)

    def _chunks(self, batch: list[_Entry]) -> Iterator[list[_Entry]]:
        chunk: list[_Entry] = []
        size = 0
        for entry in batch:
            if chunk and size + entry[0] > self.max_publish_bytes:
                yield chunk
                chunk, size = [], 0
            chunk.append(entry)
            size += entry[0]
        if chunk:
            yield chunk

    def _payload(self, chunk: list[_Entry]) -> bytes:
        try:
            return b"%b%b}" % (self._own, orjson.dumps([entry[1] for entry in chunk]))
        except TypeError:
            pass
        # An emit's packet is text already, so that does not fail; if it does, the emits
        # that are not JSON are left out.
        kept = []
        for entry in chunk:
            try:
                orjson.dumps(entry[1])
            except TypeError:
                log.error("an emit for the other processes is not JSON, dropped: %.80r", entry[1])
            else:
                kept.append(entry)
        chunk[:] = kept
        return b"%b%b}" % (self._own, orjson.dumps([entry[1] for entry in chunk]))

    def _send_failed(self, chunk: list[_Entry], exc: Exception) -> None:
        if not self._failures:
            log.warning(
                "cannot publish to Redis (%s: %s); emits for other processes are dropped "
                "until it works again (clients resync)", type(exc).__name__, exc,
            )
        self._failures += 1
        self._lost += sum(1 for entry in chunk if entry[2] is None)
        backoff = self.retry_delay * 2 ** min(self._failures - 1, 16)
        self._retry_at = asyncio.get_running_loop().time() + min(backoff, self.max_retry_delay)

    def _retried(self, chunk: list[_Entry], exc: Exception) -> list[_Entry]:
        """The python-socketio messages of a failed PUBLISH that have tries left; the
        others' senders are told."""
        again = []
        for entry in chunk:
            item = entry[2]
            if item is None:
                continue
            item.attempts += 1
            if item.attempts < self.send_attempts:
                again.append(entry)
                continue
            log.error(
                "a %s message was not published to Redis in %d attempts (last: %s: %s); "
                "the other processes never see it", item.method, item.attempts,
                type(exc).__name__, exc,
            )
            item.fail(f"{item.attempts} attempts failed")
        return again

    def _sent(self, chunk: list[_Entry]) -> None:
        self.batches_published += 1
        for _, _, queued in chunk:
            if queued is not None:
                queued.settle()
        if self._failures:
            log.warning(
                "publishing to Redis again after %d failed attempts; %d emits for other "
                "processes were dropped", self._failures, self._lost,
            )
            self._failures = self._lost = 0

    async def _send(self, payload: bytes) -> None:
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
                message = None
            if not isinstance(message, dict):
                self._undecodable_message(raw)
                continue
            if message.get("method") != "batch":
                yield message
                continue
            for item in message.get("items") or ():
                if isinstance(item, dict):
                    yield item  # python-socketio's handlers take it from here
                else:
                    await self._deliver_remote(item)

    def _undecodable_message(self, raw: Any) -> None:
        """Dropped, and counted in a warning at most once per ``UNDECODABLE_LOG_SECONDS``."""
        self._undecodable += 1
        now = asyncio.get_running_loop().time()
        if now >= self._undecodable_log_at:
            log.warning(
                "%d messages on Redis channel %s were not JSON objects, dropped (last: %.80r)",
                self._undecodable, self.channel, raw,
            )
            self._undecodable = 0
            self._undecodable_log_at = now + UNDECODABLE_LOG_SECONDS

    async def _deliver_remote(self, item: Any) -> None:
        try:
            namespace, room, skip_sid, encoded = item
            await self.deliver(namespace, room, skip_sid, encoded)
        except Exception:
            log.exception("cannot deliver an emit from another process: %.80r", item)

    async def close(self, timeout: float = 1.0) -> None:
        """Takes nothing more for Redis; sends what is queued (for at most ``timeout``,
        without backing off), fails python-socketio's messages still unsent, then lets go
        of Redis."""
        self._closed = True
        self._closing.set()
        flusher = self._flusher
        if flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(flusher), timeout)
            if not flusher.done():
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
        unsent = [queued for _, _, queued in (*self._held, *self._pending) if queued is not None]
        if unsent:
            log.error(
                "%d messages (%s) were not published to Redis before closing; the other "
                "processes never see them", len(unsent), ", ".join(sorted({q.method for q in unsent})),
            )
            for queued in unsent:
                queued.fail("closed first")
        self._held.clear()
        self._pending.clear()
        self._pending_bytes = 0
        await self._close_publisher()
