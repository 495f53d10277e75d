"""Outbound drain: how fast the delivery worker empties a pre-filled outbox through a
provider that takes 50 ms to answer each send.

    .venv/bin/python bench/drain.py [--db sqlite|pg] [--messages 6000] [--delay 0.05] [--quick]

1. The fake provider (bench/provider.py, Twilio's Messages API shape) runs in its own
   process on core 1 and answers every send after ``--delay`` seconds.
2. This process, on core 0, builds the app as ``parley serve`` does (its lifespan, with
   the worker stopped), creates an ``sms`` channel whose ``api_base_url`` is the fake,
   and queues ``--messages`` messages to distinct numbers through ``POST /v1/messages``
   (batches of 1,000).
3. The worker starts; the figure is messages handed over and recorded (``deliver``
   entries done) per second, from the start until the outbox is empty.

Baselines, same run: the same number of sends straight from one ``httpx`` client with as
many in flight as the worker allows on one channel (``worker_max_per_lane``), no
database (the ceiling the provider's delay and one HTTP client leave); and the worker
with its sends on one HTTP client (``delivery_http_clients=1``, as before that setting)
next to the default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, select

from chat.app import create_app
from chat.db import models as m
from chat.db.migrate import ensure_schema
from chat.services import outbox
from chat.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_SID = "AC" + "0b" * 16


@asynccontextmanager
async def provider(delay: float) -> AsyncIterator[str]:
    """bench/provider.py in its own process (core 1 when there is one); its base URL."""
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 else []
    proc = await asyncio.create_subprocess_exec(
        *pin, sys.executable, str(ROOT / "bench" / "provider.py"), "--delay", str(delay),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        await proc.wait()


def numbers(count: int) -> list[str]:
    """Distinct valid US numbers: +1 415 XXX XXXX with exchanges from 200."""
    return [f"+1415{200 + i // 10_000:03d}{i % 10_000:04d}" for i in range(count)]


async def prefill(api: httpx.AsyncClient, base: str, count: int) -> None:
    config = {"account_sid": ACCOUNT_SID, "auth_token": "bench-token",
              "from_number": "+14155550100", "api_base_url": base}  # fmt: skip
    r = await api.post("/v1/channels", json={"type": "sms", "name": "bench", "config": config})
    assert r.status_code == 201, r.text
    to = numbers(count)
    for start in range(0, count, 1000):
        batch = [{"address": a} for a in to[start : start + 1000]]
        body = {"channel": "sms", "to": batch, "content": {"type": "text", "text": "Your code is 1234"}}
        r = await api.post("/v1/messages", json=body)
        assert r.status_code == 202, r.text[:500]


async def drained(app: Any) -> int:
    async with app.state.services.db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(m.OutboxEntry).where(
                    m.OutboxEntry.kind == outbox.DELIVER, m.OutboxEntry.state != "pending"
                )
            ) or 0
        )


async def sent_ok(app: Any) -> int:
    async with app.state.services.db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(m.Message).where(m.Message.status == "sent")
            ) or 0
        )


async def run_parley(url: str, base: str, count: int, **overrides: Any) -> dict[str, Any]:
    await ensure_schema(url)
    settings = Settings(
        _env_file=None, database_url=url, redis_url=None, worker_enabled=False,
        api_rate_per_second=1e9, api_rate_burst=10**9, **overrides,
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        keys = await services.workspaces.create("bench")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench",
            headers={"Authorization": f"Bearer {keys['api_key']}"}, timeout=120,
        ) as api:  # fmt: skip
            await prefill(api, base, count)
        async with httpx.AsyncClient() as http:
            await http.post(f"{base}/stats/reset")
            worker = app.state.runtime.worker
            c0, t0 = time.process_time(), time.perf_counter()
            worker.start()
            while (done := await drained(app)) < count:
                await asyncio.sleep(0.05)
            t1, c1 = time.perf_counter(), time.process_time()
            stats = (await http.get(f"{base}/stats")).json()
        ok = await sent_ok(app)
    return {
        "per_s": count / (t1 - t0),
        "seconds": t1 - t0,
        "cpu": (c1 - c0) / (t1 - t0),
        "done": done,
        "sent": ok,
        "max_in_flight": stats["max_in_flight"],
        "provider_sends": stats["sends"],
    }


async def run_bare(base: str, count: int, concurrency: int) -> dict[str, Any]:
    """The ceiling: ``count`` sends with ``concurrency`` in flight, nothing else."""
    url = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    left = iter(numbers(count))
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(f"{base}/stats/reset")

        async def sender() -> None:
            for to in left:
                r = await http.post(url, data={"To": to, "From": "+14155550100", "Body": "x"},
                                    auth=(ACCOUNT_SID, "bench-token"))  # fmt: skip
                assert r.status_code == 201

        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        t1, c1 = time.perf_counter(), time.process_time()
        stats = (await http.get(f"{base}/stats")).json()
    return {"per_s": count / (t1 - t0), "seconds": t1 - t0, "cpu": (c1 - c0) / (t1 - t0),
            "max_in_flight": stats["max_in_flight"]}  # fmt: skip


async def admin_sql(sql: str) -> None:
    import asyncpg

    admin = os.environ.get("PARLEY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def database(db: str) -> AsyncIterator[str]:
    """A fresh, empty database; dropped (PostgreSQL) afterwards."""
    if db == "sqlite":
        yield f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='parley-drain-')}/drain.db"
        return
    name = f"parley_drain_{secrets.token_hex(4)}"
    await admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(db: str, count: int, delay: float) -> dict[str, dict[str, Any]]:
    defaults = Settings(_env_file=None)
    lane, clients = defaults.worker_max_per_lane, defaults.delivery_http_clients
    label = "SQLite" if db == "sqlite" else "PostgreSQL"
    async with provider(delay) as base:
        results = {f"bare httpx, {lane} in flight, no database": await run_bare(base, count, lane)}
        for n in (1, clients):
            async with database(db) as url:
                name = f"parley worker, {label}, {n} HTTP client{'s' if n > 1 else ''}"
                results[name] = await run_parley(url, base, count, delivery_http_clients=n)
        return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--messages", type=int, default=6000)
    ap.add_argument("--delay", type=float, default=0.05, help="the provider's answer time, seconds")
    ap.add_argument("--quick", action="store_true", help="2,000 messages (a few seconds)")
    args = ap.parse_args(argv)
    count = 2000 if args.quick else args.messages
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # Parley on core 0, the provider on core 1
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(measure(args.db, count, args.delay))
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=False, capture_output=True, text=True).stdout.strip()  # fmt: skip
    quick = " --quick" if args.quick else f" --messages {count}"
    print(f"# bench/drain.py --db {args.db}{quick} --delay {args.delay}; parley {head}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          "Parley on core 0, the provider on core 1")
    print("| sender | messages | drained/s | seconds | CPU of core 0 | CPU ms per message | most in flight at the provider |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        extra = "" if "sent" not in r or r["sent"] == count else f" (only {r['sent']} sent)"
        cpu_ms = r["cpu"] * r["seconds"] / count * 1000
        print(f"| {name} | {count:,} | {r['per_s']:,.0f}{extra} | {r['seconds']:.2f} | "
              f"{r['cpu']:.0%} | {cpu_ms:.2f} | {r['max_in_flight']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
