"""The database handle: engine, sessions, and the write path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chat.db.checkpoints import BACKSTOP_PAGES, WalCheckpoints
from chat.db.inline_sqlite import connect_inline
from chat.domain import jsontext


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            # Concurrent requests each check a connection out (reads need no gate); past
            # the pool's size every extra one was opened (with its PRAGMAs) and closed again
            # per use: 2,020 opens for 3,200 uses by 64 concurrent callers with the default
            # 5 + 10. A SQLite connection is a file handle and a page cache: keep many.
            pool_size=64,
            max_overflow=64,
            connect_args={"timeout": 30, "async_creator_fn": connect_inline},
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run in a thread of their own (chat.db.checkpoints); this one is
            # the backstop, should that thread fall behind.
            cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            cur.close()

        return engine
    return create_async_engine(
        url,
        pool_size=20,
        max_overflow=20,
        pool_pre_ping=True,
        # asyncpg prepares every statement; after five runs PostgreSQL may switch it to a
        # generic plan chosen while the tables were small (measured: the client_message_id
        # lookup of a group commit went from 4 ms to 17 ms as messages grew). Planning
        # with the actual values each time costs far less than such a plan.
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )


class Database:
    """Sessions for reads, and a write path that is safe on SQLite's single writer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising writers here turns "database is
        # locked" errors into a short wait. PostgreSQL needs no such gate.
        self._write_gate = asyncio.Lock() if self.is_sqlite else None
        path = make_url(url).database if self.is_sqlite else None
        # Started by the first write: a database only read needs none.
        self.checkpoints = WalCheckpoints(path) if path and path != ":memory:" else None
        # SQLite: the one connection that ``write_connection`` writes on, kept open so
        # that ``data_version`` on it tells whether any other connection committed since.
        self._writer: AsyncConnection | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back on any error."""
        if self._write_gate is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        if self.checkpoints is not None:
            self.checkpoints.start()
        async with self._write_gate, self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """``write`` on a plain connection, without an ORM session around it: for the
        message write path, which runs Core statements only (the session's bookkeeping
        and its flush at commit cost about as much as a small statement). On SQLite it
        is always the same connection (see ``commits_seen``)."""
        if self._write_gate is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        if self.checkpoints is not None:
            self.checkpoints.start()
        async with self._write_gate:
            if self._writer is None or self._writer.closed or self._writer.invalidated:
                self._writer = await self.engine.connect()
            writer = self._writer
            try:
                async with writer.begin():
                    yield writer
            except BaseException:
                # Whatever state a failure left it in, the next write starts afresh.
                self._writer = None
                await writer.close()
                raise

    @staticmethod
    async def commits_seen(conn: AsyncConnection) -> int | None:
        """SQLite: a number that changes whenever a connection other than ``conn``
        (in this process or another) commits (``PRAGMA data_version``); with
        ``write_connection``'s connection, what was read on it stays true while this is
        unchanged. None on PostgreSQL, where other processes write at any time."""
        if conn.dialect.name != "sqlite":
            return None
        return int((await conn.exec_driver_sql("PRAGMA data_version")).scalar_one())

    async def dispose(self) -> None:
        if self.checkpoints is not None:
            await asyncio.to_thread(self.checkpoints.stop)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        await self.engine.dispose()
