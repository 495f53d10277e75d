"""Typing indicators: never stored, throttled per socket and conversation, routed across."""

from __future__ import annotations

import pytest

from tests.conftest import test_settings as settings_for
from tests.realtime.conftest import TIMEOUT


@pytest.fixture
def settings(db_url):
    return settings_for(db_url, typing_throttle_seconds=60.0)  # nothing expires during a test


async def test_customer_typing_reaches_agents_throttled(customer, agent):
    inbox = await agent()
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]

    assert (await visitor.typing(conversation_id, True)).get("throttled") is None
    assert (await visitor.typing(conversation_id, True))["throttled"] is True
    assert (await visitor.typing(conversation_id, True))["throttled"] is True
    assert (await visitor.typing(conversation_id, False)).get(
        "throttled"
    ) is None  # stops always pass
    assert (await visitor.typing(conversation_id, True)).get("throttled") is None  # and re-arm

    got = [await inbox.wait_for("typing", timeout=TIMEOUT) for _ in range(3)]
    assert [e["typing"] for e in got] == [True, False, True]
    assert got[0] == {
        "conversation_id": conversation_id,
        "typing": True,
        "author": {"type": "contact", "id": visitor.contact_id},
    }
    assert inbox.events.take("typing") == []


async def test_agent_typing_reaches_the_customer_and_the_other_agents(customer, agent):
    inbox, colleague = await agent(), await agent()
    phone, laptop = await customer("ada"), await customer("ada")
    conversation_id = (await phone.send("hello"))["conversation_id"]

    await inbox.typing(conversation_id, True)
    for watcher in (phone, laptop, colleague):
        event = await watcher.wait_for("typing", timeout=TIMEOUT)
        assert event["author"] == {
            "type": "agent",
            "id": inbox.agent["id"],
            "name": inbox.agent["name"],
        }
        assert event["typing"] is True

    # The typing agent hears nothing of its own: its next typing event is the customer's.
    await phone.typing(conversation_id, True)
    event = await inbox.wait_for("typing", timeout=TIMEOUT)
    assert event["author"]["type"] == "contact"
