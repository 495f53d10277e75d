"""Messages over /client and /agent: stored first, acknowledged, then fanned out."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.realtime.conftest import TIMEOUT, has_text, post_reply, text_of


async def test_a_send_is_acknowledged_with_its_seq_after_storage(customer, live_server):
    visitor = await customer("ada")
    first = await visitor.send("hello")
    second = await visitor.send("anyone there?", conversation_id=first["conversation_id"])
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["direction"] == "inbound" and first["author"] == {
        "type": "contact",
        "id": visitor.contact_id,
    }

    resp = await live_server.http.get(f"/v1/conversations/{first['conversation_id']}/messages")
    stored = [(m["id"], m["seq"], m["content"]["text"]) for m in resp.json()["data"]]
    assert stored == [(first["id"], 1, "hello"), (second["id"], 2, "anyone there?")]


async def test_without_a_conversation_the_open_one_is_used(customer):
    visitor = await customer("ada")
    first = await visitor.send("one")
    second = await visitor.send("two")  # no conversation_id: the contact's open in-app conversation
    assert second["conversation_id"] == first["conversation_id"]


async def test_a_message_reaches_the_other_devices_and_the_agents(customer, agent):
    inbox = await agent()
    phone, laptop = await customer("ada"), await customer("ada")
    sent = await phone.send("from my phone")

    on_laptop = await laptop.wait_for("message", timeout=TIMEOUT)
    assert on_laptop["message"]["id"] == sent["id"]
    on_inbox = await inbox.wait_for("message", timeout=TIMEOUT)
    assert on_inbox["message"]["id"] == sent["id"]
    assert on_inbox["conversation"]["contact_id"] == phone.contact_id

    # The sender has its ack, not an echo: the next thing it hears is the reply.
    await inbox.send(sent["conversation_id"], "hi Ada")
    heard = await phone.wait_for("message", timeout=TIMEOUT)
    assert text_of(heard) == "hi Ada"


async def test_an_agent_reply_over_the_socket_reaches_every_device(customer, agent):
    inbox = await agent()
    phone, laptop = await customer("ada"), await customer("ada")
    sent = await phone.send("help")

    reply = await inbox.send(sent["conversation_id"], "on it")
    assert reply["direction"] == "outbound" and reply["author"]["type"] == "agent"
    for device in (phone, laptop):
        event = await device.wait_for("message", has_text("on it"), timeout=TIMEOUT)
        assert event["message"]["id"] == reply["id"]
        assert event["conversation_id"] == sent["conversation_id"]


async def test_replies_over_rest_reach_every_device(customer, live_server):
    phone, laptop = await customer("ada"), await customer("ada")
    sent = await phone.send("help")

    await post_reply(live_server, sent["conversation_id"], "via the conversation")
    resp = await live_server.http.post(
        "/v1/messages",
        json={
            "channel": "inapp",
            "to": {"contact_id": phone.contact_id},
            "content": {"type": "text", "text": "via the unified send"},
        },
    )
    assert resp.status_code == 202, resp.text
    for device in (phone, laptop):
        first = await device.wait_for("message", has_text("via the conversation"), timeout=TIMEOUT)
        second = await device.wait_for("message", has_text("via the unified send"), timeout=TIMEOUT)
        assert first["conversation_id"] == second["conversation_id"] == sent["conversation_id"]
        assert second["message"]["seq"] == first["message"]["seq"] + 1


async def test_a_retried_client_message_id_returns_the_first_message_and_broadcasts_nothing(
    customer, agent
):
    inbox = await agent()
    phone, laptop = await customer("ada"), await customer("ada")
    first = await phone.send("only once", client_message_id="retry-me")
    retried = await phone.send("only once", client_message_id="retry-me")
    assert retried["id"] == first["id"] and retried["seq"] == first["seq"]

    marker = await phone.send("after the retry")
    for device in (laptop, inbox):
        got = [await device.wait_for("message", timeout=TIMEOUT) for _ in range(2)]
        assert [e["message"]["id"] for e in got] == [first["id"], marker["id"]]


async def test_one_sockets_messages_are_stored_in_the_order_sent(customer):
    visitor = await customer("ada")
    opened = await visitor.send("start")
    acks: list[asyncio.Future[Any]] = []
    for i in range(10):  # pipelined: every emit goes out before any ack comes back
        future = asyncio.get_running_loop().create_future()
        acks.append(future)
        await visitor.sio.emit(
            "message",
            {
                "conversation_id": opened["conversation_id"],
                "client_message_id": f"pipelined-{i}",
                "content": {"type": "text", "text": str(i)},
            },
            namespace="/client",
            callback=lambda ack, f=future: f.set_result(ack),
        )
    results = await asyncio.wait_for(asyncio.gather(*acks), TIMEOUT)
    assert [r["message"]["content"]["text"] for r in results] == [str(i) for i in range(10)]
    assert [r["message"]["seq"] for r in results] == list(range(2, 12))


async def test_private_notes_reach_agents_only(customer, agent):
    inbox, colleague = await agent(), await agent()
    visitor = await customer("ada")
    sent = await visitor.send("hello")

    note = await inbox.send(sent["conversation_id"], "VIP customer", private=True)
    seen = await colleague.wait_for(
        "message", lambda e: e["message"]["id"] == note["id"], timeout=TIMEOUT
    )
    assert seen["message"]["private"] is True

    await inbox.send(sent["conversation_id"], "Hello Ada!")
    heard = await visitor.wait_for("message", timeout=TIMEOUT)
    assert text_of(heard) == "Hello Ada!"  # the note never came first
    history = await visitor.resync(sent["conversation_id"], after_seq=0)
    assert [m["content"]["text"] for m in history] == ["hello", "Hello Ada!"]


async def test_customers_do_not_see_server_to_server_fields(customer, live_server):
    visitor = await customer("ada")
    await visitor.send("hello")
    resp = await live_server.http.post(
        "/v1/messages",
        json={
            "channel": "inapp",
            "to": {"contact_id": visitor.contact_id, "correlation_id": "crm-1"},
            "content": {"type": "text", "text": "your order shipped"},
            "callback_data": {"order": 7},
            "client_message_id": "crm-send-1",
        },
    )
    assert resp.status_code == 202, resp.text
    event = await visitor.wait_for("message", has_text("your order shipped"), timeout=TIMEOUT)
    assert "callback_data" not in event["message"] and "correlation_id" not in event["message"]
    assert event["message"]["client_message_id"] is None
