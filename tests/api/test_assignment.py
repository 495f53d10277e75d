"""Assignment as a compare-and-set: an agent names the assignee it saw
(``expected_assignee``), so two agents taking one conversation at once never overwrite
each other; exactly one wins and the other is told who did."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from chat.domain.errors import Conflict
from tests.api.test_agents import add_agent, assert_error
from tests.api.test_inbox import send


async def test_two_agents_taking_an_unassigned_conversation_at_once_one_wins(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ann = await add_agent(api, email="ann@example.com")
    bob = await add_agent(api, email="bob@example.com")
    conv = (await send(api, "user-1"))["conversation_id"]
    ws = workspace["workspace_id"]

    async def take(agent_id: str) -> str:
        try:
            view = await services.inbox.update(
                ws, conv, assignee={"type": "agent", "id": agent_id}, expected_assignee=None
            )
        except Conflict as exc:
            assert exc.code == "assignee_changed"
            assert exc.details["conversation"]["assignee"]["id"] in (ann["id"], bob["id"])
            return "lost"
        assert view["assignee"] == {"type": "agent", "id": agent_id}
        return "won"

    results = await asyncio.gather(*(take(a) for a in (ann["id"], bob["id"]) for _ in range(3)))
    assert results.count("won") == 1
    winner = (await api.get(f"/v1/conversations/{conv}")).json()["assignee"]["id"]
    assert winner in (ann["id"], bob["id"])


async def test_patch_with_a_stale_expected_assignee_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    ann = await add_agent(api, email="ann@example.com")
    bob = await add_agent(api, email="bob@example.com")
    conv = (await send(api, "user-1"))["conversation_id"]
    url = f"/v1/conversations/{conv}"
    as_ann = {"type": "agent", "id": ann["id"]}
    as_bob = {"type": "agent", "id": bob["id"]}

    r = await api.patch(url, json={"assignee": as_ann, "expected_assignee": None})
    assert r.status_code == 200, r.text
    # Bob still saw it unassigned: refused, with the conversation as it is now.
    r = await api.patch(url, json={"assignee": as_bob, "expected_assignee": None, "status": "pending"})
    assert_error(r, 409, "assignee_changed")
    assert r.json()["error"]["details"]["conversation"]["assignee"] == as_ann
    now = (await api.get(url)).json()
    assert (now["assignee"], now["status"]) == (as_ann, "open")
    # Knowing Ann holds it, Bob can take it over; without expected_assignee it is a plain set.
    r = await api.patch(url, json={"assignee": as_bob, "expected_assignee": as_ann})
    assert r.json()["assignee"] == as_bob
    r = await api.patch(url, json={"assignee": None})
    assert r.json()["assignee"] is None


async def test_the_list_filters_by_any_bot_or_any_agent(api: httpx.AsyncClient) -> None:
    ann = await add_agent(api, email="ann@example.com")
    by_bot = (await send(api, "user-1"))["conversation_id"]
    by_ann = (await send(api, "user-2"))["conversation_id"]
    nobody = (await send(api, "user-3"))["conversation_id"]
    bot = await api.post("/v1/bots", json={
        "name": "Triage", "kind": "python", "config": {"path": "tests.fakes.brains:brain"},
    })
    assert bot.status_code == 201, bot.text
    triage = bot.json()["id"]
    r = await api.patch(f"/v1/conversations/{by_bot}", json={"assignee": {"type": "bot", "id": triage}})
    assert r.status_code == 200, r.text
    await api.patch(f"/v1/conversations/{by_ann}", json={"assignee": {"type": "agent", "id": ann["id"]}})

    async def listed(assignee: str) -> list[str]:
        r = await api.get("/v1/conversations", params={"assignee": assignee})
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["data"]]

    assert await listed("bot:*") == [by_bot]
    assert await listed("agent:*") == [by_ann]
    assert await listed("none") == [nobody]
    assert await listed(f"bot:{triage}") == [by_bot]
