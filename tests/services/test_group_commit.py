"""Concurrent posts are stored together; each still gets its own, correct answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from chat.db import models as m
from chat.domain.enums import Direction
from chat.domain.errors import NotFound
from chat.services.conversations import NewMessage
from chat.services.identities import contact_for_address
from chat.services.group_commit import GroupCommit


async def open_conversations(services: Any, ws: str, n: int) -> list[dict[str, Any]]:
    async with services.db.read() as session:
        channel = await session.scalar(select(m.Channel.id).where(m.Channel.workspace_id == ws))
    convs = []
    for i in range(n):
        async with services.db.write() as session:
            contact = (await contact_for_address(session, ws, "inapp", f"user-{i}")).id
        posted = await services.conversations.post_message(
            NewMessage(ws, {"type": "text", "text": "open"}, Direction.INBOUND, "contact",
                       contact_id=contact, channel_id=channel)
        )
        convs.append(posted.conversation)
    return convs


def text_in(ws: str, conv: dict[str, Any], body: str, **kw: Any) -> NewMessage:
    return NewMessage(ws, {"type": "text", "text": body}, Direction.INBOUND, "contact",
                      conversation_id=conv["id"], contact_id=conv["contact_id"], **kw)


async def test_a_burst_over_many_conversations_gets_gap_free_seqs(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    convs = await open_conversations(services, ws, 10)
    posts = [text_in(ws, convs[i % 10], f"m{i}") for i in range(300)]
    results = await asyncio.gather(*(services.conversations.post_message(p) for p in posts))
    by_conv: dict[str, list[int]] = {}
    for r in results:
        by_conv.setdefault(r.message["conversation_id"], []).append(r.message["seq"])
    assert all(sorted(seqs) == list(range(2, 32)) for seqs in by_conv.values())
    # every posted text is stored exactly once, at the seq its ack named
    for r in results[:20]:
        history = await services.messages.history(ws, r.message["conversation_id"], r.message["seq"] - 1, 1)
        assert history[0]["content"] == r.message["content"]


async def test_one_bad_post_does_not_fail_its_neighbours(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    mine, theirs = await open_conversations(services, ws, 2)
    spoof = NewMessage(ws, {"type": "text", "text": "spoof"}, Direction.INBOUND, "contact",
                       conversation_id=theirs["id"], contact_id=mine["contact_id"])
    posts = [text_in(ws, mine, "a"), spoof, text_in(ws, mine, "b")]
    results = await asyncio.gather(
        *(services.conversations.post_message(p) for p in posts), return_exceptions=True
    )
    assert isinstance(results[1], NotFound)
    assert sorted(r.message["seq"] for r in (results[0], results[2])) == [2, 3]
    assert (await services.inbox.get(ws, theirs["id"]))["last_seq"] == 1


async def test_repeats_of_a_client_message_id_in_one_burst_store_one_message(
    services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    posts = [text_in(ws, conv, f"try {i}", client_message_id="same") for i in range(5)]
    results = await asyncio.gather(*(services.conversations.post_message(p) for p in posts))
    assert len({r.message["id"] for r in results}) == 1
    assert sum(r.created for r in results) == 1
    async with services.db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(m.Message).where(m.Message.client_message_id == "same")
        )
    assert count == 1


@pytest.mark.parametrize("n", [1, 40])
async def test_inbound_to_a_resolved_conversation_reopens_it(services: Any, workspace: dict[str, str], n: int) -> None:
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    await services.inbox.update(ws, conv["id"], status="resolved")
    await asyncio.gather(*(services.conversations.post_message(text_in(ws, conv, str(i))) for i in range(n)))
    assert (await services.inbox.get(ws, conv["id"]))["status"] == "open"



async def test_a_post_right_after_the_last_one_is_stored_never_waits_forever() -> None:
    """Each post is submitted the moment the previous one is answered, which is when the
    flusher that found nothing more to do is stopping."""
    stored: list[int] = []

    async def store_group(items: Any) -> list[Any]:
        await asyncio.sleep(0)
        stored.extend(items)
        return list(items)

    async def store_one(item: Any) -> Any:
        return item

    group: GroupCommit[str, str] = GroupCommit(store_group, store_one)
    async with asyncio.timeout(5):  # awaited directly: a new task would hide the race
        for i in range(200):
            assert await group.submit(i) == i
    assert stored == list(range(200))
