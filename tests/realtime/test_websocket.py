"""chat/realtime/websocket.py: uvicorn's websocket protocol with less kept per connection."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterator

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from chat.realtime.websocket import LeanWebSocketProtocol, Mailbox, Writable, renew_parser
from tests.conftest import LiveServer, clear_database
from tests.realtime.raw import RawClient


@pytest.fixture
def db_url(sqlite_url: str) -> Iterator[str]:
    yield sqlite_url
    clear_database(sqlite_url)


# -- the mailbox and the flag that replace asyncio.Queue and asyncio.Event ----------------


async def test_the_mailbox_hands_out_events_in_order_and_wakes_its_reader() -> None:
    box = Mailbox()
    box.put_nowait(1)
    box.put_nowait(2)
    assert not box.empty()
    assert [await box.get(), await box.get()] == [1, 2]
    assert box.empty()
    waiting = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    box.put_nowait(3)
    assert await asyncio.wait_for(waiting, 1) == 3


async def test_a_cancelled_read_leaves_the_mailbox_usable() -> None:
    box = Mailbox()
    waiting = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    box.put_nowait("after")
    assert await asyncio.wait_for(box.get(), 1) == "after"


async def test_a_second_reader_at_once_is_an_error_not_a_hang() -> None:
    box = Mailbox()
    first = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await box.get()
    box.put_nowait("x")
    assert await first == "x"


async def test_writers_wait_while_the_transport_is_paused_and_all_go_on_resume() -> None:
    flag = Writable()
    assert flag.is_set() and await flag.wait()
    flag.clear()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    cancelled = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    cancelled.cancel()
    await asyncio.sleep(0)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]


# -- the parser renewed after the handshake ---------------------------------------------

HANDSHAKE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nCookie: big=" + b"c" * 200 + b"\r\n\r\n"
)


def masked_text(data: bytes, fin: bool = True) -> bytes:
    mask = b"\x01\x02\x03\x04"
    head = bytes([0x81 if fin else 0x01, 0x80 | len(data)]) + mask
    return head + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def accepted() -> tuple[ServerProtocol, Request]:
    conn = ServerProtocol()
    conn.receive_data(HANDSHAKE)
    [request] = conn.events_received()
    assert isinstance(request, Request)
    conn.send_response(conn.accept(request))
    conn.data_to_send()
    return conn, request


def test_the_renewed_parser_reads_frames_and_no_longer_holds_the_request() -> None:
    conn, request = accepted()
    assert renew_parser(conn)
    held, gen = [], conn.parser
    while gen is not None:  # the parser and the generators it waits in
        held += gen.gi_frame.f_locals.values()
        gen = gen.gi_yieldfrom
    assert held and not any(v is request for v in held)
    conn.receive_data(masked_text(b"40/client,{}"))
    conn.receive_data(masked_text(b"part", fin=False)[:3])  # a frame cut in two reads
    conn.receive_data(masked_text(b"part", fin=False)[3:])
    events = conn.events_received()
    assert [(e.opcode, e.data, e.fin) for e in events if isinstance(e, Frame)] == [
        (Opcode.TEXT, b"40/client,{}", True),
        (Opcode.TEXT, b"part", False),
    ]


def test_a_parser_in_the_middle_of_a_frame_is_left_alone() -> None:
    conn, _ = accepted()
    conn.receive_data(masked_text(b"hello")[:4])  # half a frame: the parser is inside it
    before = conn.parser
    assert not renew_parser(conn)
    assert conn.parser is before
    conn.receive_data(masked_text(b"hello")[4:])
    [frame] = conn.events_received()
    assert isinstance(frame, Frame) and frame.data == b"hello"


# -- what the protocol relies on in uvicorn's ---------------------------------------------


def test_every_attribute_uvicorns_protocol_sets_has_a_slot() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol)
    assigned = set(re.findall(r"self\.([a-z_]+)(?:: [^=\n]+)? = ", source))
    assert assigned <= set(LeanWebSocketProtocol.__slots__), assigned - set(
        LeanWebSocketProtocol.__slots__
    )


def test_uvicorn_reads_the_handshake_request_and_response_only_while_handshaking() -> None:
    for name, method in inspect.getmembers(WebSocketsSansIOProtocol, inspect.isfunction):
        uses = re.findall(r"self\.(request|response)\b", inspect.getsource(method))
        if uses:
            assert name in ("handle_connect", "send"), name
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    # In send, only the accept branch (before handshake_complete is set) reads it.
    accept = send[send.index('if message["type"] == "websocket.accept"') : send.index(
        'elif message["type"] == "websocket.close"'
    )]
    assert send.count("self.response") == accept.count("self.response")


# -- a live connection -------------------------------------------------------------------


async def test_acks_go_out_over_the_lean_protocol(live_server: LiveServer) -> None:
    client = await RawClient.open(live_server)
    try:
        await client.handshake(live_server)
        for i in range(3):
            ack = await client.call(
                "message", {"content": {"type": "text", "text": f"hi {i}"},
                            "client_message_id": f"m-{i}"},
            )
            assert ack["ok"] and ack["message"]["content"]["text"] == f"hi {i}", ack
    finally:
        await client.ws.close()
