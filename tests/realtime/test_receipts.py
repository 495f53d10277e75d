"""Delivery states: devices acknowledge delivery and reading; statuses only move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.realtime.conftest import TIMEOUT, post_reply


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


async def history_of(live_server, message_id: str) -> list[str]:
    body = (await live_server.http.get(f"/v1/messages/{message_id}")).json()
    assert [h["status"] for h in body["status_history"]][-1] == body["status"]
    return [h["status"] for h in body["status_history"]]


async def test_statuses_never_move_backwards(customer, agent, live_server):
    """Every late, repeated or lower receipt from the customer and from the agent is a
    no-op: no status goes back, none is recorded twice, and only the other side's
    public messages move."""
    inbox, watcher = await agent(), await agent()
    told: list[tuple[str, str]] = []
    watcher.on("message.status", lambda e: told.append((e["message_id"], e["status"])))
    visitor = await customer("ada", auto_delivered=False)
    hello = await visitor.send("hello")
    conv = hello["conversation_id"]
    r1, r2, r3 = [await inbox.send(conv, f"reply {i}") for i in (1, 2, 3)]
    note = await inbox.send(conv, "internal", private=True)

    assert await visitor.read(conv, r1["seq"]) == r1["seq"]  # r1: sent -> read
    await visitor.delivered(conv, r2["seq"])  # late for r1 (read stays), r2: sent -> delivered
    await visitor.delivered(conv, r2["seq"])  # a repeat: nothing new
    assert await visitor.read(conv, 1) == r1["seq"]  # lower than the horizon: it stays
    assert await visitor.read(conv, r3["seq"]) == r3["seq"]  # r2: delivered -> read, r3: sent -> read
    await visitor.delivered(conv, r3["seq"])  # everything is read: nothing moves
    await visitor.read(conv, 10_000)  # past the end, over the private note: nothing moves

    # The agent's receipts move the customer's message only, and only forward.
    assert await inbox.read(conv, hello["seq"]) == hello["seq"]
    assert await inbox.read(conv, 10_000) == note["seq"]  # clamped; the horizon moves, no status
    assert await inbox.read(conv, 1) == note["seq"]

    assert await history_of(live_server, r1["id"]) == ["sent", "read"]
    assert await history_of(live_server, r2["id"]) == ["sent", "delivered", "read"]
    assert await history_of(live_server, r3["id"]) == ["sent", "read"]
    assert await history_of(live_server, note["id"]) == ["sent"]
    assert await history_of(live_server, hello["id"]) == ["delivered", "read"]

    # Another agent was told of exactly these moves, in this order, and of nothing else.
    expected = [
        (r1["id"], "read"),
        (r2["id"], "delivered"),
        (r2["id"], "read"),
        (r3["id"], "read"),
        (hello["id"], "read"),
    ]
    # The last one has come, so all before it have (one socket, in order).
    await watcher.wait_for("message.status", status_of(hello["id"], "read"), timeout=TIMEOUT)
    assert told == expected


async def test_receipts_leave_scheduled_and_cancelled_messages_alone(customer, live_server):
    visitor = await customer("ada", auto_delivered=False)
    conv = (await visitor.send("hello"))["conversation_id"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    async def schedule(text: str) -> str:
        resp = await live_server.http.post(
            "/v1/messages",
            json={
                "channel": "inapp",
                "to": {"contact_id": visitor.contact_id},
                "content": {"type": "text", "text": text},
                "send_at": later,
            },
        )
        assert resp.status_code == 202, resp.text
        [sent] = resp.json()["messages"]
        assert sent["conversation_id"] == conv
        return str(sent["message_id"])

    waiting, cancelled = await schedule("tomorrow"), await schedule("never mind")
    assert (await live_server.http.delete(f"/v1/messages/{cancelled}")).status_code == 200
    now = await post_reply(live_server, conv, "now")  # a later message the receipts do reach

    await visitor.delivered(conv, 10_000)
    await visitor.read(conv, 10_000)
    assert await history_of(live_server, waiting) == ["scheduled"]
    assert await history_of(live_server, cancelled) == ["scheduled", "cancelled"]
    assert await history_of(live_server, now["id"]) == ["sent", "delivered", "read"]


async def test_receipts_beyond_the_end_are_clamped(customer, agent):
    inbox = await agent()
    visitor = await customer("ada", auto_delivered=False)
    sent = await visitor.send("hello")
    await inbox.send(sent["conversation_id"], "hi")
    assert await visitor.read(sent["conversation_id"], 10_000) == 2
