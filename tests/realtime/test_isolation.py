"""Tenants and contacts stay apart: nobody hears or touches what is not theirs."""

from __future__ import annotations

import uuid

import pytest

from parley_client import AckError, AgentClient, ParleyClient
from tests.realtime.conftest import TIMEOUT, fast, text_of


async def refused_code(call) -> str:
    with pytest.raises(AckError) as info:
        await call
    return info.value.code


@pytest.fixture
async def other_workspace(live_server, clients):
    """Workspace B on the same server: one connected agent and one connected customer."""
    services = live_server.services
    keys = await services.workspaces.create("Other")
    email = f"b-{uuid.uuid4().hex[:8]}@example.com"
    _, password = await services.agents.create(keys["workspace_id"], email, "Bea")
    token = await AgentClient.login(live_server.url, email, password)
    agent_b = AgentClient(live_server.url, token, **fast())
    customer_b = ParleyClient(live_server.url, keys["widget_key"], **fast())
    clients.extend([agent_b, customer_b])
    await agent_b.connect()
    await customer_b.connect()
    return agent_b, customer_b


async def test_an_agent_of_another_workspace_receives_nothing(customer, agent, other_workspace):
    agent_b, customer_b = other_workspace
    agent_a = await agent()
    visitor = await customer("ada")
    sent = await visitor.send("for workspace A only")
    await agent_a.wait_for("message", timeout=TIMEOUT)
    await visitor.typing(sent["conversation_id"], True)
    await agent_a.send(sent["conversation_id"], "A's reply")

    # Workspace B's own traffic arrives; nothing of A's came before or with it.
    mine = await customer_b.send("for workspace B")
    event = await agent_b.wait_for("message", timeout=TIMEOUT)
    assert event["message"]["id"] == mine["id"]
    leaked = [
        (name, data)
        for name, data in agent_b.events.take()
        if visitor.contact_id in str(data) or sent["conversation_id"] in str(data)
    ]
    assert leaked == []


async def test_an_agent_cannot_touch_another_workspaces_conversation(customer, other_workspace):
    agent_b, _ = other_workspace
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]

    assert await refused_code(agent_b.send(conversation_id, "hijack")) == "not_found"
    assert await refused_code(agent_b.read(conversation_id, 1)) == "not_found"
    assert await refused_code(agent_b.typing(conversation_id, True)) == "not_found"
    assert await refused_code(agent_b.resync(conversation_id)) == "not_found"
    assert await refused_code(agent_b.set_status(conversation_id, "resolved")) == "not_found"
    assert await refused_code(agent_b.assign(conversation_id, None)) == "not_found"


async def test_a_customer_cannot_post_into_another_contacts_conversation(customer, live_server):
    ada, eve = await customer("ada"), await customer("eve")
    sent = await ada.send("private matter", client_message_id="ada-1")
    conversation_id = sent["conversation_id"]

    assert await refused_code(eve.send("intrusion", conversation_id=conversation_id)) == "not_found"
    assert await refused_code(eve.read(conversation_id, 1)) == "not_found"
    assert await refused_code(eve.typing(conversation_id, True)) == "not_found"
    # Reusing Ada's idempotency key must not hand Eve Ada's message.
    assert await refused_code(eve.send("guess", client_message_id="ada-1")) == (
        "duplicate_client_message_id"
    )
    history = (await live_server.http.get(f"/v1/conversations/{conversation_id}/messages")).json()
    assert [m["content"]["text"] for m in history["data"]] == ["private matter"]


async def test_a_customer_of_another_workspace_cannot_reach_in(customer, other_workspace):
    _, customer_b = other_workspace
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    assert await refused_code(customer_b.send("hi", conversation_id=conversation_id)) == "not_found"
    assert await refused_code(customer_b.resync(conversation_id)) == "not_found"
    assert await refused_code(customer_b.read(conversation_id, 1)) == "not_found"


async def test_customers_only_hear_their_own_conversations(customer, agent):
    inbox = await agent()
    ada, eve = await customer("ada"), await customer("eve")
    to_ada = (await ada.send("hello"))["conversation_id"]
    to_eve = (await eve.send("hello"))["conversation_id"]
    # Everything that reaches a customer, in Eve's conversation only.
    await inbox.send(to_eve, "for Eve")
    await inbox.typing(to_eve, True)
    await inbox.read(to_eve, 1)
    await inbox.assign(to_eve, {"type": "agent", "id": inbox.agent["id"]})
    await eve.send("thanks")
    await inbox.set_status(to_eve, "resolved")
    await inbox.send(to_ada, "for Ada")  # the last thing either of them hears
    assert text_of(await ada.wait_for("message", timeout=TIMEOUT)) == "for Ada"
    await eve.wait_for("conversation.updated", lambda c: c["status"] == "resolved", timeout=TIMEOUT)

    # Eve heard each kind of event of her own conversation ...
    heard_by_eve = eve.events.take()
    assert {"message", "typing", "read", "conversation.updated"} <= {n for n, _ in heard_by_eve}
    # ... and Ada none of it: besides her session, all she heard was about her conversation.
    heard_by_ada = ada.events.take()
    assert [(n, d) for n, d in heard_by_ada if to_eve in str(d) or eve.contact_id in str(d)] == []
    assert [(n, d) for n, d in heard_by_ada if n != "session" and to_ada not in str(d)] == []
    assert [(n, d) for n, d in heard_by_eve if to_ada in str(d) or ada.contact_id in str(d)] == []
