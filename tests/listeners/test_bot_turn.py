"""The ``bot_turn`` outbox handler through the real app: a customer's message in a bot's
conversation becomes a turn the worker runs after the message is stored; the bot's
replies are ordinary messages; failures give the fallback and hand off; retries post once.

The brain is ``tests.fakes.brains:brain`` (a tiny scripted one), loaded as a python bot.
The worker is run by the tests (``drain``), so what happens before it runs is visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from bots.turn import Handoff, TriggerEvent, Turn, TurnResult
from chat.bus import DomainEvent
from chat.db import models as m
from chat.services.bots import BOT_TURN
from chat.settings import Settings
from tests.bot_helpers import attach_bot, conversation, customer_says, history, turns
from tests.fakes.brains import FALLBACK, brain


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


@pytest.fixture(autouse=True)
def fresh_brain() -> Iterator[None]:
    brain.reset()
    yield
    brain.reset()


def answer(result: TurnResult) -> None:
    brain.answer = lambda _turn: result


async def test_the_bot_answers_after_the_customer_message_is_stored(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    posted = await customer_says(services, workspace["workspace_id"], "hello")
    cid = posted.conversation["id"]
    assert posted.conversation["assignee"] == {"type": "bot", "id": bot["id"]}
    # Stored and acknowledged; the bot has not run yet (its turn is outbox work).
    assert await history(api, cid) == [("contact", "hello")]
    assert brain.seen == []

    await runtime.worker.drain()

    assert await history(api, cid) == [("contact", "hello"), ("bot", "echo: hello")]
    msgs = (await api.get(f"/v1/conversations/{cid}/messages")).json()["data"]
    assert msgs[1]["author"] == {"type": "bot", "id": bot["id"]}
    assert msgs[1]["direction"] == "outbound"
    [record] = await turns(api, cid)
    assert record["outcome"] == "replied"
    assert (record["intent"], record["score"], record["handler"]) == ("echo", 0.9, "echo")
    assert record["message_id"] == posted.message["id"]
    assert record["replies"] == 1 and record["error"] is None


async def test_a_turn_carries_the_contact_the_channel_the_memory_and_the_history(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    ws = workspace["workspace_id"]
    first = await customer_says(services, ws, "hello")
    await runtime.worker.drain()
    await customer_says(services, ws, "again")
    await runtime.worker.drain()

    one, two = brain.seen
    assert one.channel_type == "inapp" and one.conversation_id == first.conversation["id"]
    assert one.contact["id"] == first.conversation["contact_id"]
    assert one.memory == {} and two.memory == {"count": 1}
    assert two.message.text == "again"
    assert [(h["author_type"], h["content"]["text"]) for h in two.history] == [
        ("contact", "hello"), ("bot", "echo: hello"),
    ]


async def test_a_retried_turn_posts_its_replies_once(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    posted = await customer_says(services, workspace["workspace_id"], "hello")
    cid = posted.conversation["id"]
    await runtime.worker.drain()
    async with services.db.read() as session:
        entry = (await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.kind == BOT_TURN))).one()
    handler = runtime.worker.handlers[BOT_TURN]

    # The worker runs the entry again (its lease lapsed after the turn was done).
    await handler(entry)
    assert len(brain.seen) == 1  # a recorded turn is not run again

    # Or it dies after posting the replies and before recording the turn: the brain runs
    # again, and its replies, keyed by the turn, are not stored twice.
    async with services.db.write() as session:
        await session.execute(delete(m.BotTurn))
    await handler(entry)
    assert len(brain.seen) == 2
    assert await history(api, cid) == [("contact", "hello"), ("bot", "echo: hello")]
    assert len(await turns(api, cid)) == 1


async def test_a_brain_that_raises_gives_the_fallback_and_hands_off(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)

    def broken(_turn: Turn) -> TurnResult:
        raise RuntimeError("the order database is down")

    brain.answer = broken
    posted = await customer_says(services, workspace["workspace_id"], "where is my order?")
    cid = posted.conversation["id"]
    await runtime.worker.drain()

    assert await history(api, cid) == [("contact", "where is my order?"), ("bot", FALLBACK)]
    conv = await conversation(api, cid)
    assert conv["status"] == "open" and conv["assignee"] is None
    [record] = await turns(api, cid)
    assert record["outcome"] == "failed"
    assert "RuntimeError: the order database is down" in record["error"]


async def test_a_brain_that_takes_too_long_gives_the_fallback_and_hands_off(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api, timeout_seconds=0.2)
    brain.gate = asyncio.Event()  # never released: the brain hangs
    posted = await customer_says(services, workspace["workspace_id"], "hello?")
    cid = posted.conversation["id"]
    await runtime.worker.drain()

    assert await history(api, cid) == [("contact", "hello?"), ("bot", FALLBACK)]
    assert (await conversation(api, cid))["assignee"] is None
    [record] = await turns(api, cid)
    assert record["outcome"] == "timed_out" and "0.2 s" in record["error"]


async def test_a_reply_that_cannot_be_sent_is_a_failed_turn(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    answer(TurnResult(replies=[{"type": "text", "text": ""}]))
    posted = await customer_says(services, workspace["workspace_id"], "hi")
    await runtime.worker.drain()
    cid = posted.conversation["id"]
    assert await history(api, cid) == [("contact", "hi"), ("bot", FALLBACK)]
    [record] = await turns(api, cid)
    assert record["outcome"] == "failed" and record["error"].startswith("reply 0 is not valid content")


async def test_buttons_attributes_and_events_are_applied(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    answer(TurnResult(
        replies=[{"type": "buttons", "text": "Which order?", "buttons": [{"title": "#42", "payload": "order_42"}]}],
        set_attributes={"plan": "gold"},
        events=[TriggerEvent("order.status_asked", {"order": "42"})],
        memory={"order": "42"},
    ))
    posted = await customer_says(services, workspace["workspace_id"], "my order")
    await runtime.worker.drain()

    msgs = (await api.get(f"/v1/conversations/{posted.conversation['id']}/messages")).json()["data"]
    assert msgs[1]["content"] == {
        "type": "buttons", "text": "Which order?", "buttons": [{"id": "order_42", "title": "#42"}],
    }
    contact = (await api.get(f"/v1/contacts/{posted.conversation['contact_id']}")).json()
    assert contact["attributes"] == {"plan": "gold"}
    [event] = (await api.get("/v1/events")).json()["data"]
    assert event["name"] == "order.status_asked"
    assert event["contact_id"] == contact["id"] and event["payload"] == {"order": "42"}
    async with services.db.read() as session:
        memory = (await session.scalars(select(m.BotMemory))).one()
    assert memory.data == {"order": "42"}


async def test_hand_off_queues_for_agents_and_silences_the_bot_until_given_back(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    ws = workspace["workspace_id"]
    seen: list[DomainEvent] = []

    async def listen(event: DomainEvent) -> None:
        seen.append(event)

    services.bus.subscribe(listen)
    answer(TurnResult(
        replies=[{"type": "text", "text": "Let me get you a person."}],
        handoff=Handoff(reason="asked for a human", team="billing"),
    ))
    posted = await customer_says(services, ws, "a human please")
    cid = posted.conversation["id"]
    await runtime.worker.drain()

    conv = await conversation(api, cid)
    assert (conv["status"], conv["assignee"], conv["team"]) == ("open", None, "billing")
    [updated] = [e for e in seen if e.type == "conversation.updated"]
    assert updated.data["id"] == cid and updated.data["assignee"] is None
    [listed] = (await api.get("/v1/conversations?team=billing&assignee=none")).json()["data"]
    assert listed["id"] == cid
    assert (await turns(api, cid))[0]["outcome"] == "handed_off"

    # Unassigned after the hand-off: the bot stays silent.
    await customer_says(services, ws, "hello?")
    await runtime.worker.drain()
    assert len(brain.seen) == 1

    # An agent gives it back; the bot answers the next message.
    brain.reset()
    r = await api.patch(f"/v1/conversations/{cid}", json={"assignee": {"type": "bot", "id": bot["id"]}})
    assert r.status_code == 200, r.text
    await customer_says(services, ws, "thanks")
    await runtime.worker.drain()
    assert (await history(api, cid))[-2:] == [("contact", "thanks"), ("bot", "echo: thanks")]


async def test_the_bot_is_silent_while_an_agent_holds_the_conversation(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    ws = workspace["workspace_id"]
    agent, _ = await services.agents.create(ws, "ada@example.com", "Ada")
    posted = await customer_says(services, ws, "hello")
    cid = posted.conversation["id"]
    # An agent takes the conversation before the worker ran the turn.
    r = await api.patch(f"/v1/conversations/{cid}", json={"assignee": {"type": "agent", "id": agent["id"]}})
    assert r.status_code == 200
    await customer_says(services, ws, "anyone?")
    await runtime.worker.drain()
    assert brain.seen == []
    assert await history(api, cid) == [("contact", "hello"), ("contact", "anyone?")]


async def test_the_customer_and_the_agents_see_the_bot_typing(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    seen: list[tuple[str, Any]] = []

    async def listen(event: DomainEvent) -> None:
        if event.type == "conversation.typing":
            seen.append(("typing", event.data["typing"]))
        elif event.type == "message.created" and event.data["message"]["author"]["type"] == "bot":
            seen.append(("reply", event.data["message"]["content"]["text"]))

    services.bus.subscribe(listen)
    posted = await customer_says(services, workspace["workspace_id"], "hi")
    await runtime.worker.drain()
    assert seen == [("typing", True), ("reply", "echo: hi"), ("typing", False)]
    assert posted.conversation["assignee"]["id"] == bot["id"]
