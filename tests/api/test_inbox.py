"""The inbox's data over REST: the conversation list sorted by last activity with a preview
of the last message, the asking agent's unread count and the contact's name; history
paged forwards and backwards with an exact ``has_more``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update

from chat.db import models as m
from chat.domain.enums import Direction, MessageStatus
from chat.services.conversations import NewMessage
from chat.services.messages import Reader


async def send(api: httpx.AsyncClient, address: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    r = await api.post(
        "/v1/messages",
        json={"channel": "inapp", "to": {"address": address}, "content": {"type": "text", "text": text}, **extra},
    )
    assert r.status_code == 202, r.text
    sent: dict[str, Any] = r.json()["messages"][0]
    return sent


async def post(api: httpx.AsyncClient, conversation_id: str, text: str, **extra: Any) -> dict[str, Any]:
    r = await api.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"content": {"type": "text", "text": text}, **extra},
    )
    assert r.status_code == 201, r.text
    message: dict[str, Any] = r.json()
    return message


async def from_contact(services: Any, workspace_id: str, conversation_id: str, text: str) -> None:
    await services.conversations.post_message(
        NewMessage(
            workspace_id=workspace_id,
            content={"type": "text", "text": text},
            direction=Direction.INBOUND,
            author_type="contact",
            conversation_id=conversation_id,
        )
    )


@dataclass
class AgentClient:
    id: str
    http: httpx.AsyncClient


@pytest.fixture
async def agent(app: Any, services: Any, workspace: dict[str, str]) -> AsyncIterator[AgentClient]:
    """An agent, and a client holding its token."""
    created, password = await services.agents.create(workspace["workspace_id"], "ann@example.com", "Ann")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as c:
        r = await c.post("/v1/auth/login", json={"email": "ann@example.com", "password": password})
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield AgentClient(created["id"], c)


async def history(api: httpx.AsyncClient, conversation_id: str, query: str) -> dict[str, Any]:
    r = await api.get(f"/v1/conversations/{conversation_id}/messages?{query}")
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


# -- point 5: has_more is exact ------------------------------------------------------------


async def test_has_more_is_false_when_exactly_limit_messages_remain(api: httpx.AsyncClient) -> None:
    conv_id = (await send(api, "u"))["conversation_id"]
    for i in range(3):
        await post(api, conv_id, f"m{i}")
    # seqs 1..4: after seq 2, exactly two remain
    page = await history(api, conv_id, "after_seq=2&limit=2")
    assert [m["seq"] for m in page["data"]] == [3, 4]
    assert page["has_more"] is False
    page = await history(api, conv_id, "after_seq=1&limit=2")
    assert [m["seq"] for m in page["data"]] == [2, 3] and page["has_more"] is True
    page = await history(api, conv_id, "limit=4")
    assert len(page["data"]) == 4 and page["has_more"] is False


# -- history backwards -----------------------------------------------------------------------


async def test_history_pages_backwards_from_the_latest(api: httpx.AsyncClient) -> None:
    conv_id = (await send(api, "u", "m1"))["conversation_id"]
    for i in range(2, 8):
        await post(api, conv_id, f"m{i}")
    # seqs 1..7; start past the end and walk back three at a time
    pages = []
    before = 8
    while True:
        page = await history(api, conv_id, f"before_seq={before}&limit=3")
        pages.append(([m["seq"] for m in page["data"]], page["has_more"]))
        if not page["has_more"]:
            break
        before = page["data"][0]["seq"]
    assert pages == [([5, 6, 7], True), ([2, 3, 4], True), ([1], False)]
    # exactly `limit` before: nothing more
    page = await history(api, conv_id, "before_seq=4&limit=3")
    assert [m["seq"] for m in page["data"]] == [1, 2, 3] and page["has_more"] is False
    # both bounds: the latest of the window
    page = await history(api, conv_id, "after_seq=2&before_seq=7&limit=2")
    assert [m["seq"] for m in page["data"]] == [5, 6] and page["has_more"] is True
    page = await history(api, conv_id, "after_seq=4&before_seq=7&limit=2")
    assert [m["seq"] for m in page["data"]] == [5, 6] and page["has_more"] is False


async def test_history_is_private_to_its_workspace_and_checks_its_query(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    conv_id = (await send(api, "u"))["conversation_id"]
    assert (await other_api.get(f"/v1/conversations/{conv_id}/messages?before_seq=5")).status_code == 404
    assert (await api.get(f"/v1/conversations/{conv_id}/messages?before_seq=0")).status_code == 422
    assert (await api.get(f"/v1/conversations/{conv_id}/messages?before_seq=x")).status_code == 422


# -- the list: order, cursor, preview, unread, contact name ------------------------------------


async def test_list_sorts_by_last_activity_newest_first(api: httpx.AsyncClient) -> None:
    a = (await send(api, "a"))["conversation_id"]
    b = (await send(api, "b"))["conversation_id"]
    c = (await send(api, "c"))["conversation_id"]
    await post(api, a, "a again")  # a is now the latest
    ids = [conv["id"] for conv in (await api.get("/v1/conversations")).json()["data"]]
    assert ids == [a, c, b]


async def test_cursor_walks_ties_in_activity_exactly_once(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ids = [(await send(api, f"u{i}"))["conversation_id"] for i in range(7)]
    # Five of them share one instant (a group commit stores many at one timestamp).
    same = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    async with services.db.write() as session:
        await session.execute(
            update(m.Conversation).where(m.Conversation.id.in_(ids[1:6])).values(last_message_at=same)
        )
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == ids[0])
            .values(last_message_at=same + timedelta(microseconds=1))
        )
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == ids[6])
            .values(last_message_at=same - timedelta(microseconds=1))
        )
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        url = "/v1/conversations?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = await api.get(url)
        assert r.status_code == 200, r.text
        seen += [conv["id"] for conv in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    tied = sorted(ids[1:6], reverse=True)  # ties: newest id first
    assert seen == [ids[0], *tied, ids[6]]


async def test_a_cursor_that_is_not_one_is_refused(api: httpx.AsyncClient) -> None:
    for bad in ["cnv_123", "12.", ".cnv_1", "1.cnv 1", "x" * 81]:
        r = await api.get("/v1/conversations", params={"cursor": bad})
        assert r.status_code == 422, (bad, r.text)


async def test_each_conversation_carries_contact_name_and_last_message_preview(
    api: httpx.AsyncClient,
) -> None:
    r = await api.post("/v1/contacts", json={"name": "Zoë", "identities": [{"channel_type": "inapp", "address": "z"}]})
    assert r.status_code == 201, r.text
    conv_id = (await send(api, "z", "first"))["conversation_id"]
    await post(api, conv_id, "x" * 500)
    conv = (await api.get("/v1/conversations")).json()["data"][0]
    assert conv["id"] == conv_id and conv["contact_name"] == "Zoë"
    preview = conv["last_message"]
    assert preview["seq"] == 2 and preview["author_type"] == "system"
    assert preview["content_type"] == "text" and preview["private"] is False
    assert len(preview["text"]) == 200 and preview["text"].endswith("…")
    assert preview["at"] and preview["id"]
    # A private note is the last message for agents, flagged as such.
    note = await post(api, conv_id, "internal", private=True)
    conv = (await api.get(f"/v1/conversations/{conv_id}")).json()
    assert conv["last_message"]["id"] == note["id"]
    assert conv["last_message"]["private"] is True and conv["last_message"]["text"] == "internal"


async def test_a_scheduled_message_is_not_the_preview(api: httpx.AsyncClient) -> None:
    conv_id = (await send(api, "u", "now"))["conversation_id"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await send(api, "u", "later", send_at=later)
    conv = (await api.get(f"/v1/conversations/{conv_id}")).json()
    assert conv["last_message"]["text"] == "now"


async def test_unread_counts_the_contacts_messages_after_the_agents_read_horizon(
    agent: AgentClient, api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    a = (await send(api, "a"))["conversation_id"]
    b = (await send(api, "b"))["conversation_id"]
    for i in range(3):
        await from_contact(services, ws, a, f"a{i}")  # seqs 2, 3, 4
    await from_contact(services, ws, b, "b0")  # seq 2
    await post(api, a, "our reply")  # ours: never unread for us

    async def unread() -> dict[str, int | None]:
        data = (await agent.http.get("/v1/conversations")).json()["data"]
        return {conv["id"]: conv["unread_count"] for conv in data}

    assert await unread() == {a: 3, b: 1}
    await services.messages.acknowledge(ws, a, Reader("agent", agent.id), 3, MessageStatus.READ)
    assert await unread() == {a: 1, b: 1}
    # Another agent's reading does not count for this one.
    other, _ = await services.agents.create(ws, "bob@example.com", "Bob")
    await services.messages.acknowledge(ws, b, Reader("agent", other["id"]), 2, MessageStatus.READ)
    assert await unread() == {a: 1, b: 1}
    assert (await agent.http.get(f"/v1/conversations/{b}")).json()["unread_count"] == 1


async def test_an_api_key_reads_nothing_so_its_unread_count_is_null(api: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    conv_id = (await send(api, "a"))["conversation_id"]
    await from_contact(services, workspace["workspace_id"], conv_id, "hello?")
    [conv] = (await api.get("/v1/conversations")).json()["data"]
    assert conv["unread_count"] is None
    assert conv["last_message"]["author_type"] == "contact"
    assert (await api.get(f"/v1/conversations/{conv_id}")).json()["unread_count"] is None


async def test_a_page_costs_the_same_few_queries_whatever_its_size(
    agent: AgentClient, api: httpx.AsyncClient, services: Any
) -> None:
    for i in range(12):
        await send(api, f"u{i}")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = services.db.engine.sync_engine
    sizes = {}
    event.listen(engine, "before_cursor_execute", count)
    try:
        for limit in (2, 12):
            statements.clear()
            r = await agent.http.get(f"/v1/conversations?limit={limit}")
            assert len(r.json()["data"]) == limit
            sizes[limit] = len([s for s in statements if "conversations" in s])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sizes[2] == sizes[12] <= 2
