"""chat/db/checkpoints.py: a SQLite database's WAL is copied back by a thread of its own,
started by the first write and stopped with the database; the connections' own
automatic checkpoint is only a backstop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from chat.db.checkpoints import BACKSTOP_PAGES
from chat.db.engine import Database


async def test_writes_are_checkpointed_off_the_event_loop(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    assert db.checkpoints is not None
    db.checkpoints.interval = 0.05
    try:
        async with db.read() as session:
            mark = (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert mark == BACKSTOP_PAGES
        assert db.checkpoints.runs == 0, "a database only read starts no thread"
        async with db.write_connection() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
        for i in range(20):
            async with db.write_connection() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": f"{i}-{j}" * 50} for j in range(100)])
        for _ in range(200):
            last = db.checkpoints.last
            if last is not None and last[1] > 0 and last[1] == last[2]:
                break
            await asyncio.sleep(0.05)
        _busy, wal_pages, copied = db.checkpoints.last or (0, 0, 0)
        assert wal_pages > 0 and copied == wal_pages, db.checkpoints.last
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2000
    finally:
        await db.dispose()
    thread = db.checkpoints._thread
    assert thread is not None and not thread.is_alive()

