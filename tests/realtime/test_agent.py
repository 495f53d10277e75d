"""The inbox over /agent: new conversations, assignment and status reach everyone concerned."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from parley_client import AckError, AgentClient, ConnectRefused, NotConnected
from tests.realtime.conftest import TIMEOUT
from tests.realtime.raw import AGENT, RawClient


async def test_a_new_conversation_reaches_the_agents_before_its_first_message(customer, agent):
    inbox = await agent()
    arrived: list[str] = []
    for name in ("conversation.created", "message"):
        inbox.on(name, lambda _data, name=name: arrived.append(name))
    visitor = await customer("ada")
    sent = await visitor.send("first words")
    message = await inbox.wait_for("message", timeout=TIMEOUT)
    assert message["message"]["id"] == sent["id"]
    created = await inbox.wait_for("conversation.created", timeout=TIMEOUT)
    assert created["id"] == sent["conversation_id"] and created["contact_id"] == visitor.contact_id
    assert arrived == ["conversation.created", "message"]


async def test_assignment_and_status_reach_agents_and_the_customer(customer, agent):
    inbox, colleague = await agent(), await agent()
    visitor = await customer("ada")
    conversation_id = (await visitor.send("help"))["conversation_id"]

    assigned = await inbox.assign(conversation_id, {"type": "agent", "id": colleague.agent["id"]})
    assert assigned["assignee"] == {"type": "agent", "id": colleague.agent["id"]}
    seen = await colleague.wait_for("conversation.updated", timeout=TIMEOUT)
    assert seen["assignee"] == assigned["assignee"]
    told = await visitor.wait_for("conversation.updated", lambda c: c["assignee"], timeout=TIMEOUT)
    assert told["id"] == conversation_id

    resolved = await inbox.set_status(conversation_id, "resolved")
    assert resolved["status"] == "resolved"
    await colleague.wait_for(
        "conversation.updated", lambda c: c["status"] == "resolved", timeout=TIMEOUT
    )
    await visitor.wait_for(
        "conversation.updated", lambda c: c["status"] == "resolved", timeout=TIMEOUT
    )

    unassigned = await inbox.assign(conversation_id, None)
    assert unassigned["assignee"] is None


async def test_two_agents_taking_one_conversation_at_once_one_wins(customer, agent):
    ann, bob = await agent(), await agent()
    conversation_id = (await (await customer("ada")).send("help"))["conversation_id"]

    async def take(inbox):
        me = {"type": "agent", "id": inbox.agent["id"]}
        return await inbox.request(
            "assign",
            {"conversation_id": conversation_id, "assignee": me, "expected_assignee": None},
        )

    acks = await asyncio.gather(take(ann), take(bob))
    won = [a for a in acks if a["ok"]]
    lost = [a for a in acks if not a["ok"]]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0]["error"]["code"] == "assignee_changed"
    winner = won[0]["conversation"]["assignee"]
    loser = bob if winner["id"] == ann.agent["id"] else ann
    seen = await loser.wait_for(
        "conversation.updated", lambda c: c["assignee"] == winner, timeout=TIMEOUT
    )
    assert seen["id"] == conversation_id


async def test_snoozing_over_the_socket_until_a_time(customer, agent):
    inbox = await agent()
    conversation_id = (await (await customer("ada")).send("help"))["conversation_id"]
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ack = await inbox.request(
        "status", {"conversation_id": conversation_id, "status": "snoozed", "snoozed_until": until}
    )
    assert ack["ok"] and ack["conversation"]["status"] == "snoozed"
    refused = await inbox.request(
        "status", {"conversation_id": conversation_id, "status": "open", "snoozed_until": until}
    )
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_snooze"


async def test_assigning_to_an_unknown_agent_is_refused(customer, agent):
    inbox = await agent()
    conversation_id = (await (await customer("ada")).send("help"))["conversation_id"]
    with pytest.raises(AckError) as info:
        await inbox.assign(conversation_id, {"type": "agent", "id": "ag_nobody"})
    assert info.value.code == "unknown_assignee"


async def test_an_agent_retry_returns_the_first_message(customer, agent):
    inbox = await agent()
    visitor = await customer("ada")
    conversation_id = (await visitor.send("help"))["conversation_id"]
    first = await inbox.send(conversation_id, "once", client_message_id="agent-retry")
    again = await inbox.send(conversation_id, "once", client_message_id="agent-retry")
    assert again["id"] == first["id"]
    marker = await inbox.send(conversation_id, "marker")
    got = [await visitor.wait_for("message", timeout=TIMEOUT) for _ in range(2)]
    assert [e["message"]["id"] for e in got] == [first["id"], marker["id"]]


async def test_register_push_moves_a_token_to_its_new_owner(customer, live_server):
    ada, eve = await customer("ada"), await customer("eve")
    first = await ada.register_push("fcm", "device-token-1")
    assert first["channel_type"] == "fcm" and first["address"] == "device-token-1"
    await eve.register_push("fcm", "device-token-1")  # the phone changed hands

    def push_tokens(contact):
        return [
            (i["channel_type"], i["address"])
            for i in contact["identities"]
            if i["channel_type"] == "fcm"
        ]

    ada_now = (await live_server.http.get(f"/v1/contacts/{ada.contact_id}")).json()
    eve_now = (await live_server.http.get(f"/v1/contacts/{eve.contact_id}")).json()
    assert push_tokens(ada_now) == []
    assert push_tokens(eve_now) == [("fcm", "device-token-1")]


async def test_session_is_the_first_event_an_agent_hears(live_server, make_agent_token):
    inbox = await RawClient.open(live_server, namespace=AGENT)
    try:
        await inbox.handshake(live_server, {"token": await make_agent_token()})
        assert [name for name, _ in inbox.events][:1] == ["session"]
        me = inbox.events[0][1]["agent"]["id"]
        assert {"type": "agent", "id": me, "online": True} in inbox.events[0][1]["presence"]
        # Nothing about itself came before or with it.
        assert not [d for name, d in inbox.events if name == "presence" and d["id"] == me]
        assert (await inbox.call("presence", {}))["ok"] is True
        assert [name for name, _ in inbox.events] == ["session"]
    finally:
        await inbox.ws.close()


async def closed_by_the_server(client) -> None:
    """The server closed ``client``'s connection; it stays closed (no reconnect)."""
    gone = await client.wait_for("disconnected", timeout=TIMEOUT)
    assert "server" in gone["reason"], gone
    assert not client.connected
    with pytest.raises(NotConnected):
        await client.presence()


async def test_deactivating_an_agent_closes_its_sockets_and_refuses_its_token(
    live_server, agent, make_agent_token
):
    token = await make_agent_token(name="Bob")
    tabs = [await agent(token, reconnection=False) for _ in range(2)]
    colleague = await agent()
    bob = tabs[0].agent["id"]

    r = await live_server.http.patch(f"/v1/agents/{bob}", json={"active": False})
    assert r.status_code == 200, r.text
    for tab in tabs:
        await closed_by_the_server(tab)
    went = await colleague.wait_for("presence", lambda e: e["id"] == bob, timeout=TIMEOUT)
    assert went["online"] is False
    assert await colleague.presence()  # the colleague is untouched

    r = await live_server.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    with pytest.raises(ConnectRefused) as info:
        await agent(token)
    assert info.value.code == "invalid_token"


async def test_logging_out_closes_the_sockets_of_that_token_only(live_server, agent):
    # Bob logs in on his phone and on his laptop: two tokens of one agent.
    email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    _, password = await live_server.services.agents.create(
        live_server.workspace["workspace_id"], email, "Bob"
    )
    first = await AgentClient.login(live_server.url, email, password)
    phone = await agent(first, reconnection=False)
    laptop = await agent(await AgentClient.login(live_server.url, email, password))
    assert phone.agent["id"] == laptop.agent["id"]

    r = await live_server.http.post(
        "/v1/auth/logout", headers={"Authorization": f"Bearer {first}"}
    )
    assert r.status_code == 204, r.text
    await closed_by_the_server(phone)
    assert (await laptop.presence()) is not None
    with pytest.raises(ConnectRefused) as info:
        await agent(first)
    assert info.value.code == "invalid_token"
