"""The lean websocket path (chat/realtime/engine.py), spoken to in raw Engine.IO v4 /
Socket.IO v5 frames: order, pings, silent clients, and the polling → websocket upgrade."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import engineio
import httpx
import pytest
import uvicorn
import websockets

from chat.realtime import engine
from chat.realtime.engine import LeanEngineServer, LeanSocket
from chat.realtime.websocket import LeanWebSocketProtocol
from parley_client import user_hmac
from tests.conftest import LiveServer, clear_database, free_port
from tests.realtime.conftest import TIMEOUT, has_text, post_reply, text_of
from tests.realtime.raw import CLIENT as NS
from tests.realtime.raw import RawClient, auth_for


@pytest.fixture
def db_url(sqlite_url: str) -> Iterator[str]:
    """The socket path under test is the same whatever the database: SQLite only."""
    yield sqlite_url
    clear_database(sqlite_url)


def text(body: str, conversation_id: str | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "content": {"type": "text", "text": body},
        "client_message_id": uuid.uuid4().hex,
        **extra,
    }
    if conversation_id:
        payload["conversation_id"] = conversation_id
    return payload


async def test_a_burst_from_one_socket_is_stored_and_acked_in_the_order_sent(
    live_server: LiveServer,
) -> None:
    client = await RawClient.open(live_server)
    try:
        await client.handshake(live_server)
        first = await client.call("message", text("hello"))
        assert first["ok"], first
        conv = first["conversation"]["id"]
        ids = [await client.emit("message", text(f"burst {i}", conv)) for i in range(30)]
        await client.until(lambda: all(i in client.acks for i in ids))
        acks = [client.acks[i] for i in ids]
        assert all(a["ok"] for a in acks), acks
        assert [a["message"]["seq"] for a in acks] == list(range(2, 32))
        assert [a["message"]["content"]["text"] for a in acks] == [f"burst {i}" for i in range(30)]
    finally:
        await client.ws.close()


async def test_a_client_that_stops_answering_pings_is_closed(custom_server: Any) -> None:
    live = await custom_server(socket_ping_interval_seconds=0.5, socket_ping_timeout_seconds=0.5)
    client = await RawClient.open(live)
    await client.handshake(live)
    client.answer_pings = False
    closed = False
    try:
        async with asyncio.timeout(10):
            while True:
                client.take(await client.ws.recv())
    except websockets.ConnectionClosed:
        closed = True
    assert closed


async def test_a_client_that_answers_pings_stays_connected(custom_server: Any) -> None:
    live = await custom_server(socket_ping_interval_seconds=0.3, socket_ping_timeout_seconds=0.5)
    client = await RawClient.open(live)
    try:
        await client.handshake(live)
        pings = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0
        while loop.time() < end:
            try:
                data = await asyncio.wait_for(client.ws.recv(), end - loop.time())
            except TimeoutError:
                break
            pings += data == "2"
            client.take(data)
        assert pings >= 3
        ack = await client.call("message", text("still here"))
        assert ack["ok"], ack
    finally:
        await client.ws.close()


async def test_packets_queued_while_polling_arrive_after_the_upgrade(
    live_server: LiveServer,
) -> None:
    base = f"http://127.0.0.1:{live_server.port}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        opened = (await http.get(base)).text
        sid = json.loads(opened[1:])["sid"]
        polled = f"{base}&sid={sid}"
        posted = await http.post(polled, content=f"40{NS},{json.dumps(auth_for(live_server))}")
        assert posted.status_code == 200
        # The namespace's connect answer and the session greeting now wait in the
        # polling queue; no GET takes them before the upgrade.
        client = await RawClient.open(live_server, upgrade_sid=sid)
        try:
            await client.ws.send("2probe")
            assert await client.frame() == "3probe"
            await client.ws.send("5")
            frames: list[str] = []
            while not (
                any(f.startswith(f"42{NS},") and '"session"' in f for f in frames)
                and any(f.startswith(f"40{NS},") for f in frames)
            ):
                frames.append(await client.frame())
            for f in frames:
                client.take(f)
            ack = await client.call("message", text("after the upgrade"))
            assert ack["ok"] and ack["message"]["seq"] == 1, ack
        finally:
            await client.ws.close()


async def stalled_device(live: LiveServer, external_id: str) -> tuple[Any, str]:
    """A device of ``external_id`` on a raw websocket with a tiny receive buffer, which
    stops reading once connected, so the server's writes to it soon have to wait; and
    its Engine.IO sid."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", live.port))
    sock.setblocking(False)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{live.port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
    )
    opened = await RawClient(ws).frame()
    assert opened.startswith("0{")
    auth = {
        "widget_key": live.workspace["widget_key"],
        "user": {
            "external_id": external_id,
            "hmac": user_hmac(live.workspace["identity_secret"], external_id),
        },
    }
    await ws.send(f"40{NS},{json.dumps(auth)}")
    return ws, json.loads(opened[1:])["sid"]


async def test_a_device_that_stops_reading_holds_up_no_one(
    custom_server: Any, customer: Any
) -> None:
    # A cap above what this test queues: here the stalled device must stay connected.
    live_server = await custom_server(socket_max_queued_bytes=64 * 1024 * 1024)
    laptop = await customer("ada", server=live_server)
    conv = (await laptop.send("hello"))["conversation_id"]
    ws, _ = await stalled_device(live_server, "ada")
    try:
        # About 7 MB of replies: more than the kernel buffers between server and phone.
        # Were a post to wait for the phone, it would wait forever (the phone never
        # reads), so every post being answered is the proof; the bound is for failure only.
        filler = "x" * 9_500
        replies = 750
        posted: list[int] = []
        async with asyncio.timeout(120):
            for batch in range(0, replies, 10):
                answers = await asyncio.gather(
                    *(post_reply(live_server, conv, f"{i} {filler}") for i in range(batch, batch + 10))
                )
                posted += [a["seq"] for a in answers]
            last = await laptop.wait_for(
                "message", lambda e: e["message"]["seq"] == replies + 1, timeout=TIMEOUT
            )
        assert sorted(posted) == list(range(2, replies + 2))
        # The laptop got every reply, once each and in seq order, while the phone was stuck.
        got = [*laptop.events.take("message"), last]
        assert [e["message"]["seq"] for e in got] == list(range(2, replies + 2))
        assert sorted(int(text_of(e).split()[0]) for e in got) == list(range(replies))
        assert {e["conversation_id"] for e in got} == {conv}

        sockets = live_server.app.state.realtime.sio.eio.sockets.values()
        backlog = max(len(s._out) for s in sockets if isinstance(s, LeanSocket))
        assert backlog > 0, "the phone's writes never had to wait: the test proved nothing"
    finally:
        await ws.close()


async def test_a_device_that_stops_reading_is_dropped_past_the_queue_cap(
    custom_server: Any, customer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cap = 256 * 1024
    live = await custom_server(socket_max_queued_bytes=cap)
    laptop = await customer("ada", server=live)
    conv = (await laptop.send("hello"))["conversation_id"]
    ws, sid = await stalled_device(live, "ada")
    sockets = live.app.state.realtime.sio.eio.sockets
    try:
        filler = "x" * 9_500
        # Up to 20 MB of replies, far past the kernel buffers and the cap; the stalled
        # device must be gone long before, and its backlog never exceeds the cap.
        sent = 0
        while sid in sockets and sent < 2_000:
            stalled = sockets[sid]
            assert isinstance(stalled, LeanSocket)
            assert stalled._queued <= cap
            await asyncio.gather(
                *(post_reply(live, conv, f"{sent + i} {filler}") for i in range(10))
            )
            sent += 10
        assert sid not in sockets, "the device that stopped reading was never dropped"
        assert any("does not read" in r.getMessage() for r in caplog.records)
        # The laptop, which reads, got everything and is still connected.
        last = await laptop.wait_for("message", has_text(f"{sent - 1} {filler}"), timeout=TIMEOUT)
        assert last["conversation_id"] == conv
        assert (await laptop.send("still here", conversation_id=conv))["seq"] == sent + 2
    finally:
        await ws.close()


async def test_a_long_polling_client_that_stops_polling_is_dropped_past_the_queue_cap(
    custom_server: Any, customer: Any
) -> None:
    cap = 64 * 1024
    live = await custom_server(socket_max_queued_bytes=cap)
    laptop = await customer("ada", server=live)
    conv = (await laptop.send("hello"))["conversation_id"]
    base = f"http://127.0.0.1:{live.port}/socket.io/?EIO=4&transport=polling"
    auth = {**auth_for(live), "user": laptop.user}
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        sid = json.loads((await http.get(base)).text[1:])["sid"]
        posted = await http.post(f"{base}&sid={sid}", content=f"40{NS},{json.dumps(auth)}")
        assert posted.status_code == 200
    # It never polls again: what the server has for it waits in its polling queue.
    stalled = live.app.state.realtime.sio.eio.sockets[sid]
    assert isinstance(stalled, LeanSocket)
    filler = "x" * 9_500
    sent = 0
    while not stalled.closed and sent < 200:
        assert stalled._queued <= cap
        await post_reply(live, conv, f"{sent} {filler}")
        sent += 1
    assert stalled.closed, "the client that stopped polling was never dropped"
    assert stalled.queue.empty(), "its backlog is freed"
    assert sent * len(filler) < 4 * cap, "dropped long after the cap"
    await laptop.wait_for("message", has_text(f"{sent - 1} {filler}"), timeout=TIMEOUT)


def bytes_waiting(stalled: LeanSocket) -> int:
    """What the server holds for ``stalled``: its frames not yet written, and what its
    transport holds of those written (above the kernel's buffers)."""
    assert stalled._direct is not None
    transport = stalled._direct.protocol.transport
    return sum(len(f) for f in stalled._out if isinstance(f, str)) + int(
        transport.get_write_buffer_size()
    )


async def stalled_socket(sio: Any, eio_sid: str) -> tuple[str, LeanSocket]:
    """The Socket.IO sid of a stalled device once it has joined, and its server socket
    (writing straight to uvicorn's transport)."""
    async with asyncio.timeout(TIMEOUT):
        while (sid := sio.manager.sid_from_eio_sid(eio_sid, NS)) is None:
            await asyncio.sleep(0.01)
    stalled = sio.eio.sockets[eio_sid]
    assert isinstance(stalled, LeanSocket) and stalled._direct is not None
    return sid, stalled


@pytest.mark.parametrize("reads_a_little", [False, True], ids=["never-reads", "reads-once"])
async def test_a_device_dropped_past_the_cap_is_disconnected_and_freed_at_once(
    custom_server: Any, reads_a_little: bool
) -> None:
    cap = 128 * 1024
    live = await custom_server(socket_max_queued_bytes=cap)
    sio = live.app.state.realtime.sio
    sockets = sio.eio.sockets
    ws, eio_sid = await stalled_device(live, "ada")
    try:
        sid, stalled = await stalled_socket(sio, eio_sid)
        assert stalled._direct is not None
        connection = stalled._direct.protocol  # uvicorn's, under the ASGI websocket
        filler = "x" * 9_500
        peak = 0

        async def send_until(done: Any) -> None:
            """Frames for the device, one per loop turn (each its own write)."""
            nonlocal peak
            async with asyncio.timeout(60):
                while not done():
                    await sio.emit("filler", filler, to=sid, namespace=NS)
                    await asyncio.sleep(0)
                    peak = max(peak, bytes_waiting(stalled))

        if reads_a_little:
            # Until frames wait in the socket's list (the transport's buffer is full);
            # then the device reads until they are all handed to the transport.
            await send_until(lambda: len(stalled._out) >= 3)
            async with asyncio.timeout(TIMEOUT):
                while stalled._out:
                    await ws.recv()
            assert eio_sid in sockets, "dropped while it was reading"
        # Far past the kernel buffers and the cap, as fast as the server writes.
        await send_until(lambda: eio_sid not in sockets)
        # Never much more than the cap, what the transport holds included (it holds at
        # least its high-water mark, 64 KB, before frames wait in the socket's list).
        assert peak > cap // 2, "the device never had to wait: the test proved nothing"
        assert peak <= cap + 1024, f"{peak} bytes held for a client with a cap of {cap}"
        # The connection is ended, not left waiting for a client that never reads.
        async with asyncio.timeout(TIMEOUT):
            while not connection.disconnected or stalled._writing is not None:
                await asyncio.sleep(0.01)
        assert connection not in connection.connections
        assert connection.transport.get_write_buffer_size() == 0
        assert stalled.closed and not stalled._out and stalled._queued == 0
        # The server cleaned up as after any lost connection: out of every room and
        # of its namespace.
        assert not any(sid in members for rooms in sio.manager.rooms.values() for members in rooms.values())
        assert sid not in sio.namespace_handlers[NS].peers
    finally:
        ws.transport.abort()


async def test_a_close_for_a_device_that_does_not_read_is_cut_off_in_bounded_time(
    custom_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server disconnects a device whose transport is full (under its cap): the
    close frame cannot be written, so after ``CLOSE_SECONDS`` the connection is aborted
    instead of waiting for a client that never reads."""
    monkeypatch.setattr(engine, "CLOSE_SECONDS", 0.5)
    live = await custom_server()
    sio = live.app.state.realtime.sio
    ws, eio_sid = await stalled_device(live, "ada")
    try:
        sid, stalled = await stalled_socket(sio, eio_sid)
        assert stalled._direct is not None
        connection = stalled._direct.protocol
        async with asyncio.timeout(30):
            while len(stalled._out) < 3:  # the transport is full: frames wait here
                await sio.emit("filler", "x" * 9_500, to=sid, namespace=NS)
                await asyncio.sleep(0)
        assert not connection.disconnected
        await sio.eio.disconnect(eio_sid)  # as its ping timeout does
        async with asyncio.timeout(TIMEOUT):
            while not connection.disconnected or stalled._writing is not None:
                await asyncio.sleep(0.01)
        assert stalled.closed and not stalled._out
        assert sid not in sio.namespace_handlers[NS].peers
    finally:
        ws.transport.abort()


async def test_frames_for_a_client_gone_abruptly_are_dropped_without_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The disconnect handlers' last words to the leaving socket (a presence broadcast
    reaches it too) are queued after its reader ended: nobody may try to write them."""
    eio = LeanEngineServer(async_mode="asgi", monitor_clients=False)
    opened: list[str] = []
    queued_at_disconnect: list[int] = []

    @eio.on("connect")
    async def on_connect(sid: str, environ: dict[str, Any]) -> None:
        opened.append(sid)

    @eio.on("disconnect")
    async def on_disconnect(sid: str, reason: Any) -> None:
        await eio.send(sid, "presence: gone")
        queued_at_disconnect.append(len(eio.sockets[sid]._out))

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        engineio.ASGIApp(eio), host="127.0.0.1", port=port, log_level="warning",
        lifespan="off", ws=LeanWebSocketProtocol, ws_per_message_deflate=False,
    ))
    serving = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        async with asyncio.timeout(TIMEOUT):
            while not server.started:
                await asyncio.sleep(0.01)
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket")
            assert (await ws.recv()).startswith("0{")
            sock = eio.sockets[opened[0]]
            assert isinstance(sock, LeanSocket) and sock._direct is not None
            ws.transport.abort()  # gone without a close frame
            while not (queued_at_disconnect and not sock._out and sock._writing is None
                       and not server.server_state.tasks):
                await asyncio.sleep(0.01)
        assert queued_at_disconnect[0] >= 1, "nothing was queued for it: the test proved nothing"
        gc.collect()  # an unretrieved task exception is reported when the task is freed
        await asyncio.sleep(0)
        assert not unhandled, unhandled
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not [t for t in asyncio.all_tasks() if "_writer" in t.get_coro().__qualname__]
        assert not server.server_state.connections
    finally:
        loop.set_exception_handler(None)
        server.should_exit = True
        await serving
