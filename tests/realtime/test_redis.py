"""With Redis configured, fan-out goes through AsyncRedisManager and presence is counted in Redis.

(One process here; several processes sharing Redis are tested elsewhere.)
"""

from __future__ import annotations

import pytest

from tests.conftest import need_redis
from tests.conftest import test_settings as settings_for
from tests.realtime.conftest import TIMEOUT, text_of

pytestmark = pytest.mark.redis


@pytest.fixture
def settings(db_url):
    return settings_for(db_url, redis_url=need_redis())


async def test_messages_and_presence_flow_through_redis(customer, agent, make_agent_token):
    watcher = await agent()
    token = await make_agent_token(name="Bob")
    tabs = [await agent(token) for _ in range(2)]
    bob = tabs[0].agent["id"]
    came = await watcher.wait_for("presence", lambda e: e["id"] == bob, timeout=TIMEOUT)
    assert came["online"] is True

    phone, laptop = await customer("ada"), await customer("ada")
    sent = await phone.send("through redis")
    assert text_of(await laptop.wait_for("message", timeout=TIMEOUT)) == "through redis"
    await watcher.send(sent["conversation_id"], "reply through redis")
    assert text_of(await phone.wait_for("message", timeout=TIMEOUT)) == "reply through redis"

    await tabs[0].close()
    assert {"type": "agent", "id": bob, "online": True} in await watcher.presence()
    await tabs[1].close()
    went = await watcher.wait_for(
        "presence", lambda e: e["id"] == bob and not e["online"], timeout=TIMEOUT
    )
    assert went["online"] is False
