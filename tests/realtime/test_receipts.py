"""Delivery states: devices acknowledge delivery and reading; statuses only move forward."""

from __future__ import annotations

from tests.realtime.conftest import TIMEOUT


def status_of(message_id: str, status: str):
    return lambda e: e["message_id"] == message_id and e["status"] == status


async def test_delivered_and_read_reach_the_agent_and_the_history(customer, agent, live_server):
    inbox = await agent()
    visitor = await customer("ada")  # acknowledges delivery by itself
    sent = await visitor.send("hello")
    conversation_id = sent["conversation_id"]
    reply = await inbox.send(conversation_id, "hi there")
    assert reply["status"] == "sent"

    await inbox.wait_for("message.status", status_of(reply["id"], "delivered"), timeout=TIMEOUT)
    assert await visitor.read(conversation_id) == reply["seq"]
    await inbox.wait_for("message.status", status_of(reply["id"], "read"), timeout=TIMEOUT)
    read = await inbox.wait_for("read", timeout=TIMEOUT)
    assert read == {
        "conversation_id": conversation_id,
        "reader": {"type": "contact", "id": visitor.contact_id},
        "seq": reply["seq"],
    }

    resp = await live_server.http.get(f"/v1/messages/{reply['id']}")
    body = resp.json()
    assert body["status"] == "read"
    assert [h["status"] for h in body["status_history"]] == ["sent", "delivered", "read"]


async def test_an_agent_read_marks_the_customers_messages_read(customer, agent, live_server):
    inbox = await agent()
    phone, laptop = await customer("ada"), await customer("ada")
    sent = await phone.send("hello")

    assert await inbox.read(sent["conversation_id"], sent["seq"]) == sent["seq"]
    for device in (phone, laptop):
        await device.wait_for("message.status", status_of(sent["id"], "read"), timeout=TIMEOUT)
        read = await device.wait_for("read", timeout=TIMEOUT)
        assert read["reader"]["type"] == "agent" and read["seq"] == sent["seq"]
    body = (await live_server.http.get(f"/v1/messages/{sent['id']}")).json()
    assert [h["status"] for h in body["status_history"]] == ["delivered", "read"]


async def test_statuses_never_move_backwards(customer, agent, live_server):
    inbox = await agent()
    visitor = await customer("ada", auto_delivered=False)
    sent = await visitor.send("hello")
    reply = await inbox.send(sent["conversation_id"], "hi")
    await visitor.wait_for("message", timeout=TIMEOUT)

    await visitor.read(sent["conversation_id"], reply["seq"])
    await visitor.delivered(sent["conversation_id"], reply["seq"])  # late: must not undo "read"
    assert await visitor.read(sent["conversation_id"], 1) == reply["seq"]  # the horizon stays
    body = (await live_server.http.get(f"/v1/messages/{reply['id']}")).json()
    assert body["status"] == "read"
    assert [h["status"] for h in body["status_history"]] == ["sent", "read"]


async def test_receipts_beyond_the_end_are_clamped(customer, agent):
    inbox = await agent()
    visitor = await customer("ada", auto_delivered=False)
    sent = await visitor.send("hello")
    await inbox.send(sent["conversation_id"], "hi")
    assert await visitor.read(sent["conversation_id"], 10_000) == 2
