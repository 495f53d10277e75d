"""In-process storage benchmark: concurrent single-message posts through the conversation
service (group commit), no sockets.

    .venv/bin/python bench/storage.py [--db sqlite|pg] [--writers 100] [--seconds 5]

Each writer owns one conversation and posts in a closed loop (the next post after the
previous one is stored), the way socket clients waiting for their ack do. Prints stored
messages per second and per CPU second of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from chat.db import models as m
from chat.db.engine import Database
from chat.db.migrate import ensure_schema
from chat.domain.enums import Direction
from chat.services.assembly import build_services
from chat.services.conversations import NewMessage
from chat.services.identities import contact_for_address
from chat.settings import Settings


async def run(url: str, writers: int, seconds: float) -> dict[str, Any]:
    await ensure_schema(url)
    settings = Settings(_env_file=None, database_url=url, redis_url=None)
    db = Database(url)
    services = await build_services(settings, db)
    try:
        ws = (await services.workspaces.create("bench"))["workspace_id"]
        async with db.read() as session:
            channel = await session.scalar(select(m.Channel.id).where(m.Channel.workspace_id == ws))
        convs = []
        for i in range(writers):
            async with db.write() as session:
                contact = (await contact_for_address(session, ws, "inapp", f"w{i}")).id
            posted = await services.conversations.post_message(
                NewMessage(ws, {"type": "text", "text": "open"}, Direction.INBOUND, "contact",
                           contact_id=contact, channel_id=channel)
            )
            convs.append(posted.conversation)
        stored = [0]
        running = [True]

        async def writer(conv: dict[str, Any]) -> None:
            n = 0
            while running[0]:
                n += 1
                await services.conversations.post_message(
                    NewMessage(ws, {"type": "text", "text": f"message {n}"}, Direction.INBOUND,
                               "contact", conversation_id=conv["id"], contact_id=conv["contact_id"],
                               client_message_id=f"{conv['id']}-{n}")
                )
                stored[0] += 1

        tasks = [asyncio.create_task(writer(c)) for c in convs]
        await asyncio.sleep(0.5)
        c0, t0, s0 = time.process_time(), time.perf_counter(), stored[0]
        await asyncio.sleep(seconds)
        c1, t1, s1 = time.process_time(), time.perf_counter(), stored[0]
        running[0] = False
        await asyncio.gather(*tasks)
        count = s1 - s0
        return {
            "writers": writers,
            "stored_per_s": round(count / (t1 - t0)),
            "stored_per_cpu_s": round(count / max(c1 - c0, 1e-6)),
            "us_per_message": round((c1 - c0) / max(count, 1) * 1e6, 1),
        }
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--writers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.db == "sqlite":
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/storage-bench.db"
        print(asyncio.run(run(url, args.writers, args.seconds)))
        return
    import asyncpg

    name = f"parley_storage_{secrets.token_hex(4)}"
    admin = os.environ.get("PARLEY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        print(asyncio.run(run(url, args.writers, args.seconds)))
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
