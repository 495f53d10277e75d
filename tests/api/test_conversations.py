"""Conversations over REST: filters, pagination, status and assignee, posting."""

from __future__ import annotations

from typing import Any

import httpx

from chat.domain.enums import Direction
from chat.services.conversations import NewMessage


async def open_conversation(api: httpx.AsyncClient, address: str) -> dict[str, Any]:
    r = await api.post(
        "/v1/messages",
        json={"channel": "inapp", "to": {"address": address}, "content": {"type": "text", "text": "hi"}},
    )
    sent = r.json()["messages"][0]
    return (await api.get(f"/v1/conversations/{sent['conversation_id']}")).json()


async def test_cursor_pagination_walks_every_conversation_once(api: httpx.AsyncClient) -> None:
    created = {(await open_conversation(api, f"u{i}"))["id"] for i in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/conversations?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(url)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == created


async def test_filters(api: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    a = await open_conversation(api, "a")
    b = await open_conversation(api, "b")
    agent, _ = await services.agents.create(workspace["workspace_id"], "x@example.com", "X")
    r = await api.patch(f"/v1/conversations/{a['id']}", json={"status": "pending", "assignee": {"type": "agent", "id": agent["id"]}})
    assert r.status_code == 200, r.text
    assert r.json()["assignee"] == {"type": "agent", "id": agent["id"]}

    async def ids(query: str) -> list[str]:
        return [c["id"] for c in (await api.get(f"/v1/conversations?{query}")).json()["data"]]

    assert await ids("status=pending") == [a["id"]]
    assert await ids("status=open") == [b["id"]]
    assert await ids(f"assignee={agent['id']}") == [a["id"]]
    assert await ids("assignee=none") == [b["id"]]
    assert await ids(f"contact_id={b['contact_id']}") == [b["id"]]
    assert set(await ids("channel=inapp")) == {a["id"], b["id"]}
    assert await ids("channel=sms") == []


async def test_unassign_and_bad_assignees(api: httpx.AsyncClient, other_api: httpx.AsyncClient, services: Any) -> None:
    conv = await open_conversation(api, "u")
    bot = (await api.post("/v1/bots", json={
        "name": "FAQ", "kind": "rasa", "config": {"url": "https://rasa.example.com"},
    })).json()
    r = await api.patch(f"/v1/conversations/{conv['id']}", json={"assignee": {"type": "bot", "id": bot["id"]}})
    assert r.json()["assignee"] == {"type": "bot", "id": bot["id"]}
    r = await api.patch(f"/v1/conversations/{conv['id']}", json={"assignee": {"type": "bot", "id": "faq-bot"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_assignee"
    r = await api.patch(f"/v1/conversations/{conv['id']}", json={"assignee": None})
    assert r.json()["assignee"] is None
    r = await api.patch(f"/v1/conversations/{conv['id']}", json={"assignee": {"type": "agent", "id": "ag_unknown"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_assignee"
    r = await api.patch(f"/v1/conversations/{conv['id']}", json={})
    assert r.status_code == 422


async def test_post_as_bot_and_private_note(api: httpx.AsyncClient) -> None:
    conv = await open_conversation(api, "u")
    r = await api.post(
        f"/v1/conversations/{conv['id']}/messages",
        json={"content": {"type": "text", "text": "bot here"}, "author": {"type": "bot", "id": "faq"}},
    )
    assert r.status_code == 201
    assert r.json()["author"] == {"type": "bot", "id": "faq"} and r.json()["seq"] == 2
    r = await api.post(
        f"/v1/conversations/{conv['id']}/messages",
        json={"content": {"type": "text", "text": "note"}, "private": True},
    )
    assert r.json()["private"] is True and r.json()["status"] == "sent"


async def test_history_limit_and_after_seq(api: httpx.AsyncClient) -> None:
    conv = await open_conversation(api, "u")
    for i in range(5):
        await api.post(f"/v1/conversations/{conv['id']}/messages", json={"content": {"type": "text", "text": str(i)}})
    page = (await api.get(f"/v1/conversations/{conv['id']}/messages?after_seq=2&limit=2")).json()
    assert [m["seq"] for m in page["data"]] == [3, 4] and page["has_more"] is True


async def test_resolved_conversation_reopens_on_new_inbound_and_new_outbound_opens_fresh(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    conv = await open_conversation(api, "u")
    resolve = await api.patch(f"/v1/conversations/{conv['id']}", json={"status": "resolved"})
    assert resolve.json()["status"] == "resolved"

    # The customer writes again (what an inbound channel or the widget does): same conversation.
    inbound = NewMessage(
        workspace["workspace_id"], {"type": "text", "text": "me again"}, Direction.INBOUND,
        "contact", conversation_id=conv["id"], contact_id=conv["contact_id"],
    )
    posted = await services.conversations.post_message(inbound)
    assert posted.message["conversation_id"] == conv["id"] and posted.message["seq"] == 2
    reopened = (await api.get(f"/v1/conversations/{conv['id']}")).json()
    assert reopened["status"] == "open" and reopened["last_seq"] == 2

    # Resolved again, the workspace writes first: a fresh conversation, the old one untouched.
    await api.patch(f"/v1/conversations/{conv['id']}", json={"status": "resolved"})
    again = await open_conversation(api, "u")
    assert again["id"] != conv["id"] and again["status"] == "open"
    assert again["contact_id"] == conv["contact_id"]
    old = (await api.get(f"/v1/conversations/{conv['id']}")).json()
    assert old["status"] == "resolved" and old["last_seq"] == 2
