"""``bots.http_bot``: Parley POSTs each turn, signed as its webhooks are, to a bot's URL;
the bot answers in the body or later through the REST API. The bot is a real HTTP server
on 127.0.0.1 (tests/fakes/bot_server.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bots.http_bot import HttpBrain
from bots.signing import verify_webhook_signature, webhook_signature
from bots.turn import Handoff, TriggerEvent, Turn, TurnMessage
from chat import security
from chat.settings import Settings
from tests.bot_helpers import conversation, customer_says, history, turns
from tests.fakes.bot_server import LATER, Fail, FakeBot, Reply


@pytest.fixture
async def bot_server() -> AsyncIterator[FakeBot]:
    fake = await FakeBot().start()
    yield fake
    await fake.stop()


def turn_of(text: str) -> Turn:
    return Turn(
        "ws_1", "cnv_1", "sms", TurnMessage("msg_1", 3, {"type": "text", "text": text}),
        {"id": "ct_1", "name": "Ada"}, {"step": 1}, [{"seq": 1, "direction": "inbound", "author_type": "contact", "content": {"type": "text", "text": "hi"}}],
    )


def test_bots_and_webhooks_sign_alike() -> None:
    body = b'{"a":1}'
    assert webhook_signature("s3cret", body, 1700000000) == security.webhook_signature("s3cret", body, 1700000000)
    now = security.webhook_signature("s3cret", body)
    assert verify_webhook_signature("s3cret", body, now)
    assert not verify_webhook_signature("other", body, now)
    assert not verify_webhook_signature("s3cret", body, webhook_signature("s3cret", body, int(time.time()) - 3600))


async def test_each_turn_is_posted_signed_and_the_answer_is_the_result(bot_server: FakeBot) -> None:
    bot_server.respond(Reply({
        "replies": ["Hi Ada!", {"type": "media", "url": "https://example.com/map.png"}],
        "handoff": {"reason": "vip", "team": "sales"},
        "set_attributes": {"vip": True},
        "events": [{"name": "lead.created", "payload": {"score": 9}}],
        "memory": {"step": 2},
        "intent": "greet", "score": 0.75,
    }))
    async with httpx.AsyncClient() as http:
        result = await HttpBrain(bot_server.url, bot_server.secret, http, bot_id="bot_1").turn(turn_of("hello"))
    [sent] = bot_server.turns
    assert sent["type"] == "bot.turn" and sent["bot_id"] == "bot_1"
    assert sent["turn"]["message"] == {"id": "msg_1", "seq": 3, "content": {"type": "text", "text": "hello"}, "text": "hello"}
    assert sent["turn"]["contact"] == {"id": "ct_1", "name": "Ada"} and sent["turn"]["memory"] == {"step": 1}
    assert sent["turn"]["channel_type"] == "sms" and len(sent["turn"]["history"]) == 1
    assert result.replies == [{"type": "text", "text": "Hi Ada!"}, {"type": "media", "url": "https://example.com/map.png"}]
    assert result.handoff == Handoff("vip", "sales")
    assert result.set_attributes == {"vip": True}
    assert result.events == [TriggerEvent("lead.created", {"score": 9})]
    assert (result.memory, result.intent, result.score, result.handler) == ({"step": 2}, "greet", 0.75, "http")


async def test_a_wrong_secret_is_refused_by_the_bot(bot_server: FakeBot) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.HTTPStatusError):
            await HttpBrain(bot_server.url, "not-the-secret-at-all", http).turn(turn_of("hello"))
    assert bot_server.unsigned == 1 and bot_server.turns == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


async def http_bot(api: httpx.AsyncClient, bot_server: FakeBot) -> dict[str, Any]:
    r = await api.post("/v1/bots", json={
        "name": "Remote", "kind": "http", "config": {"url": bot_server.url, "secret": bot_server.secret},
    })
    assert r.status_code == 201, r.text
    bot: dict[str, Any] = r.json()
    return bot


async def test_an_http_bot_answers_in_the_response_body(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str], bot_server: FakeBot
) -> None:
    bot = await http_bot(api, bot_server)
    bot_server.respond(Reply({"replies": ["Hello from far away"], "memory": {"seen": 1}}))
    posted = await customer_says(services, workspace["workspace_id"], "hello")
    await runtime.worker.drain()
    cid = posted.conversation["id"]
    assert await history(api, cid) == [("contact", "hello"), ("bot", "Hello from far away")]
    assert bot_server.turns[0]["bot_id"] == bot["id"]
    assert bot_server.turns[0]["turn"]["conversation_id"] == cid

    bot_server.respond(Reply({"replies": []}))
    await customer_says(services, workspace["workspace_id"], "again")
    await runtime.worker.drain()
    assert bot_server.turns[1]["turn"]["memory"] == {"seen": 1}


async def test_an_http_bot_answers_later_through_the_rest_api(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str], bot_server: FakeBot
) -> None:
    bot = await http_bot(api, bot_server)
    bot_server.parley = api
    bot_server.respond(LATER)
    posted = await customer_says(services, workspace["workspace_id"], "what are your hours?")
    cid = posted.conversation["id"]
    await runtime.worker.drain()
    await bot_server.wait_for(lambda b: len(b.turns) == 1)
    # The bot's own POST arrives after its 204: wait until it is stored.
    async with asyncio.timeout(10):
        while len(await history(api, cid)) < 2:
            await asyncio.sleep(0.02)
    msgs = (await api.get(f"/v1/conversations/{cid}/messages")).json()["data"]
    assert msgs[1]["author"] == {"type": "bot", "id": bot["id"]}
    assert msgs[1]["content"]["text"] == bot_server.later_text
    [record] = await turns(api, cid)
    assert (record["outcome"], record["replies"]) == ("replied", 0)


async def test_an_http_bot_that_fails_gives_the_fallback_and_hands_off(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str], bot_server: FakeBot
) -> None:
    await http_bot(api, bot_server)
    bot_server.respond(Fail(500))
    posted = await customer_says(services, workspace["workspace_id"], "hello")
    await runtime.worker.drain()
    cid = posted.conversation["id"]
    [(_, said), (author, _fallback)] = await history(api, cid)
    assert (said, author) == ("hello", "bot")
    assert (await conversation(api, cid))["assignee"] is None
    [record] = await turns(api, cid)
    assert record["outcome"] == "failed" and "500" in record["error"]
