"""Inbound provider webhooks stored per second: signed Twilio SMS callbacks POSTed to a
real ``parley serve`` (core 0) by concurrent clients (core 1).

    .venv/bin/python bench/inbound.py [--db sqlite|pg] [--seconds 10] [--clients 64] [--quick]

Three closed loops against the same server, one after the other:
- ``GET /health``: the HTTP stack alone (the ceiling of this server and load);
- a callback with a wrong ``X-Twilio-Signature``: answered 401 after the signature check,
  nothing stored (the cost of reading and verifying a callback);
- signed inbound SMS: each a new ``MessageSid`` from one of 1,000 numbers (after the first
  round each a known contact with an open conversation), verified, stored through the
  write path and answered with TwiML. The figure is stored messages per second; the run
  counts the stored inbound messages afterwards and says if any is missing.

``--quick``: 3 seconds per loop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy import func, select

from bench.sends import ROOT, Server
from chat.db import models as m
from chat.db.engine import Database
from connectors.twilio_sms import compute_signature

ACCOUNT_SID = "AC" + "0c" * 16
AUTH_TOKEN = "bench-inbound-auth-token"
_sids = itertools.count(1)

Request = Callable[[aiohttp.ClientSession, int, int], Any]


def sender(n: int) -> str:
    return f"+1415{200 + n // 10_000:03d}{n % 10_000:04d}"


def sms_form(n: int, i: int) -> dict[str, str]:
    sid = f"SM{next(_sids):032x}"
    return {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": f"Where is order {i}?",
        "From": sender((n * 7919 + i) % 1000), "MessageSid": sid, "NumMedia": "0",
        "NumSegments": "1", "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received",
        "To": "+14155550100",
    }  # fmt: skip


async def closed_loop(clients: int, seconds: float, request: Request, expect: int) -> dict[str, float]:
    done = [0]
    errors = [0]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as http:

        async def client(n: int) -> None:
            for i in itertools.count():
                if time.monotonic() >= deadline:
                    return
                started = time.monotonic()
                async with request(http, n, i) as r:
                    await r.read()
                    if r.status == expect:
                        done[0] += 1
                        latencies.append(time.monotonic() - started)
                    else:
                        errors[0] += 1

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return {"per_s": done[0] / elapsed, "count": done[0], "errors": errors[0], "p99_ms": p99}


async def stored_inbound(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(m.Message).where(m.Message.direction == "inbound")
                ) or 0
            )
    finally:
        await db.dispose()


async def load(server: Server, key: str, seconds: float, clients: int) -> dict[str, dict[str, float]]:
    await server.ready()
    base = f"http://127.0.0.1:{server.port}"
    config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+14155550100"}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, http.post(
        f"{base}/v1/channels", json={"type": "sms", "name": "bench", "config": config}
    ) as r:
        channel_id = (await r.json())["id"]
    hook = f"{base}/webhooks/{channel_id}"

    def health(http: aiohttp.ClientSession, n: int, i: int) -> Any:
        return http.get(f"{base}/health")

    def signed(http: aiohttp.ClientSession, n: int, i: int, wrong: bool = False) -> Any:
        form = sms_form(n, i)
        signature = compute_signature("not the token" if wrong else AUTH_TOKEN, hook,
                                      {k: [v] for k, v in form.items()})  # fmt: skip
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
        return http.post(hook, data=urlencode(form), headers=headers)

    await closed_loop(clients, min(2.0, seconds), signed, 200)  # warm up; the 1,000 contacts
    before = await stored_inbound(server.db_url)
    found = {
        "GET /health": await closed_loop(clients, seconds, health, 200),
        "wrong signature (401, nothing stored)": await closed_loop(
            clients, seconds, lambda h, n, i: signed(h, n, i, wrong=True), 401
        ),
        "signed inbound SMS, stored": await closed_loop(clients, seconds, signed, 200),
    }
    stored = await stored_inbound(server.db_url) - before
    found["signed inbound SMS, stored"]["stored"] = stored
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="3 seconds per loop")
    args = ap.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load; the server gets core 0
    server = Server(ROOT, args.db)
    try:
        key = server.start()
        results = asyncio.run(load(server, key, seconds, args.clients))
    finally:
        server.stop()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=False, capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"# bench/inbound.py --db {args.db} --seconds {seconds} --clients {args.clients}; parley {head}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; server on core 0, load on core 1")
    print("| request | answered/s | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in results.items():
        note = ""
        if "stored" in r and r["stored"] != r["count"]:
            note = f" ({r['stored']:,.0f} stored of {r['count']:,.0f} answered)"
        print(f"| {name} | {r['per_s']:,.0f}{note} | {r['p99_ms']:.1f} | {r['errors']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
