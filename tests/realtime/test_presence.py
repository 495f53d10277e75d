"""Presence: people are online while any of their connections is open."""

from __future__ import annotations

from tests.realtime.conftest import TIMEOUT


def presence_of(kind: str, ident: str):
    return lambda e: e["type"] == kind and e["id"] == ident


async def test_an_agent_with_three_tabs_is_online_until_the_last_closes(
    agent, make_agent_token, customer
):
    watcher = await agent()
    token = await make_agent_token(name="Bob")
    tabs = [await agent(token) for _ in range(3)]
    bob = tabs[0].agent["id"]

    event = await watcher.wait_for("presence", presence_of("agent", bob), timeout=TIMEOUT)
    assert event["online"] is True
    assert {"type": "agent", "id": bob, "online": True} in await watcher.presence()
    # Bob's second and third tabs changed nothing (the watcher's own arrival remains).
    assert [e for e in watcher.events.take("presence") if e["id"] == bob] == []

    await tabs[0].close()
    await tabs[1].close()
    # Something else happens in the workspace; Bob going offline must not come before it.
    visitor = await customer("ada")
    event = await watcher.wait_for("presence", timeout=TIMEOUT)
    assert event == {"type": "contact", "id": visitor.contact_id, "online": True}
    assert {"type": "agent", "id": bob, "online": True} in await watcher.presence()

    await tabs[2].close()
    event = await watcher.wait_for("presence", presence_of("agent", bob), timeout=TIMEOUT)
    assert event["online"] is False
    assert bob not in [p["id"] for p in await watcher.presence()]


async def test_contacts_come_online_and_go_offline(agent, customer):
    watcher = await agent()
    visitor = await customer("ada")
    came = await watcher.wait_for(
        "presence", presence_of("contact", visitor.contact_id), timeout=TIMEOUT
    )
    assert came["online"] is True
    await visitor.close()
    went = await watcher.wait_for(
        "presence", presence_of("contact", visitor.contact_id), timeout=TIMEOUT
    )
    assert went["online"] is False


async def test_an_agent_is_greeted_with_who_is_online(agent, customer):
    visitor = await customer("ada")
    inbox = await agent()
    session = await inbox.wait_for("session", timeout=TIMEOUT)
    assert {"type": "contact", "id": visitor.contact_id, "online": True} in session["presence"]
    assert session["agent"]["id"] == inbox.agent["id"]
