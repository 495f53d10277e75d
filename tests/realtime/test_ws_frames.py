"""chat/realtime/ws_frames.py: frames written by hand to uvicorn's transport reach a
standard websocket client intact, and Parley's sockets use that path under uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
import websockets

from chat.realtime.engine import LeanSocket
from chat.realtime.ws_frames import DirectWrites, frame
from tests.conftest import LiveServer, free_port

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 200_000]


async def _serve(app: Any, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    return server, task, port


def test_frame_headers_follow_rfc_6455() -> None:
    assert frame("") == b"\x81\x00"
    assert frame("é") == b"\x81\x02" + "é".encode()
    assert frame(b"\x00\x01") == b"\x82\x02\x00\x01"
    assert frame("x" * 125)[:2] == b"\x81\x7d"
    assert frame("x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert frame("x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    assert frame("x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    assert len(frame("x" * 65536)) == 10 + 65536


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "deflate"])
async def test_frames_written_in_one_go_arrive_as_separate_messages(compress: bool) -> None:
    """Text and binary, every header size, in one write; with compression negotiated
    the hand-made frames are not used (the ASGI path is)."""
    messages: list[str | bytes] = []
    for n in SIZES:
        messages += ["é" * (n // 2) + "x" * (n % 2), bytes(range(256)) * (n // 256) + b"\x00" * (n % 256)]
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        direct = DirectWrites.of(send)
        seen["direct"] = direct
        if direct is None:
            for m in messages:
                key = "bytes" if isinstance(m, bytes) else "text"
                await send({"type": "websocket.send", key: m})
        else:
            assert direct.ready()
            assert direct.write_now(messages)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    server, task, port = await _serve(app, ws_per_message_deflate=compress)
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/", compression="deflate" if compress else None, max_size=None
        ) as ws:
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in messages]
        assert got == messages
        assert (seen["direct"] is None) is compress
    finally:
        server.should_exit = True
        await task


async def test_a_closing_connection_takes_no_more_frames() -> None:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        direct = DirectWrites.of(send)
        assert direct is not None
        assert (await receive())["type"] == "websocket.disconnect"
        done.set_result(direct.write_now(["too late"]))

    server, task, port = await _serve(app, ws_per_message_deflate=False)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/"):
            pass
        assert await asyncio.wait_for(done, 10) is False
    finally:
        server.should_exit = True
        await task


async def test_parleys_sockets_write_directly_under_uvicorn(
    live_server: LiveServer, customer: Any
) -> None:
    """If a uvicorn upgrade changes the protocol object, this fails (the server would
    still work, through ASGI send, but slower)."""
    ada = await customer("ada")
    conv = (await ada.send("hello"))["conversation_id"]
    sockets = [
        s for s in live_server.app.state.realtime.sio.eio.sockets.values()
        if isinstance(s, LeanSocket) and s.ws is not None
    ]
    assert sockets
    assert all(DirectWrites.of(s.ws.asgi_send) is not None for s in sockets)
    assert (await ada.send("again", conversation_id=conv))["seq"] == 2
