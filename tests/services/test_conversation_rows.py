"""The SQLite write path keeps the conversation rows it wrote between groups, and reads
them again whenever another connection (this process's or another's) committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from chat.services.conversation_rows import ConversationRows
from chat.services.statuses import Row
from tests.services.test_group_commit import open_conversations, text_in


def test_rows_are_kept_only_while_nothing_else_committed() -> None:
    rows = ConversationRows()
    got = rows.valid_at(7)
    assert got == {}
    got["c1"] = Row(id="c1", last_seq=1)
    rows.keep(7)
    assert rows.valid_at(7) == {"c1": Row(id="c1", last_seq=1)}
    assert rows.valid_at(8) == {}  # another connection committed
    assert rows.valid_at(8) == {}  # and nothing was kept at 8


def test_no_commit_counter_no_rows() -> None:
    rows = ConversationRows()
    rows.valid_at(None)["c1"] = Row(id="c1")
    rows.keep(None)
    assert rows.valid_at(None) == {}


def test_forget_after_a_failed_group() -> None:
    rows = ConversationRows()
    rows.valid_at(1)["c1"] = Row(id="c1")
    rows.keep(1)
    rows.valid_at(1)["c1"].last_seq = 99  # changed in memory, then the commit failed
    rows.forget()
    assert rows.valid_at(1) == {}


def test_the_longest_kept_rows_go_past_the_limit() -> None:
    rows = ConversationRows(limit=3)
    got = rows.valid_at(1)
    for i in range(5):
        got[f"c{i}"] = Row(id=f"c{i}")
    rows.keep(1)
    assert list(rows.valid_at(1)) == ["c2", "c3", "c4"]


@pytest.fixture
def conversation_reads(services: Any) -> Iterator[list[str]]:
    """The statements that read conversation rows for the write path's lock step."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM conversations" in statement and "ORDER BY conversations.id" in statement:
            seen.append(statement)

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sqlite_path(services: Any) -> str:
    if not services.db.is_sqlite:
        pytest.skip("the rows are kept on SQLite only (PostgreSQL locks them FOR UPDATE)")
    return str(make_url(services.db.url).database)


async def test_a_second_group_does_not_read_its_rows_again(
    services: Any, workspace: dict[str, str], conversation_reads: list[str]
) -> None:
    sqlite_path(services)
    ws = workspace["workspace_id"]
    convs = await open_conversations(services, ws, 3)
    await asyncio.gather(*(services.conversations.post_message(text_in(ws, c, "a")) for c in convs))
    conversation_reads.clear()
    results = await asyncio.gather(*(services.conversations.post_message(text_in(ws, c, "b")) for c in convs))
    assert conversation_reads == []
    assert [r.message["seq"] for r in results] == [3, 3, 3]
    assert [r.conversation["last_seq"] for r in results] == [3, 3, 3]


async def test_a_change_through_another_connection_of_this_process_is_read(
    services: Any, workspace: dict[str, str], conversation_reads: list[str]
) -> None:
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    await services.conversations.post_message(text_in(ws, conv, "a"))
    await services.inbox.update(ws, conv["id"], status="resolved")  # Database.write
    conversation_reads.clear()
    posted = await services.conversations.post_message(text_in(ws, conv, "b"))
    assert posted.conversation["status"] == "open"  # the customer reopened it
    assert (await services.inbox.get(ws, conv["id"]))["status"] == "open"
    if services.db.is_sqlite:
        assert len(conversation_reads) == 1


async def test_a_change_by_another_process_is_read(
    services: Any, workspace: dict[str, str], conversation_reads: list[str]
) -> None:
    """Another process (a CLI command, say) resolves the conversation and stores a
    message with the next seq, on its own connection to the file."""
    path = sqlite_path(services)
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    first = await services.conversations.post_message(text_in(ws, conv, "a"))
    other = sqlite3.connect(path)
    try:
        with other:
            other.execute(
                "INSERT INTO messages (id, workspace_id, conversation_id, seq, direction, author_type,"
                " author_id, content, status, private, created_at, updated_at)"
                " SELECT 'msg_other', workspace_id, conversation_id, seq + 1, direction, author_type,"
                " author_id, '{\"type\": \"text\", \"text\": \"other\"}', status, private, created_at,"
                " updated_at FROM messages WHERE id = ?",
                (first.message["id"],),
            )
            other.execute(
                "UPDATE conversations SET last_seq = last_seq + 1, status = 'resolved' WHERE id = ?",
                (conv["id"],),
            )
    finally:
        other.close()
    conversation_reads.clear()
    posted = await services.conversations.post_message(text_in(ws, conv, "b"))
    assert posted.created and posted.message["seq"] == 4
    assert posted.conversation["status"] == "open"
    assert len(conversation_reads) == 1
    history = (await services.inbox.history(ws, conv["id"], after_seq=0, limit=10))["data"]
    assert [m["content"]["text"] for m in history] == ["open", "a", "other", "b"]


async def test_a_conversation_resolved_by_another_process_is_reopened(
    services: Any, workspace: dict[str, str], conversation_reads: list[str]
) -> None:
    path = sqlite_path(services)
    ws = workspace["workspace_id"]
    [conv] = await open_conversations(services, ws, 1)
    await services.conversations.post_message(text_in(ws, conv, "a"))
    other = sqlite3.connect(path)
    try:
        with other:
            other.execute("UPDATE conversations SET status = 'resolved' WHERE id = ?", (conv["id"],))
    finally:
        other.close()
    conversation_reads.clear()
    posted = await services.conversations.post_message(text_in(ws, conv, "b"))
    assert (posted.message["seq"], posted.conversation["status"]) == (3, "open")
    assert (await services.inbox.get(ws, conv["id"]))["status"] == "open"
    assert len(conversation_reads) == 1
