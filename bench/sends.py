"""The unified send measured from outside: ``POST /v1/messages`` against a real
``parley serve`` on one core, the load from another.

    .venv/bin/python bench/sends.py [--db sqlite|pg] [--seconds 10] [--channels inapp,sms] [--quick] [--baseline REV]

Two scenarios, each a closed loop (the next request after the previous answer):
- ``single``: 64 clients, one recipient per request, addresses from a pool of 1,000
  (after the first round every address is a known contact);
- ``batch``: 4 clients, 1,000 recipients per request, every address new (each becomes a
  new contact, identity and conversation).

Each runs on every channel of ``--channels``, against the same server: ``inapp`` (user
ids), and ``sms`` (E.164 numbers, an SMS channel whose ``api_base_url`` is
bench/provider.py, a fake Twilio answering each send in 50 ms, on core 1 beside the
load). On ``sms`` every accepted message is also an outbox entry the server's worker
sends while the load runs, as in production. ``--quick``: 3 seconds per scenario.

With ``--baseline REV`` the same scenarios run first against a checkout of REV (a git
worktree in a temporary folder), so both figures come from one run on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("PARLEY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


class Server:
    """``parley serve`` from the checkout ``root``, on core 0, with its own database."""

    def __init__(self, root: Path, db: str, worker: bool = True) -> None:
        self.root = root
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
        self.pg_name = f"parley_bench_{secrets.token_hex(4)}" if db == "pg" else None
        url = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.pg_name}"
            if self.pg_name else f"sqlite+aiosqlite:///{self.tmp}/bench.db"
        )
        self.db_url = url
        self.env = {
            **os.environ,
            "PARLEY_DATABASE_URL": url,
            "PARLEY_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            # A policy, not the subject: the limiter would cap what is measured.
            "PARLEY_API_RATE_PER_SECOND": "1000000",
            "PARLEY_API_RATE_BURST": "1000000",
            "PYTHONPATH": str(root),
            # Without a worker the API only accepts: deliveries wait in the outbox for a
            # worker process, as when API and worker processes are run apart.
            "PARLEY_WORKER_ENABLED": "true" if worker else "false",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "chat.cli", *args], cwd=self.root, env=self.env,
            check=True, capture_output=True, timeout=120,
        )
        return json.loads(out.stdout)

    def start(self) -> str:
        """Database, migrations, a workspace, then the server; returns the API key."""
        if self.pg_name:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {self.pg_name}"], check=True)
        subprocess.run([sys.executable, "-m", "chat.cli", "migrate"], cwd=self.root, env=self.env,
                       check=True, capture_output=True, timeout=120)
        keys = self.cli("workspace", "create", "bench")
        self.proc = subprocess.Popen(
            [*pin(0), sys.executable, "-m", "chat.cli", "serve", "--port", str(self.port)],
            cwd=self.root, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return str(keys["api_key"])

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/health") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("parley serve did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.pg_name:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.pg_name}"], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


async def closed_loop(
    url: str, key: str, clients: int, seconds: float, body_for: Any, per_request: int
) -> dict[str, float]:
    accepted = [0]
    errors = [0]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def client(n: int) -> None:
            for i in itertools.count():
                if time.monotonic() >= deadline:
                    return
                started = time.monotonic()
                async with http.post(f"{url}/v1/messages", data=body_for(n, i)) as r:
                    await r.read()
                    if r.status == 202:
                        accepted[0] += per_request
                        latencies.append(time.monotonic() - started)
                    else:
                        errors[0] += 1

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return {"messages_per_s": accepted[0] / elapsed, "errors": errors[0], "p99_ms": p99}


_fresh = itertools.count()


def address(channel: str, n: int) -> str:
    """The ``n``-th address of a channel: a user id, or a valid US number (+1 415 ...)."""
    if channel == "sms":
        return f"+1415{200 + n // 10_000 % 800:03d}{n % 10_000:04d}"
    return f"user-{n}"


def single_body(channel: str) -> Any:
    def body(n: int, i: int) -> bytes:
        to = {"address": address(channel, (n * 7919 + i) % 1000)}
        return json.dumps({"channel": channel, "to": to,
                           "content": {"type": "text", "text": "Your code is 1234"}}).encode()

    return body


def batch_body(channel: str) -> Any:
    def body(n: int, i: int) -> bytes:
        to = [{"address": address(channel, 1000 + next(_fresh))} for _ in range(1000)]
        return json.dumps({"channel": channel, "to": to,
                           "content": {"type": "text", "text": "Sale starts today"}}).encode()

    return body


def start_provider() -> tuple[subprocess.Popen[bytes], str]:
    """bench/provider.py (a fake Twilio, 50 ms per send) on core 1; its base URL."""
    proc = subprocess.Popen([*pin(1), sys.executable, str(ROOT / "bench" / "provider.py"), "--delay", "0.05"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().decode().rsplit(" ", 1)[-1].strip()


def measure(
    root: Path, db: str, seconds: float, channels: list[str], worker: bool = True
) -> dict[str, dict[str, dict[str, float]]]:
    server = Server(root, db, worker)
    provider, base = start_provider() if "sms" in channels else (None, "")
    try:
        key = server.start()
        return asyncio.run(_load(server, key, seconds, channels, base))
    finally:
        server.stop()
        if provider is not None:
            provider.terminate()
            provider.wait()


async def _load(
    server: Server, key: str, seconds: float, channels: list[str], provider: str
) -> dict[str, dict[str, dict[str, float]]]:
    await server.ready()
    url = f"http://127.0.0.1:{server.port}"
    found: dict[str, dict[str, dict[str, float]]] = {}
    for channel in channels:
        if channel == "sms":
            config = {"account_sid": "AC" + "0b" * 16, "auth_token": "bench-token",
                      "from_number": "+14155550100", "api_base_url": provider}
            channel_body = {"type": "sms", "name": "bench", "config": config}
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
                http.post(f"{url}/v1/channels", json=channel_body) as r,
            ):
                created = r.status == 201
            if not created:
                print(f"# no sms channel on this server ({r.status}): skipped", file=sys.stderr)
                continue
        await closed_loop(url, key, 64, min(2, seconds), single_body(channel), 1)  # warm up, the pool's contacts
        found[channel] = {
            "single": await closed_loop(url, key, 64, seconds, single_body(channel), 1),
            "batch": await closed_loop(url, key, 4, seconds, batch_body(channel), 1000),
        }
    return found


def baseline_checkout(rev: str) -> Path:
    where = Path(tempfile.mkdtemp(prefix="parley-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True)
    return where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--baseline", help="a git revision to measure first, in the same run")
    ap.add_argument("--channels", default="inapp,sms", help="comma-separated: inapp, sms")
    ap.add_argument("--quick", action="store_true", help="3 seconds per scenario")
    ap.add_argument("--no-worker", action="store_true",
                    help="the server only accepts (PARLEY_WORKER_ENABLED=false): the API's rate "
                    "when delivery runs in another process")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    channels = [c for c in args.channels.split(",") if c]
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load; the server gets core 0
    results: dict[str, Any] = {}
    if args.baseline:
        tree = baseline_checkout(args.baseline)
        try:
            results["baseline " + args.baseline] = measure(
                tree, args.db, args.seconds, channels, not args.no_worker
            )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=False, capture_output=True, text=True).stdout.strip()
    results["parley " + head] = measure(ROOT, args.db, args.seconds, channels, not args.no_worker)
    print(f"# bench/sends.py --db {args.db} --seconds {args.seconds} --channels {args.channels}"
          f"{' --no-worker' if args.no_worker else ''}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; server on core 0, load on core 1")
    print("| server | channel | single sends/s | p99 ms | batch messages/s (1,000 new contacts each) | p99 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, by_channel in results.items():
        for channel, r in by_channel.items():
            s, b = r["single"], r["batch"]
            print(f"| {name} | {channel} | {s['messages_per_s']:,.0f} | {s['p99_ms']:.1f} | "
                  f"{b['messages_per_s']:,.0f} | {b['p99_ms']:.0f} |"
                  + (f" errors {s['errors']}/{b['errors']}" if s["errors"] or b["errors"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
