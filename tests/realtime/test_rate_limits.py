"""Per-socket limits: a flood or an oversize event gets an error ack; the connection stays."""

from __future__ import annotations

import pytest

from tests.conftest import test_settings as settings_for
from tests.realtime.conftest import TIMEOUT, post_reply, text_of


@pytest.fixture
def settings(db_url):
    # No refill during the test: exactly the burst passes, whatever the machine's speed
    # (the refill arithmetic is tested with a controlled clock in test_limits.py).
    return settings_for(
        db_url, socket_rate_per_second=0.0, socket_rate_burst=6, socket_max_payload_bytes=4096
    )


def error_code(ack) -> str | None:
    return ack["error"]["code"] if isinstance(ack, dict) and ack.get("ok") is False else None


async def test_a_flood_is_rate_limited_and_the_connection_kept(customer, live_server):
    visitor = await customer("ada", auto_delivered=False)
    conversation_id = (await visitor.send("hello"))["conversation_id"]  # 1 of the burst
    probe = {"conversation_id": conversation_id, "after_seq": 0}
    acks = [await visitor.request("resync", probe) for _ in range(10)]
    assert [error_code(a) for a in acks] == [None] * 5 + ["rate_limited"] * 5
    # Kept: still connected, and what the server sends still arrives.
    assert visitor.connected
    await post_reply(live_server, conversation_id, "still here")
    assert text_of(await visitor.wait_for("message", timeout=TIMEOUT)) == "still here"


async def test_an_oversize_event_is_refused_and_the_connection_kept(customer):
    visitor = await customer("ada")
    ack = await visitor.request(
        "message", {"client_message_id": "big", "content": {"type": "text", "text": "x" * 5000}}
    )
    assert error_code(ack) == "payload_too_large"
    assert (await visitor.send("small"))["seq"] == 1
