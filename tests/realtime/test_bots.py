"""Bots end to end on a live server: a customer meets the bot on the in-app socket and on
SMS (the Twilio fake), sees it typing, and is handed to an agent who answers over /agent.

The brain is ``tests.fakes.brains:brain``: it echoes, and hands off when asked for a human.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import select

from bots.turn import Handoff, Turn, TurnResult
from chat.db import models as m
from chat.services.bots import BOT_TURN
from tests.conftest import LiveServer
from tests.fakes.brains import brain, echo
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.realtime.conftest import TIMEOUT

CUSTOMER = "+14155550123"


def polite(turn: Turn) -> TurnResult:
    if "human" in turn.message.text:
        return TurnResult(
            replies=[{"type": "text", "text": "Getting you a person."}],
            handoff=Handoff(reason="asked", team="support"),
        )
    return echo(turn)


@pytest.fixture(autouse=True)
def fresh_brain() -> Iterator[None]:
    brain.reset()
    brain.answer = polite
    yield
    brain.reset()


async def attach(live: LiveServer, **fields: Any) -> dict[str, Any]:
    r = await live.http.post("/v1/bots", json={
        "name": "Helper", "kind": "python", "config": {"path": "tests.fakes.brains:brain"}, **fields,
    })
    assert r.status_code == 201, r.text
    bot: dict[str, Any] = r.json()
    return bot


def from_bot(data: Any) -> bool:
    return bool(data["message"]["author"]["type"] == "bot")


async def test_an_inapp_customer_gets_the_bots_reply_after_the_ack_then_an_agent(
    live_server: LiveServer, customer: Any, agent: Any
) -> None:
    bot = await attach(live_server)
    inbox = await agent()
    visitor = await customer("ada")
    brain.gate = asyncio.Event()  # the bot thinks until released

    sent = await visitor.send("hello")  # the ack: the message is stored
    cid = sent["conversation_id"]
    await asyncio.wait_for(brain.started.wait(), TIMEOUT)  # the turn runs after the ack
    typing = await visitor.wait_for("typing", timeout=TIMEOUT)
    assert typing == {
        "conversation_id": cid, "typing": True,
        "author": {"type": "bot", "id": bot["id"], "name": "Helper"},
    }
    assert visitor.events.take("message") == []
    brain.gate.set()

    reply = await visitor.wait_for("message", from_bot, timeout=TIMEOUT)
    assert reply["message"]["content"] == {"type": "text", "text": "echo: hello"}
    assert (await visitor.wait_for("typing", timeout=TIMEOUT))["typing"] is False
    # The agents' inbox sees the bot's reply like any message.
    seen = await inbox.wait_for("message", from_bot, timeout=TIMEOUT)
    assert seen["message"]["id"] == reply["message"]["id"]

    # Asking for a human hands off: the agents hear of it, an agent answers.
    await visitor.send("a human please", conversation_id=cid)
    updated = await inbox.wait_for(
        "conversation.updated", lambda c: c["id"] == cid and c["assignee"] is None, timeout=TIMEOUT
    )
    assert (updated["status"], updated["team"]) == ("open", "support")
    await inbox.send(cid, "Hi, I am Ada from support")
    answered = await visitor.wait_for(
        "message", lambda d: d["message"]["author"]["type"] == "agent", timeout=TIMEOUT
    )
    assert answered["message"]["content"]["text"] == "Hi, I am Ada from support"
    # The bot stays silent now.
    await visitor.send("thank you", conversation_id=cid)
    r = await live_server.http.get(f"/v1/conversations/{cid}/messages")
    texts = [(m["author"]["type"], m["content"]["text"]) for m in r.json()["data"]]
    assert texts == [
        ("contact", "hello"), ("bot", "echo: hello"), ("contact", "a human please"),
        ("bot", "Getting you a person."), ("agent", "Hi, I am Ada from support"),
        ("contact", "thank you"),
    ]
    # No turn was even queued for the message after the hand-off.
    async with live_server.services.db.read() as session:
        queued = (await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.kind == BOT_TURN))).all()
    assert len(queued) == 2 and len(brain.seen) == 2

    # The agent gives it back to the bot over /agent: the bot answers the next message.
    await inbox.assign(cid, {"type": "bot", "id": bot["id"]})
    await visitor.send("one more question", conversation_id=cid)
    back = await visitor.wait_for(
        "message", lambda d: d["message"]["content"].get("text") == "echo: one more question",
        timeout=TIMEOUT,
    )
    assert back["message"]["author"] == {"type": "bot", "id": bot["id"]}


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


def twilio_signature(url: str, body: bytes) -> str:
    payload = url + "".join(k + v for k, v in sorted(parse_qsl(body.decode())))
    return base64.b64encode(hmac.new(AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()


async def text_in(live: LiveServer, channel_id: str, text: str, sid: str) -> None:
    body = urlencode({
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": text, "From": CUSTOMER,
        "To": "+15017122661", "MessageSid": sid, "SmsSid": sid, "NumMedia": "0",
    }).encode()
    url = f"{live.url}/webhooks/{channel_id}"
    r = await live.http.post(url, content=body, headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(url, body),
    })
    assert r.status_code == 200, r.text


async def test_an_sms_conversation_starts_with_the_bot_and_ends_with_an_agent_on_the_socket(
    live_server: LiveServer, agent: Any, twilio: FakeTwilio
) -> None:
    r = await live_server.http.post("/v1/channels", json={"type": "sms", "name": "Twilio", "config": {
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15017122661",
        "api_base_url": twilio.url,
    }})
    assert r.status_code == 201, r.text
    channel_id = r.json()["id"]
    await attach(live_server, channel_ids=[channel_id])
    inbox = await agent()

    await text_in(live_server, channel_id, "hello", "SM" + "1" * 32)
    await twilio.wait_for(lambda t: len(t.accepted) == 1)
    assert twilio.accepted[0].form["Body"] == ["echo: hello"]
    assert twilio.accepted[0].form["To"] == [CUSTOMER]

    await text_in(live_server, channel_id, "I want a human", "SM" + "2" * 32)
    await twilio.wait_for(lambda t: len(t.accepted) == 2)
    assert twilio.accepted[1].form["Body"] == ["Getting you a person."]
    updated = await inbox.wait_for(
        "conversation.updated", lambda c: c["assignee"] is None and c["team"] == "support", timeout=TIMEOUT
    )
    await inbox.send(updated["id"], "Ada here, how can I help?")
    await twilio.wait_for(lambda t: len(t.accepted) == 3)
    assert twilio.accepted[2].form["Body"] == ["Ada here, how can I help?"]
    assert len(brain.seen) == 2
