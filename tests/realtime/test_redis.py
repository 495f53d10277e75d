"""With Redis configured, fan-out goes through AsyncRedisManager and presence is counted in Redis.

Two servers in this process, each with its own Socket.IO manager and presence store,
share the database and one Redis channel: what a socket on one server sends can only
reach a socket on the other through Redis (without Redis each server emits to its own
sockets only, and this test fails). Separate processes are tested in test_multiprocess.py.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tests.conftest import need_redis
from tests.conftest import test_settings as settings_for
from tests.realtime.conftest import TIMEOUT, has_text, text_of

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_options():
    # A channel of this test's own: other tests on this Redis never cross into it.
    return {"redis_url": need_redis(), "redis_channel": f"parley.test.{uuid.uuid4().hex}"}


@pytest.fixture
def settings(db_url, redis_options):
    return settings_for(db_url, **redis_options)


@pytest.fixture
async def other_server(live_server, custom_server, redis_options):
    """A second server of the same workspace, sharing the database and Redis."""
    started = await custom_server(**redis_options)
    return dataclasses.replace(started, workspace=live_server.workspace)


async def test_messages_and_presence_flow_through_redis(
    customer, agent, make_agent_token, live_server, other_server
):
    watcher = await agent()  # on the first server
    token = await make_agent_token(name="Bob")
    here, there = await agent(token), await agent(token, server=other_server)
    bob = here.agent["id"]
    came = await watcher.wait_for("presence", lambda e: e["id"] == bob, timeout=TIMEOUT)
    assert came["online"] is True

    phone = await customer("ada")
    laptop = await customer("ada", server=other_server)
    sent = await phone.send("through redis")
    assert text_of(await laptop.wait_for("message", timeout=TIMEOUT)) == "through redis"
    on_other = await there.wait_for("message", has_text("through redis"), timeout=TIMEOUT)
    assert on_other["message"]["id"] == sent["id"]

    await there.send(sent["conversation_id"], "reply through redis")  # from the other server
    for device in (phone, laptop):
        heard = await device.wait_for("message", has_text("reply through redis"), timeout=TIMEOUT)
        assert heard["conversation_id"] == sent["conversation_id"]

    # Presence is counted across both servers: Bob stays online while his tab on the
    # other server is open, and going offline there reaches the watcher here.
    await here.close()
    assert {"type": "agent", "id": bob, "online": True} in await watcher.presence()
    await there.close()
    went = await watcher.wait_for(
        "presence", lambda e: e["id"] == bob and not e["online"], timeout=TIMEOUT
    )
    assert went["online"] is False
    assert bob not in [p["id"] for p in await watcher.presence()]
