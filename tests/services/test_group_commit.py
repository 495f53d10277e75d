"""Concurrent posts are stored together; each still gets its own, correct answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from chat.app import create_app
from chat.db import models as m
from chat.domain.enums import Direction
from chat.domain.errors import NotFound
from chat.services.conversations import NewMessage
from chat.services.group_commit import GroupCommit
from chat.services.identities import contact_for_address


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
        history = (await services.inbox.history(ws, r.message["conversation_id"], after_seq=r.message["seq"] - 1, limit=1))["data"]
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

    async def store_group(items: Any, _locked: Any) -> list[Any]:
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


# --- the fallback: a group that fails as a whole is stored one post at a time ---------------

POISON_SQLITE = """
CREATE TRIGGER parley_test_poison BEFORE INSERT ON messages
WHEN NEW.client_message_id = 'poison'
BEGIN SELECT RAISE(ABORT, 'poisoned row'); END
"""
POISON_PG = [
    """
    CREATE FUNCTION parley_test_poison() RETURNS trigger AS $$
    BEGIN
      IF NEW.client_message_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER parley_test_poison BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION parley_test_poison()
    """,
]
CURE_SQLITE = ["DROP TRIGGER IF EXISTS parley_test_poison"]
CURE_PG = [
    "DROP TRIGGER IF EXISTS parley_test_poison ON messages",
    "DROP FUNCTION IF EXISTS parley_test_poison()",
]


@pytest.fixture
async def poisoned(services: Any) -> AsyncIterator[str]:
    """The database refuses to store a message whose client_message_id is this key:
    a real failure inside the group's INSERT, which no check before it can foresee."""
    engine = services.db.engine
    sqlite = services.db.is_sqlite
    async with engine.begin() as conn:
        for sql in [POISON_SQLITE] if sqlite else POISON_PG:
            await conn.execute(text(sql))
    try:
        yield "poison"
    finally:
        async with engine.begin() as conn:
            for sql in CURE_SQLITE if sqlite else CURE_PG:
                await conn.execute(text(sql))


async def test_a_group_that_fails_as_a_whole_stores_the_good_posts_one_by_one(
    services: Any, workspace: dict[str, str], poisoned: str
) -> None:
    ws = workspace["workspace_id"]
    mine, theirs = await open_conversations(services, ws, 2)
    posts = [
        text_in(ws, mine, "a", client_message_id="a"),
        text_in(ws, theirs, "b"),
        text_in(ws, mine, "bad", client_message_id=poisoned),
        text_in(ws, theirs, "c"),
        text_in(ws, mine, "d"),
    ]
    # Submitted together, so they form one group (as concurrent socket messages do).
    results = await asyncio.gather(
        *(services.conversations.post_message(p) for p in posts), return_exceptions=True
    )

    assert isinstance(results[2], Exception) and "poisoned row" in str(results[2])
    good = [r for i, r in enumerate(results) if i != 2]
    assert all(not isinstance(r, BaseException) and r.created for r in good), results
    for conv, texts in ((mine, ["open", "a", "d"]), (theirs, ["open", "b", "c"])):
        history = (await services.inbox.history(ws, conv["id"], after_seq=0, limit=100))["data"]
        assert [(m["seq"], m["content"]["text"]) for m in history] == list(
            enumerate(texts, start=1)
        )
        assert (await services.inbox.get(ws, conv["id"]))["last_seq"] == 3
    # Each answer names the message that was stored.
    stored = {
        m["id"]: m["seq"]
        for conv in (mine, theirs)
        for m in (await services.inbox.history(ws, conv["id"], after_seq=0, limit=100))["data"]
    }
    assert all(stored[r.message["id"]] == r.message["seq"] for r in good)

    # The group commit is still healthy for the next posts.
    again = await services.conversations.post_message(text_in(ws, mine, "e"))
    assert again.message["seq"] == 4


async def waiting_on_locks(services: Any) -> int:
    async with services.db.read() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


async def test_a_client_message_id_stored_by_another_process_meanwhile_answers_the_first(
    settings: Any, services: Any, workspace: dict[str, str]
) -> None:
    """Two processes (two apps on one database, each with its own group commit) store
    one client_message_id at the same time: the database's unique key fails one group
    whole; its posts are stored one by one, and the repeat answers with the first.

    On PostgreSQL the test holds the conversation's row lock until both groups have
    checked for repeats and wait for it, so the race happens every time. SQLite has one
    writer (and this process runs its calls inline), so there the groups take turns and
    the second finds the first's message: the same answers, without the race."""
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    other = create_app(settings)
    async with other.router.lifespan_context(other), services.db.engine.connect() as holder:
        elsewhere = other.state.services
        if not services.db.is_sqlite:
            await holder.begin()
            await holder.execute(
                text("SELECT id FROM conversations WHERE id = :id FOR UPDATE"), {"id": conv["id"]}
            )
        posting = [
            services.conversations.post_message(text_in(ws, conv, "here", client_message_id="k")),
            elsewhere.conversations.post_message(text_in(ws, conv, "before")),
            elsewhere.conversations.post_message(text_in(ws, conv, "there", client_message_id="k")),
            elsewhere.conversations.post_message(text_in(ws, conv, "after")),
        ]
        tasks = [asyncio.ensure_future(p) for p in posting]
        if not services.db.is_sqlite:
            async with asyncio.timeout(10):  # a bound for failure only
                while await waiting_on_locks(services) < 2:
                    await asyncio.sleep(0.01)
            await holder.rollback()
        here, before, there, after = await asyncio.gather(*tasks)
    assert here.message["id"] == there.message["id"]
    assert [here.created, there.created].count(True) == 1
    assert before.created and after.created
    history = (await services.inbox.history(ws, conv["id"], after_seq=0, limit=100))["data"]
    assert [m["seq"] for m in history] == [1, 2, 3, 4]
    assert sorted(m["content"]["text"] for m in history[1:]) == sorted(
        ["before", "after", here.message["content"]["text"]]
    )


async def test_repeat_keys_are_looked_up_one_by_one_in_their_index(
    services: Any, workspace: dict[str, str]
) -> None:
    """PostgreSQL: the client_message_id lookup of a group uses the unique index per
    key even while the statistics are those of an empty table (a burst of messages
    into a new database), rather than filtering every message of the workspace."""
    if services.db.is_sqlite:
        pytest.skip("the PostgreSQL statement's plan")
    from chat.services.message_store import _REPEATS_PG

    ws = workspace["workspace_id"]
    convs = await open_conversations(services, ws, 4)
    await asyncio.gather(*(
        services.conversations.post_message(text_in(ws, convs[i % 4], str(i), client_message_id=f"k{i}"))
        for i in range(1200)
    ))
    keys = [f"k{i}" for i in range(0, 1200, 12)] + ["unknown"]
    async with services.db.engine.connect() as conn:
        compiled = _REPEATS_PG.compile(dialect=conn.dialect)
        sql = str(compiled).replace("%(b_ws)s", "$1").replace("%(b_keys)s", "$2")
        raw = await conn.get_raw_connection()
        plan = await raw.driver_connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", [ws] * len(keys), keys)
        found = await conn.execute(_REPEATS_PG, {"b_ws": [ws] * len(keys), "b_keys": keys})
        assert sorted(r.client_message_id for r in found) == sorted(keys[:-1])
    nodes = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append((node["Node Type"], node.get("Relation Name"), node.get("Index Name")))
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"])
    on_messages = [n for n in nodes if n[1] == "messages"]
    assert on_messages and all(
        kind in ("Index Scan", "Index Only Scan") and index == "messages_workspace_id_client_message_id_key"
        for kind, _, index in on_messages
    ), nodes
