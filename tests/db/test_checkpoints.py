"""chat/db/checkpoints.py: a SQLite database's WAL is copied back by a thread of its own,
started by the first write and stopped with the database; the connections' own
automatic checkpoint is only a backstop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from chat.db.checkpoints import BACKSTOP_PAGES, WalCheckpoints
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



def test_a_lasting_failure_is_logged_once_and_tried_less_often(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is no SQLite file, " * 1000)
    checkpoints = WalCheckpoints(str(broken), interval=0.01)
    with caplog.at_level(logging.INFO, logger="chat.db.checkpoints"):
        checkpoints.start()
        time.sleep(0.5)
        checkpoints.stop()
    failures = [r for r in caplog.records if "WAL checkpoint of" in r.getMessage()]
    assert len(failures) == 1, failures
    assert checkpoints.runs == 0


def test_a_file_uri_is_opened_as_a_uri(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
    checkpoints = WalCheckpoints(f"file:{path}?mode=rw", interval=0.01)
    checkpoints.start()
    try:
        for _ in range(200):
            if checkpoints.runs:
                break
            time.sleep(0.01)
    finally:
        checkpoints.stop()
    assert checkpoints.runs > 0
    assert not (Path.cwd() / f"file:{path}?mode=rw").exists()
