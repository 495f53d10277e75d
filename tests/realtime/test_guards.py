"""Malformed events answer with error acks (or are ignored without one): never a crash,
never a dropped connection. Packets that do not even parse cost rate-limit tokens, are
logged a few times per connection, and a connection that keeps sending them is closed."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import socketio
import websockets

from chat.realtime.sio import MALFORMED_LOGGED
from parley_client import AgentClient, ConnectRefused, user_hmac, user_token
from tests.realtime.conftest import TIMEOUT, fast
from tests.realtime.raw import RawClient


def text(body: str) -> dict:
    return {"content": {"type": "text", "text": body}, "client_message_id": uuid.uuid4().hex}


def error_code(ack) -> str | None:
    return ack["error"]["code"] if isinstance(ack, dict) and ack.get("ok") is False else None


MALFORMED = [
    ("message", None),
    ("message", "just a string"),
    ("message", [1, 2, 3]),
    ("message", 42),
    ("message", {"content": {"type": "text", "text": "no client_message_id"}}),
    ("message", {"client_message_id": 7, "content": {"type": "text", "text": "hi"}}),
    ("message", {"client_message_id": "x", "content": {"type": "text"}}),
    ("message", {"client_message_id": "x", "content": {"type": "hologram"}}),
    ("message", {"client_message_id": "x", "content": "hi"}),
    (
        "message",
        {
            "conversation_id": 12,
            "client_message_id": "x",
            "content": {"type": "text", "text": "hi"},
        },
    ),
    ("read", {"conversation_id": "cnv_x", "seq": "5"}),
    ("read", {"conversation_id": "cnv_x", "seq": -1}),
    ("typing", {"conversation_id": "cnv_x", "typing": "yes"}),
    ("resync", {}),
    ("register_push", {"channel_type": "sms", "token": "t"}),
]


async def test_malformed_events_get_error_acks(customer):
    visitor = await customer("ada", auto_delivered=False)
    for event, data in MALFORMED:
        ack = await visitor.request(event, data)
        assert error_code(ack) == "invalid_payload", (event, data, ack)
    assert visitor.connected
    assert (await visitor.send("fine"))["seq"] == 1


async def test_unknown_reserved_and_multi_argument_events_get_error_acks(customer):
    visitor = await customer("ada", auto_delivered=False)
    assert error_code(await visitor.request("frobnicate", {})) == "unknown_event"
    assert error_code(await visitor.request("connect", {"widget_key": "x"})) == "unknown_event"
    assert error_code(await visitor.request("disconnect", {})) == "unknown_event"
    assert (
        error_code(await visitor.request("read", ({"conversation_id": "c", "seq": 1}, "extra")))
        == "invalid_payload"
    )
    assert visitor.connected


async def test_malformed_events_without_an_ack_are_ignored(customer):
    visitor = await customer("ada", auto_delivered=False)
    for event, data in MALFORMED[:4]:
        await visitor.emit(event, data)
    assert (await visitor.send("fine"))["seq"] == 1


async def test_malformed_agent_events_get_error_acks(agent, customer):
    inbox = await agent()
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    cases = [
        ("assign", {"conversation_id": conversation_id, "assignee": {"type": "human", "id": "x"}}),
        ("assign", {"conversation_id": conversation_id}),
        ("status", {"conversation_id": conversation_id, "status": "closed"}),
        (
            "message",
            {
                "conversation_id": conversation_id,
                "client_message_id": "a",
                "content": {"type": "text", "text": "x"},
                "private": "yes",
            },
        ),
    ]
    for event, data in cases:
        assert error_code(await inbox.request(event, data)) == "invalid_payload", (event, data)
    assert (await inbox.send(conversation_id, "still fine"))["seq"] == 2


# Socket.IO packets that do not parse: what python-socketio cannot decode at all.
UNREADABLE = [
    "42/client,not json",
    "42/client,",
    '42/client,{"an": "object"}',
    "42/client,[]",
    "43/client,[",
    "49/client,[]",
    "4x",
]


async def test_unreadable_packets_cost_rate_limit_tokens(custom_server):
    live = await custom_server(socket_rate_per_second=0.001, socket_rate_burst=5)
    raw = await RawClient.open(live)
    try:
        await raw.handshake(live)
        for frame in UNREADABLE[:4]:
            await raw.ws.send(frame)
        ack = await raw.call("typing", {"conversation_id": "cnv_x", "typing": True})
        assert error_code(ack) == "not_found", ack  # the fifth token: a real answer
        ack = await raw.call("typing", {"conversation_id": "cnv_x", "typing": True})
        assert error_code(ack) == "rate_limited", ack
    finally:
        await raw.ws.close()


async def test_a_flood_of_unreadable_packets_is_logged_a_few_times_and_closed(
    live_server, caplog
):
    caplog.set_level(logging.INFO)
    raw = await RawClient.open(live_server)
    await raw.handshake(live_server)
    caplog.clear()
    sent = 0
    with pytest.raises(websockets.ConnectionClosed):
        for sent in range(10_000):
            await raw.ws.send(UNREADABLE[sent % len(UNREADABLE)])
        async with asyncio.timeout(TIMEOUT):
            while True:  # the server closes it: until then, read what comes
                raw.take(await raw.ws.recv())
    assert sent < 10_000 or raw.ws.close_code is not None
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info], "no tracebacks for a client's bad packets"
    assert len(records) <= MALFORMED_LOGGED + 1, [r.getMessage() for r in records]
    assert any("closed after" in r.getMessage() for r in records)
    # Other connections are unaffected.
    other = await RawClient.open(live_server)
    try:
        await other.handshake(live_server)
        assert (await other.call("message", text("fine")))["ok"] is True
    finally:
        await other.ws.close()


# -- the NUL character (U+0000): refused in every payload and credential, on both databases

NUL = "\u0000"


async def test_nul_in_client_credentials_is_refused(customer, live_server):
    secret = live_server.workspace["identity_secret"]
    cases = [
        ({"widget_key": f"wk{NUL}"}, "invalid_auth"),
        ({"session": f"s{NUL}"}, "invalid_auth"),
        ({"user": {"external_id": f"a{NUL}", "hmac": user_hmac(secret, f"a{NUL}")}}, "invalid_auth"),
        ({"user_token": user_token(secret, f"a{NUL}")}, "invalid_user_token"),
        ({"user_token": user_token(secret, "ada", name=f"A{NUL}")}, "invalid_user_token"),
    ]
    for options, code in cases:
        with pytest.raises(ConnectRefused) as info:
            await customer(**options)
        assert info.value.code == code, (options, info.value)


async def test_nul_in_client_events_is_refused(customer):
    visitor = await customer("ada", auto_delivered=False)
    conv = (await visitor.send("hello"))["conversation_id"]
    events = [
        ("message", {"client_message_id": f"c{NUL}", "content": {"type": "text", "text": "hi"}}),
        ("message", {"client_message_id": "c1", "content": {"type": "text", "text": f"h{NUL}i"}}),
        (
            "message",
            {"conversation_id": f"{conv}{NUL}", "client_message_id": "c2",
             "content": {"type": "text", "text": "hi"}},
        ),
        ("typing", {"conversation_id": f"cnv_{NUL}", "typing": True}),
        ("read", {"conversation_id": f"{conv}{NUL}", "seq": 1}),
        ("delivered", {"conversation_id": f"{NUL}", "seq": 1}),
        ("resync", {"conversation_id": f"{conv}{NUL}", "after_seq": 0}),
        ("register_push", {"channel_type": "fcm", "token": f"t{NUL}"}),
    ]
    for event, data in events:
        ack = await visitor.request(event, data)
        assert error_code(ack) == "invalid_payload", (event, data, ack)
        assert "U+0000" in ack["error"]["message"]
    assert (await visitor.send("still fine", conversation_id=conv))["seq"] == 2


async def test_nul_in_agent_credentials_and_events_is_refused(live_server, clients, agent, customer):
    client = AgentClient(live_server.url, f"token{NUL}", **fast())
    clients.append(client)
    with pytest.raises(ConnectRefused) as info:
        await client.connect()
    assert info.value.code == "invalid_auth"

    inbox = await agent()
    conv = (await (await customer("ada")).send("help"))["conversation_id"]
    events = [
        ("message", {"conversation_id": conv, "client_message_id": f"a{NUL}",
                     "content": {"type": "text", "text": "hi"}}),
        ("assign", {"conversation_id": conv, "assignee": {"type": "agent", "id": f"ag_{NUL}"}}),
        ("status", {"conversation_id": f"{conv}{NUL}", "status": "resolved"}),
        ("typing", {"conversation_id": f"{conv}{NUL}", "typing": True}),
        ("resync", {"conversation_id": f"{conv}{NUL}", "after_seq": 0}),
    ]
    for event, data in events:
        ack = await inbox.request(event, data)
        assert error_code(ack) == "invalid_payload", (event, data, ack)


async def test_nul_in_rasa_sessions_and_messages_is_refused(live_server):
    url = f"{live_server.url}?widget_key={live_server.workspace['widget_key']}"
    widget = socketio.AsyncClient(reconnection=False)
    try:
        await widget.connect(url, namespaces=["/rasa"], wait_timeout=TIMEOUT)
        for event, data in [
            ("session_request", {"session_id": f"s{NUL}"}),
            ("user_uttered", {"message": f"h{NUL}i"}),
            ("user_uttered", {"message": "hi", "session_id": f"s{NUL}"}),
        ]:
            ack = await widget.call(event, data, namespace="/rasa", timeout=TIMEOUT)
            assert error_code(ack) == "invalid_payload", (event, data, ack)
    finally:
        await widget.disconnect()

    refused = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(
            f"{live_server.url}?widget_key=wk%00", namespaces=["/rasa"], wait_timeout=TIMEOUT
        )
