"""Resync: after a gap or a reconnect a client gets exactly what it missed, in order."""

from __future__ import annotations

import pytest

from parley_client import AckError
from tests.realtime.conftest import TIMEOUT, post_reply, text_of


async def test_resync_returns_exactly_the_missed_messages_in_order(customer, agent, live_server):
    inbox = await agent()
    visitor = await customer("ada", auto_resync=False)
    sent = await visitor.send("hello")
    conversation_id = sent["conversation_id"]
    await visitor.disconnect()

    for text in ("one", "two"):
        await inbox.send(conversation_id, text)
    await inbox.send(conversation_id, "internal", private=True)
    await post_reply(live_server, conversation_id, "three")

    await visitor.connect()
    missed = await visitor.resync(conversation_id, after_seq=sent["seq"])
    assert [(m["seq"], m["content"]["text"]) for m in missed] == [
        (2, "one"),
        (3, "two"),
        (5, "three"),
    ]
    ack = await visitor.call("resync", {"conversation_id": conversation_id, "after_seq": 5})
    assert ack == {"ok": True, "messages": [], "last_seq": 5, "has_more": False}


async def test_resync_pages_through_long_gaps(customer, agent):
    inbox = await agent()
    visitor = await customer("ada", auto_resync=False)
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    for i in range(5):
        await inbox.send(conversation_id, f"reply {i}")
    page = await visitor.call(
        "resync", {"conversation_id": conversation_id, "after_seq": 0, "limit": 2}
    )
    assert [m["seq"] for m in page["messages"]] == [1, 2] and page["has_more"] is True
    assert page["last_seq"] == 2
    everything = await visitor.resync(conversation_id)
    assert [m["seq"] for m in everything] == [1, 2, 3, 4, 5, 6]


async def test_the_client_resyncs_by_itself_after_reconnecting(customer, live_server):
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    await visitor.disconnect()
    for text in ("missed 1", "missed 2", "missed 3"):
        await post_reply(live_server, conversation_id, text)

    await visitor.connect()
    got = [await visitor.wait_for("message", timeout=TIMEOUT) for _ in range(3)]
    assert [text_of(e) for e in got] == ["missed 1", "missed 2", "missed 3"]
    assert visitor.last_seq(conversation_id) == 4


async def test_after_a_network_loss_every_message_arrives_once_and_in_order(customer, live_server):
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    visitor.events.take("session")
    await visitor.drop_transport()  # the client reconnects by itself
    await visitor.wait_for("disconnected", timeout=TIMEOUT)
    for i in range(5):
        await post_reply(live_server, conversation_id, f"reply {i}")  # live or missed: either way

    again = await visitor.wait_for("session", timeout=TIMEOUT)  # reconnected
    assert again["contact_id"] == visitor.contact_id
    got = [await visitor.wait_for("message", timeout=TIMEOUT) for _ in range(5)]
    assert [text_of(e) for e in got] == [f"reply {i}" for i in range(5)]
    await post_reply(live_server, conversation_id, "marker")
    assert text_of(await visitor.wait_for("message", timeout=TIMEOUT)) == "marker"  # no duplicates


async def test_an_app_restart_resumes_from_persisted_state(customer, live_server):
    visitor = await customer()
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    session, seqs = visitor.session, visitor.last_seqs
    await visitor.close()
    await post_reply(live_server, conversation_id, "while the app was closed")

    restarted = await customer(session=session, last_seqs=seqs)
    event = await restarted.wait_for("message", timeout=TIMEOUT)
    assert text_of(event) == "while the app was closed"
    assert restarted.contact_id == visitor.contact_id


async def test_a_customer_cannot_resync_someone_elses_conversation(customer):
    ada, eve = await customer("ada"), await customer("eve")
    conversation_id = (await ada.send("secret"))["conversation_id"]
    with pytest.raises(AckError) as info:
        await eve.resync(conversation_id)
    assert info.value.code == "not_found"
