"""Groups in flight together (PostgreSQL): the next group runs while the previous commits,
and seqs stay gap-free and in each client's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chat.services.group_commit import Committing, GroupCommit
from tests.services.test_group_commit import open_conversations, text_in


class Recorder:
    """A store whose commits wait until the test lets them finish."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.commit = asyncio.Event()

    async def store_group(self, items: Sequence[str], committing: Committing) -> list[Any]:
        self.started.append(list(items))
        committing()
        await self.commit.wait()
        return list(items)

    async def store_one(self, item: str) -> str:
        return item


async def turns(n: int = 40) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_the_next_group_starts_while_the_previous_one_commits() -> None:
    store = Recorder()
    group: GroupCommit[str, str] = GroupCommit(store.store_group, store.store_one, in_flight=2)
    a = asyncio.ensure_future(group.submit("a"))
    await turns()
    b = asyncio.ensure_future(group.submit("b"))
    await turns()
    assert store.started == [["a"], ["b"]]  # b's group runs while a's is still committing
    c = asyncio.ensure_future(group.submit("c"))
    await turns()
    assert store.started == [["a"], ["b"]]  # two in flight at most: c waits for a slot
    store.commit.set()
    assert await asyncio.gather(a, b, c) == ["a", "b", "c"]
    assert store.started == [["a"], ["b"], ["c"]]


async def test_with_one_in_flight_a_group_starts_when_the_previous_is_over() -> None:
    store = Recorder()
    group: GroupCommit[str, str] = GroupCommit(store.store_group, store.store_one, in_flight=1)
    a = asyncio.ensure_future(group.submit("a"))
    await turns()
    b = asyncio.ensure_future(group.submit("b"))
    await turns()
    assert store.started == [["a"]]
    store.commit.set()
    assert await asyncio.gather(a, b) == ["a", "b"]
    assert store.started == [["a"], ["b"]]


async def test_concurrent_writers_on_shared_conversations_get_gap_free_seqs_in_their_order(
    services: Any, workspace: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers post in closed loops, two per conversation, while a client sends a stream
    without waiting for its acks: groups overlap (on PostgreSQL), a conversation in two
    groups waits at its row lock for the first commit."""
    ws = workspace["workspace_id"]
    convs = await open_conversations(services, ws, 8)

    # A slow disk: every COMMIT takes a while, so later groups start meanwhile.
    write = services.db.write

    @asynccontextmanager
    async def slow_write() -> AsyncIterator[Any]:
        async with write() as session:
            yield session
            await asyncio.sleep(0.005)

    monkeypatch.setattr(services.db, "write", slow_write)
    group = services.conversations._group
    store_group, running, most = group.store_group, [0], [0]

    async def counted(items: Sequence[Any], committing: Committing) -> list[Any]:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            return await store_group(items, committing)  # type: ignore[no-any-return]
        finally:
            running[0] -= 1

    monkeypatch.setattr(group, "store_group", counted)

    async def closed_loop(conv: dict[str, Any], name: str) -> list[int]:
        seqs = []
        for n in range(12):
            posted = await services.conversations.post_message(
                text_in(ws, conv, f"{name}-{n}", client_message_id=f"{name}-{n}")
            )
            seqs.append(posted.message["seq"])
        return seqs

    async def stream(conv: dict[str, Any]) -> list[int]:
        sends = []
        for n in range(40):
            sends.append(asyncio.ensure_future(
                services.conversations.post_message(text_in(ws, conv, f"stream-{n}"))
            ))
            await asyncio.sleep(0.001 if n % 3 == 0 else 0)
        return [p.message["seq"] for p in await asyncio.gather(*sends)]

    writers = [closed_loop(c, f"{c['id']}-{w}") for c in convs for w in range(2)]
    *loops, streamed = await asyncio.gather(*writers, stream(convs[0]))
    assert most[0] == (1 if services.db.is_sqlite else 2)  # SQLite: one writer at a time

    for seqs in [*loops, streamed]:
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # each client's own order
    assert streamed == sorted(streamed)
    for conv in convs:
        history = (await services.inbox.history(ws, conv["id"], after_seq=0, limit=200))["data"]
        expected = 1 + 24 + (40 if conv is convs[0] else 0)
        assert [m["seq"] for m in history] == list(range(1, expected + 1))
        assert (await services.inbox.get(ws, conv["id"]))["last_seq"] == expected
