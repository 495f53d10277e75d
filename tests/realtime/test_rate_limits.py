"""Per-socket limits: a flood or an oversize event gets an error ack; the connection stays."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import test_settings as settings_for
from tests.realtime.conftest import TIMEOUT


@pytest.fixture
def settings(db_url):
    return settings_for(
        db_url, socket_rate_per_second=2.0, socket_rate_burst=6, socket_max_payload_bytes=4096
    )


def error_code(ack) -> str | None:
    return ack["error"]["code"] if isinstance(ack, dict) and ack.get("ok") is False else None


async def until_ok(client, event, data):
    """Retries until the bucket has refilled (bounded)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        ack = await client.request(event, data)
        if ack.get("ok") or asyncio.get_running_loop().time() > deadline:
            return ack
        await asyncio.sleep(0.1)


async def test_a_flood_is_rate_limited_and_the_connection_kept(customer):
    visitor = await customer("ada", auto_delivered=False)
    conversation_id = (await visitor.send("hello"))["conversation_id"]  # 1 of the burst
    probe = {"conversation_id": conversation_id, "after_seq": 0}
    acks = [await visitor.request("resync", probe) for _ in range(10)]
    codes = [error_code(a) for a in acks]
    assert codes[:5] == [None] * 5
    assert "rate_limited" in codes[5:]
    assert visitor.connected
    assert (await until_ok(visitor, "resync", probe))["ok"] is True


async def test_an_oversize_event_is_refused_and_the_connection_kept(customer):
    visitor = await customer("ada")
    ack = await visitor.request(
        "message", {"client_message_id": "big", "content": {"type": "text", "text": "x" * 5000}}
    )
    assert error_code(ack) == "payload_too_large"
    assert (await visitor.send("small"))["seq"] == 1
