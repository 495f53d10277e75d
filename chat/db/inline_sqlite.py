"""An aiosqlite connection that runs SQLite calls on the event loop's own thread.

aiosqlite hands every call to a worker thread and back. On a local file in WAL mode a
SQLite call takes microseconds, while each hand-off costs two thread switches and, under
load, a wait for the GIL: measured here, that more than tripled the p99 latency of a
stored socket message. Running inline is safe because this process serialises its
writers (``Database.write``) and WAL readers never wait for writers; the price is that a
lock held by *another* process (a CLI command writing to the same file) pauses the loop
for as long as it lasts. PostgreSQL is the database for several processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connect_inline(database: str, **kwargs: Any) -> InlineConnection:
    kwargs["check_same_thread"] = False
    return InlineConnection(partial(sqlite3.connect, database, **kwargs))
