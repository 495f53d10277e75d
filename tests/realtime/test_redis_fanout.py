"""chat/realtime/redis_fanout.py on a real Redis: two managers ("processes") on one channel,
each with a stand-in server whose sockets record the frames they are given.

What crosses between them can only go through Redis; PUBLISHes are counted by wrapping
the manager's one way out (``_send``). Whole servers over Redis: test_redis.py and
test_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from chat.domain import jsontext
from chat.realtime.eviction import EvictingRedisManager
from chat.realtime.redis_fanout import MAX_PUBLISH_BYTES, PublishFailed, RedisFanout
from chat.realtime.wire import JsonPacket
from tests.conftest import free_port, need_redis

pytestmark = pytest.mark.redis

WAIT = 10.0
AGENT, CLIENT = "/agent", "/client"


class Socket:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def offer(self, frame: str) -> bool:
        self.frames.append(frame)
        return True

    def events(self) -> list[tuple[str, str, Any]]:
        """(namespace, event, argument) of each frame, in order."""
        out = []
        for frame in self.frames:
            assert frame.startswith("4")
            pkt = JsonPacket(encoded_packet=frame[1:])
            out.append((pkt.namespace or "/", pkt.data[0], pkt.data[1] if len(pkt.data) > 1 else None))
        return out


class Server:
    """The part of ``AsyncServer`` a manager uses."""

    packet_class = JsonPacket
    logger = logging.getLogger("tests.fanout")

    def __init__(self, manager: RedisFanout) -> None:
        self.manager = manager
        self.eio = SimpleNamespace(sockets={})
        self.disconnected: list[tuple[str, str]] = []
        manager.set_server(self)

    def start_background_task(self, target: Callable[..., Any], *args: Any) -> asyncio.Task[Any]:
        return asyncio.ensure_future(target(*args))

    def join(self, namespace: str, *rooms: str) -> tuple[str, Socket]:
        """A socket connected to ``namespace`` and in ``rooms``: its sid and its frames."""
        sid, eio_sid = uuid.uuid4().hex, uuid.uuid4().hex
        socket = Socket()
        self.eio.sockets[eio_sid] = socket
        self.manager.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        self.manager.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        for room in rooms:
            self.manager.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        return sid, socket

    async def _send_eio_packet(self, eio_sid: str, pkt: Any) -> None:
        self.eio.sockets[eio_sid].frames.append(pkt.encode())

    async def disconnect(self, sid: str, namespace: str, ignore_queue: bool = False) -> None:
        self.disconnected.append((namespace, sid))
        self.manager.basic_disconnect(sid, namespace)


@pytest.fixture
def channel() -> str:
    return f"parley.test.fanout.{uuid.uuid4().hex}"


@pytest.fixture
async def start(channel: str) -> AsyncIterator[Callable[..., Any]]:
    """Starts a manager with its server on ``channel`` and waits until its listener is
    subscribed (so nothing published afterwards is missed)."""
    url = need_redis()
    started: list[RedisFanout] = []
    probe = redis.Redis.from_url(url)

    async def make(cls: type[RedisFanout] = RedisFanout, **options: Any) -> Server:
        manager = cls(url, channel=channel, **options)
        server = Server(manager)
        manager.initialize()
        started.append(manager)
        await until(lambda: probe.pubsub_numsub(channel)[0][1] >= len(started))
        return server

    yield make
    for manager in started:
        await manager.close()
        manager.thread.cancel()
        await asyncio.gather(manager.thread, return_exceptions=True)
        if manager.pubsub is not None:
            await manager.pubsub.aclose()
        if manager.redis is not None:
            await manager.redis.aclose()
    probe.close()


async def until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def count_publishes(manager: RedisFanout) -> list[str]:
    """The PUBLISHes ``manager`` makes (tries included), as text."""
    sent: list[str] = []
    send = manager._send

    async def counting(payload: bytes) -> None:
        sent.append(payload.decode())
        await send(payload)

    manager._send = counting  # type: ignore[method-assign]
    return sent


def numbers(socket: Socket, event: str = "n") -> list[int]:
    return [data["i"] for _, name, data in socket.events() if name == event]


async def test_emits_of_one_tick_are_one_publish_and_reach_the_other_process(start) -> None:
    a, b = await start(), await start()
    sent = count_publishes(a.manager)
    _, here = a.join(AGENT, "agents:w")
    _, there = b.join(AGENT, "agents:w")

    for i in range(50):  # no await yields to the loop in between: one batch
        await a.manager.emit("n", {"i": i}, namespace=AGENT, room="agents:w")
    assert numbers(here) == list(range(50)), "this process's share goes out at once"
    assert not sent, "emit did not wait for Redis"

    await until(lambda: len(numbers(there)) == 50)
    assert numbers(there) == list(range(50))
    assert len(sent) == 1
    await asyncio.sleep(0.1)  # a's own batch came back from Redis too, and was skipped
    assert numbers(here) == list(range(50))


async def test_many_emits_from_two_processes_keep_each_origins_order(start) -> None:
    a, b = await start(), await start()
    sockets = [a.join(CLIENT, "contact:c")[1], b.join(CLIENT, "contact:c")[1]]

    async def emitter(server: Server, origin: str) -> None:
        for i in range(300):
            await server.manager.emit(
                "n", {"i": i, "from": origin}, namespace=CLIENT, room="contact:c"
            )
            if i % 7 == 0:
                await asyncio.sleep(0)  # several batches, interleaved with the other's

    await asyncio.gather(emitter(a, "a"), emitter(b, "b"))
    await until(lambda: all(len(s.events()) == 600 for s in sockets))
    for socket in sockets:
        for origin in ("a", "b"):
            got = [d["i"] for _, _, d in socket.events() if d["from"] == origin]
            assert got == list(range(300)), f"{origin}'s emits out of order or repeated"
    assert a.manager.batches_published > 1


async def test_skip_sid_and_rooms_are_honoured_in_every_process(start) -> None:
    a, b = await start(), await start()
    sender, sender_socket = a.join(AGENT, "agents:w", "agent:ann")
    _, ann_elsewhere = b.join(AGENT, "agents:w", "agent:ann")
    _, bob = b.join(AGENT, "agents:w", "agent:bob")
    _, other_workspace = b.join(AGENT, "agents:v")
    _, same_room_other_namespace = b.join(CLIENT, "agent:ann")
    skipped_there, skipped_socket = b.join(AGENT, "agents:w")

    await a.manager.emit("n", {"i": 1}, namespace=AGENT, room="agents:w", skip_sid=sender)
    await a.manager.emit("n", {"i": 2}, namespace=AGENT, room="agents:w", skip_sid=skipped_there)
    await a.manager.emit("n", {"i": 3}, namespace=AGENT, room="agent:ann")
    await a.manager.emit("done", None, namespace=AGENT)  # the whole namespace

    await until(lambda: bool(other_workspace.frames))
    assert numbers(sender_socket) == [2, 3]
    assert numbers(ann_elsewhere) == [1, 2, 3]
    assert numbers(bob) == [1, 2]
    assert numbers(skipped_socket) == [1]
    assert numbers(other_workspace) == []
    assert same_room_other_namespace.frames == []
    assert [e[1] for e in other_workspace.events()] == ["done"]


async def test_eviction_follows_the_emits_made_before_it(start) -> None:
    a, b = await start(EvictingRedisManager), await start(EvictingRedisManager)
    assert isinstance(a.manager, EvictingRedisManager)
    here, _ = a.join(CLIENT, "contact:c")
    there, there_socket = b.join(CLIENT, "contact:c")
    stays, _ = b.join(CLIENT, "contact:d")

    await a.manager.emit("n", {"i": 1}, namespace=CLIENT, room="contact:c")
    seen_when_closed: list[list[int]] = []
    disconnect = b.disconnect

    async def recording(sid: str, namespace: str, ignore_queue: bool = False) -> None:
        seen_when_closed.append(numbers(there_socket))
        await disconnect(sid, namespace, ignore_queue)

    b.disconnect = recording  # type: ignore[method-assign]
    await a.manager.evict("contact:c", CLIENT)
    assert a.disconnected == [(CLIENT, here)]
    await until(lambda: bool(b.disconnected))
    assert b.disconnected == [(CLIENT, there)]
    assert seen_when_closed == [[1]], "the emit before the eviction arrived before it"
    assert b.manager.is_connected(stays, CLIENT)


async def test_a_hanging_redis_neither_blocks_emits_nor_grows_the_queue(start, caplog) -> None:
    a = await start(max_pending_bytes=4096)
    _, here = a.join(AGENT, "agents:w")
    gate = asyncio.Event()
    sent: list[str] = []

    async def hanging(payload: bytes) -> None:
        await gate.wait()
        sent.append(payload.decode())

    a.manager._send = hanging  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        for i in range(500):
            await asyncio.wait_for(
                a.manager.emit("n", {"i": i}, namespace=AGENT, room="agents:w"), WAIT
            )
            await asyncio.sleep(0)  # the flusher runs, and hangs on its first batch
        assert numbers(here) == list(range(500))
        assert a.manager._pending_bytes <= 4096
        assert len(a.manager._pending) < 500
        assert "dropping the oldest" in caplog.text
        gate.set()
        await until(lambda: a.manager._flusher is None)
    last = sent[-1]
    assert '\\"i\\":499' in last and '\\"i\\":100}' not in last, "the newest were kept"
    assert "were dropped while Redis was slow" in caplog.text


async def test_redis_down_drops_batches_and_publishing_resumes_when_it_returns(
    start, caplog
) -> None:
    a, b = await start(retry_delay=0.01), await start()
    _, here = a.join(AGENT, "agents:w")
    _, there = b.join(AGENT, "agents:w")
    working_url = a.manager.redis_url
    a.manager.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        for i in range(3):
            await a.manager.emit("n", {"i": i}, namespace=AGENT, room="agents:w")
            await until(lambda: a.manager._flusher is None)  # tried, failed, dropped
        assert numbers(here) == [0, 1, 2]
        assert caplog.text.count("cannot publish to Redis") == 1

        a.manager.redis_url = working_url  # Redis is back
        await a.manager.emit("n", {"i": 3}, namespace=AGENT, room="agents:w")
        await until(lambda: bool(there.frames))
        assert "again after 3 failed attempts; 3 emits for other processes were dropped" in (
            caplog.text
        )
    assert numbers(there) == [3]
    assert numbers(here) == [0, 1, 2, 3]


async def test_callback_emits_and_room_lists_take_python_socketios_way(start) -> None:
    a, b = await start(), await start()
    sent = count_publishes(a.manager)
    _, one = b.join(AGENT, "r1")
    _, two = b.join(AGENT, "r2")
    await a.manager.emit("n", {"i": 1}, namespace=AGENT, room=["r1", "r2"])
    await until(lambda: bool(one.frames and two.frames))
    assert numbers(one) == numbers(two) == [1]
    assert len(sent) == 1 and '"method":"emit"' in sent[0], "a stock message inside a batch"


async def test_an_emit_to_one_socket_is_published_only_when_it_lives_elsewhere(start) -> None:
    a, b = await start(), await start()
    sent = count_publishes(a.manager)
    mine, my_socket = a.join(AGENT)
    theirs, their_socket = b.join(AGENT)
    await a.manager.emit("n", {"i": 1}, namespace=AGENT, to=mine)
    assert numbers(my_socket) == [1]
    await asyncio.sleep(0.05)
    assert sent == [], "a socket of this process needs nobody else"
    await a.manager.emit("n", {"i": 2}, namespace=AGENT, to=theirs)
    await until(lambda: bool(their_socket.frames))
    assert numbers(their_socket) == [2] and numbers(my_socket) == [1]
    assert len(sent) == 1


def hold_publishes(manager: RedisFanout) -> tuple[asyncio.Event, list[bytes]]:
    """PUBLISHes wait for the gate (as if Redis hung), then go out; each is recorded."""
    gate = asyncio.Event()
    sent: list[bytes] = []
    send = manager._send

    async def held(payload: bytes) -> None:
        sent.append(payload)
        await gate.wait()
        await send(payload)

    manager._send = held  # type: ignore[method-assign]
    return gate, sent


async def test_an_eviction_made_while_redis_is_down_goes_out_when_it_is_back(
    start, caplog
) -> None:
    a = await start(EvictingRedisManager, retry_delay=0.02, max_retry_delay=0.1)
    b = await start(EvictingRedisManager)
    there, _ = b.join(CLIENT, "contact:c")
    tries = count_publishes(a.manager)
    working_url = a.manager.redis_url
    a.manager.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        eviction = asyncio.create_task(a.manager.evict("contact:c", CLIENT))
        await until(lambda: len(tries) >= 3)
        assert not eviction.done(), "its sender waits until Redis took it"
        await a.manager.emit("n", {"i": 1}, namespace=CLIENT, room="contact:c")

        a.manager.redis_url = working_url  # Redis is back
        await asyncio.wait_for(eviction, WAIT)
        await until(lambda: bool(b.disconnected))
    assert b.disconnected == [(CLIENT, there)]
    assert caplog.text.count("cannot publish to Redis") == 1


async def test_an_eviction_that_never_reaches_redis_fails_for_its_sender(start, caplog) -> None:
    a = await start(EvictingRedisManager, send_attempts=3, retry_delay=0.01)
    a.manager.redis_url = f"redis://127.0.0.1:{free_port()}/0"
    with (
        caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"),
        pytest.raises(PublishFailed),
    ):
        await asyncio.wait_for(a.manager.evict("contact:c", CLIENT), WAIT)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "close_room message was not published to Redis in 3" in errors[0]


async def test_a_flood_of_emits_over_the_cap_never_drops_an_eviction(start, caplog) -> None:
    a = await start(EvictingRedisManager, max_pending_bytes=4096)
    b = await start(EvictingRedisManager)
    there, _ = b.join(CLIENT, "contact:c")
    _, listener = b.join(AGENT, "agents:w")
    gate, _sent = hold_publishes(a.manager)
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        await a.manager.emit("n", {"i": -1}, namespace=AGENT, room="agents:w")
        await asyncio.sleep(0)  # the flusher hangs on its first batch
        eviction = asyncio.create_task(a.manager.evict("contact:c", CLIENT))
        await asyncio.sleep(0)
        for i in range(500):
            await a.manager.emit("n", {"i": i}, namespace=AGENT, room="agents:w")
        assert "dropping the oldest" in caplog.text
        assert a.manager._pending_bytes <= 4096
        assert not eviction.done()
        gate.set()
        await asyncio.wait_for(eviction, WAIT)
        await until(lambda: bool(b.disconnected) and 499 in numbers(listener))
    assert b.disconnected == [(CLIENT, there)]
    got = numbers(listener)
    assert got[0] == -1 and got == sorted(got) and len(got) < 100


async def test_a_backlog_goes_out_as_publishes_under_the_limit_in_order(start) -> None:
    a, b = await start(), await start()
    _, there = b.join(AGENT, "agents:w")
    gate, sent = hold_publishes(a.manager)
    await a.manager.emit("n", {"i": 0}, namespace=AGENT, room="agents:w")
    await asyncio.sleep(0)  # the flusher hangs on its first batch; the rest piles up
    for i in range(1, 401):  # about 2.4 MB; half of it two bytes a character
        pad = "x" * 4000 if i % 2 else "é" * 2000
        await a.manager.emit("n", {"i": i, "pad": pad}, namespace=AGENT, room="agents:w")
    await a.manager.emit(
        "n", {"i": 401, "pad": "y" * (MAX_PUBLISH_BYTES + 1000)}, namespace=AGENT, room="agents:w"
    )
    for i in range(402, 420):
        await a.manager.emit("n", {"i": i}, namespace=AGENT, room="agents:w")
    gate.set()
    await until(lambda: len(numbers(there)) == 420)
    assert numbers(there) == list(range(420))

    batches = [[JsonPacket(encoded_packet=item[3]).data[1]["i"] for item in
                jsontext.loads(payload)["items"]] for payload in sent]
    assert [i for batch in batches for i in batch] == list(range(420)), "each once, in order"
    oversize = [(p, batch) for p, batch in zip(sent, batches, strict=True)
                if len(p) > MAX_PUBLISH_BYTES]
    assert [batch for _, batch in oversize] == [[401]], "only the oversize emit, alone"
    assert len(sent) >= 6


async def test_emits_after_close_reach_this_process_only(start) -> None:
    a = await start(EvictingRedisManager)
    _, here = a.join(AGENT, "agents:w")
    await a.manager.close()
    tasks = asyncio.all_tasks()
    await a.manager.emit("n", {"i": 1}, namespace=AGENT, room="agents:w")
    await a.manager.emit("n", {"i": 2}, namespace=AGENT, room=["agents:w", "other"])
    assert numbers(here) == [1, 2]
    assert a.manager._publisher is None and a.manager._flusher is None
    assert asyncio.all_tasks() == tasks
    with pytest.raises(PublishFailed):
        await a.manager.evict("contact:c", CLIENT)


async def test_data_that_is_not_json_fails_for_its_sender_and_spoils_no_batch(
    start, caplog
) -> None:
    a, b = await start(), await start()
    _, there = b.join(AGENT, "agents:w")
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        await a.manager.emit("n", {"i": 1}, namespace=AGENT, room="agents:w")
        with pytest.raises(TypeError):  # python-socketio's way, queued in the same batch
            await a.manager.emit("n", {"i": object()}, namespace=AGENT, room=["r1", "r2"])
        await a.manager.emit("n", {"i": 2}, namespace=AGENT, room="agents:w")
        await until(lambda: len(numbers(there)) == 2)
    assert numbers(there) == [1, 2]
    assert "cannot publish" not in caplog.text


async def test_redis_messages_that_are_not_json_objects_are_logged(
    start, channel, caplog
) -> None:
    a, b = await start(), await start()
    _, there = b.join(AGENT, "agents:w")
    probe = redis.Redis.from_url(need_redis())
    with caplog.at_level(logging.WARNING, logger="chat.realtime.redis_fanout"):
        for junk in (b"not json", b"[1, 2]", b"{broken"):
            probe.publish(channel, junk)
        probe.close()
        await a.manager.emit("n", {"i": 1}, namespace=AGENT, room="agents:w")
        await until(lambda: bool(there.frames))
        await until(lambda: caplog.text.count("were not JSON objects") == 2)  # a and b
        await asyncio.sleep(0.1)
    assert caplog.text.count("were not JSON objects") == 2, "once a minute, counted between"
    assert numbers(there) == [1]
