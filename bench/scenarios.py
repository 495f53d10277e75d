"""The realtime scenarios, run by the load generator against one started server.

Each scenario is bounded in time and in count, and returns a plain dict of results.
Rates are measured over a window that starts after a warm-up; the load generator's
own CPU use (``loadgen_cpu``) and the server's (``server_cpu``) over that window are
reported too: a loadgen near 100% means the figure measures the loadgen, not the server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import resource
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.sioclient import Delivery, SioClient, connect, delivery_prefix
from bench.targets import HOST, LOADGEN_CORE, SERVER_CORE, Profile, ServerProcess

now = time.perf_counter
RUN = secrets.token_hex(3)
"""Prefix of this run's client_message_ids, so reruns against one database never collide."""


@dataclass
class Ctx:
    profile: Profile
    server: ServerProcess
    services: tuple[str, ...] = ()
    host: str = HOST

    @property
    def port(self) -> int:
        return self.server.port


# --------------------------------------------------------------------------- helpers


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def core_busy_seconds(core: int) -> float:
    """Busy (non-idle, non-iowait) seconds of one CPU core since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    v = [int(x) for x in line.split()[1:]]
                    busy = sum(v[:8]) - v[3] - v[4]  # user..steal minus idle, iowait
                    return busy / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return 0.0


NOISE_LIMIT = 0.05
"""A window where other processes used more than this share of a core is noisy."""


def services_cpu_seconds(names: Sequence[str]) -> float:
    """CPU seconds of all processes whose command name is in ``names`` (e.g. postgres)."""
    if not names:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        if comm in names:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class Window:
    """Wall time and CPU use between start() and stop(): load generator, server, the
    target's services (PostgreSQL, Redis: part of the system under test, unpinned) and
    everything else on the machine.

    ``other_cpu`` is CPU (in cores) used by anything else, e.g. somebody's test run on a
    shared machine: a high value means the figure is depressed by noise.
    """

    def __init__(self, server: ServerProcess, services: Sequence[str] = ()) -> None:
        self.server = server
        self.services = tuple(services)
        self.t0 = self.c0 = self.s0 = self.v0 = self.k0 = 0.0
        self.elapsed = self.loadgen_cpu = self.server_cpu = self.services_cpu = 0.0
        self.busy = 0.0

    def _busy(self) -> float:
        return core_busy_seconds(SERVER_CORE) + core_busy_seconds(LOADGEN_CORE)

    def start(self) -> None:
        self.t0, self.c0, self.s0 = now(), _self_cpu(), self.server.cpu_seconds()
        self.v0 = services_cpu_seconds(self.services)
        self.k0 = self._busy()

    def stop(self) -> None:
        self.elapsed = max(now() - self.t0, 1e-9)
        self.loadgen_cpu = (_self_cpu() - self.c0) / self.elapsed
        self.server_cpu = (self.server.cpu_seconds() - self.s0) / self.elapsed
        self.services_cpu = (services_cpu_seconds(self.services) - self.v0) / self.elapsed
        self.busy = (self._busy() - self.k0) / self.elapsed

    @property
    def other_cpu(self) -> float:
        return max(0.0, self.busy - self.server_cpu - self.loadgen_cpu - self.services_cpu)

    @property
    def noisy(self) -> bool:
        return self.other_cpu > NOISE_LIMIT

    def cpu(self) -> dict[str, float]:
        out = {
            "loadgen_cpu": round(self.loadgen_cpu, 3),
            "server_cpu": round(self.server_cpu, 3),
            "other_cpu": round(self.other_cpu, 3),
        }
        if self.services:
            out["services_cpu"] = round(self.services_cpu, 3)
        return out


async def measure_rates(
    ctx: Ctx,
    counters: Callable[[], tuple[int, ...]],
    duration: float,
    retries: int = 3,
) -> tuple[list[float], Window]:
    """Rates of the ``counters`` over a window of ``duration`` seconds.

    A window disturbed by other processes on either core (shared machine) is
    measured again, at most ``retries`` more times; the best first rate is kept.
    """
    best: tuple[list[float], Window] | None = None
    for _ in range(retries + 1):
        win = Window(ctx.server, ctx.services)
        c0 = counters()
        win.start()
        await asyncio.sleep(duration)
        c1 = counters()
        win.stop()
        rates = [(b - a) / win.elapsed for a, b in zip(c0, c1)]
        if best is None or rates[0] > best[0][0]:
            best = (rates, win)
        if not win.noisy or not ctx.server.alive():
            break
    assert best is not None
    return best


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def _ack_ok(raw: bytes) -> bool:
    return b'"ok":true' in raw or b'"ok": true' in raw


async def _bounded_gather(factories: Sequence[Callable[[], Any]], concurrency: int) -> list[Any]:
    """Run the coroutine factories, at most ``concurrency`` at once; the first failure
    cancels the rest and is raised as is."""
    sem = asyncio.Semaphore(concurrency)

    async def one(f: Callable[[], Any]) -> Any:
        async with sem:
            return await f()

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(f)) for f in factories]
    except ExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


async def connect_many(
    ctx: Ctx,
    rooms: Sequence[str],
    *,
    delivery: Delivery | None = None,
    concurrency: int = 100,
    timeout: float = 120.0,
) -> list[SioClient]:
    """Connect one client per entry of ``rooms`` (a room name per client)."""
    p = ctx.profile
    prefix = delivery_prefix(p.namespace, p.delivery_event)
    clients: list[SioClient] = []

    def factory(room: str) -> Callable[[], Any]:
        async def go() -> SioClient:
            c = await connect(
                ctx.host,
                ctx.port,
                p.namespace,
                p.auth(room),
                delivery_prefix=prefix,
                delivery=delivery,
            )
            clients.append(c)
            return c

        return go

    try:
        return await asyncio.wait_for(
            _bounded_gather([factory(r) for r in rooms], concurrency), timeout
        )
    except BaseException:
        for c in clients:
            c.close()
        raise


@dataclass
class Room:
    name: str
    conversation_id: str
    members: list[SioClient] = field(default_factory=list)


async def build_rooms(
    ctx: Ctx, names: Sequence[str], members: int, delivery: Delivery | None, concurrency: int = 100
) -> list[Room]:
    """Connect ``members`` clients per room; the first one opens the conversation first."""
    p = ctx.profile
    firsts = await connect_many(ctx, names, delivery=delivery, concurrency=concurrency)
    rooms: list[Room] = []
    if p.opens_conversation:

        async def open_one(i: int) -> str:
            ack = await firsts[i].call(
                p.send_event, p.message(None, f"{RUN}-open-{names[i]}-{time.time_ns()}", now())
            )
            return p.conversation_from_ack(ack, names[i])

        conv_ids = await _bounded_gather(
            [functools.partial(open_one, i) for i in range(len(names))], concurrency
        )
    else:
        conv_ids = [p.conversation_from_ack(None, n) for n in names]
    for name, conv, first in zip(names, conv_ids, firsts):
        rooms.append(Room(name, conv, [first]))
    if members > 1:
        rest_names = [r.name for r in rooms for _ in range(members - 1)]
        rest = await connect_many(ctx, rest_names, delivery=delivery, concurrency=concurrency)
        for k, c in enumerate(rest):
            rooms[k // (members - 1)].members.append(c)
    return rooms


def close_all(rooms: Sequence[Room]) -> None:
    for r in rooms:
        for c in r.members:
            c.close()


class ClosedLoop:
    """Each (client, conversation) pair sends a message, and the next when its ack arrives."""

    def __init__(self, profile: Profile, pairs: Sequence[tuple[SioClient, str]], tag: str) -> None:
        self.profile = profile
        self.pairs = list(pairs)
        self.tag = tag
        self.running = False
        self.inflight = 0
        self.sent = 0
        self.acks = 0
        self.errors = 0
        self.first_error: bytes | None = None
        self.rtts: list[float] | None = None

    def start(self) -> None:
        self.running = True
        for i in range(len(self.pairs)):
            self._fire(i)

    def _fire(self, i: int) -> None:
        client, conv = self.pairs[i]
        if not client.is_open:
            return
        n = self.sent
        self.sent += 1
        t = now()
        payload = self.profile.message(conv, f"{self.tag}{i}-{n}", t)
        self.inflight += 1
        client.emit(self.profile.send_event, payload, lambda raw: self._acked(i, t, raw))

    def _acked(self, i: int, t: float, raw: bytes) -> None:
        self.inflight -= 1
        if _ack_ok(raw):
            self.acks += 1
            if self.rtts is not None:
                self.rtts.append(now() - t)
        else:
            self.errors += 1
            if self.first_error is None:
                self.first_error = raw[:300]
        if self.running:
            self._fire(i)

    async def stop(self, timeout: float = 15.0) -> None:
        self.running = False
        deadline = now() + timeout
        while self.inflight > 0 and now() < deadline:
            await asyncio.sleep(0.02)


async def _settle(delivery: Delivery, timeout: float = 5.0) -> None:
    """Wait until the delivery count stops moving (bounded)."""
    deadline = now() + timeout
    last = -1
    while delivery.count != last and now() < deadline:
        last = delivery.count
        await asyncio.sleep(0.15)


def _counts(delivery: Delivery, loop: ClosedLoop) -> tuple[int, int]:
    return delivery.count, loop.acks


def _interleaved_pairs(rooms: Sequence[Room]) -> list[tuple[SioClient, str]]:
    """Senders ordered member-major so any prefix spreads over all rooms."""
    width = max(len(r.members) for r in rooms)
    return [
        (r.members[m], r.conversation_id) for m in range(width) for r in rooms if m < len(r.members)
    ]


# --------------------------------------------------------------------------- scenarios


async def probe(ctx: Ctx, timeout: float = 10.0) -> None:
    """Connect one client and close it: raises when the server's Socket.IO is not usable."""
    client = await connect(
        ctx.host, ctx.port, ctx.profile.namespace, ctx.profile.auth("probe-0"), timeout=timeout
    )
    client.close()


async def fanout_peak(
    ctx: Ctx,
    *,
    rooms: int = 100,
    members: int = 10,
    levels: Sequence[int] = (10, 30, 100, 300, 1000),
    warmup: float = 0.5,
    duration: float = 2.5,
    retries: int = 3,
) -> dict[str, Any]:
    """Closed loop at rising in-flight levels; peak delivered messages/s over the levels.

    At level ``c`` the first ``c`` clients (spread over all rooms) each keep one message
    with ack in flight; every message is delivered to the other ``members - 1`` members.
    """
    delivery = Delivery()
    built = await build_rooms(ctx, [f"room-{i}" for i in range(rooms)], members, delivery)
    pairs = _interleaved_pairs(built)
    try:
        await _settle(delivery, 1.0)
        out: list[dict[str, Any]] = []
        for level in levels:
            loop = ClosedLoop(ctx.profile, pairs[: min(level, len(pairs))], f"{RUN}-p{level}-")
            d0_total = delivery.count
            loop.start()
            await asyncio.sleep(warmup)
            (delivered_rate, sent_rate), win = await measure_rates(
                ctx, functools.partial(_counts, delivery, loop), duration, retries
            )
            await loop.stop()
            await _settle(delivery)
            delivered_total = delivery.count - d0_total
            expected = loop.acks * (members - 1)
            out.append(
                {
                    "inflight": min(level, len(pairs)),
                    "delivered_per_s": round(delivered_rate),
                    "sent_per_s": round(sent_rate),
                    "delivered_per_server_cpu_s": round(delivered_rate / max(win.server_cpu, 1e-3)),
                    "ack_errors": loop.errors,
                    "first_error": loop.first_error.decode(errors="replace")
                    if loop.first_error
                    else None,
                    "delivered_ratio": round(delivered_total / expected, 4) if expected else None,
                    **win.cpu(),
                }
            )
            if not ctx.server.alive():
                break
        best = max(out, key=lambda r: r["delivered_per_s"]) if out else {}
        return {
            "rooms": rooms,
            "members": members,
            "peak_delivered_per_s": best.get("delivered_per_s"),
            "peak_inflight": best.get("inflight"),
            "levels": out,
        }
    finally:
        close_all(built)


async def fanout_latency(
    ctx: Ctx,
    *,
    rooms: int = 100,
    members: int = 10,
    delivered_per_s: float = 2000.0,
    warmup: float = 1.0,
    duration: float = 5.0,
    retries: int = 2,
) -> dict[str, Any]:
    """Open loop at a fixed delivered rate; end-to-end latency from send to delivery.

    Messages carry their send time (``perf_counter``) in the text; the samples are the
    messages sent inside the measuring window, and late deliveries are awaited (bounded),
    so a slow tail shows up rather than being cut off. A window disturbed by other
    processes is measured again (at most ``retries`` times) and the quietest one is kept.
    """
    p = ctx.profile
    delivery = Delivery()
    built = await build_rooms(ctx, [f"room-{i}" for i in range(rooms)], members, delivery)
    pairs = _interleaved_pairs(built)
    head = len(b"42" + (b"" if p.namespace == "/" else p.namespace.encode() + b","))
    samples: list[tuple[float, float]] = []  # (send time, latency)
    record_from = [float("inf")]
    acks = [0, 0]  # ok, error
    running = [True]

    def on_match(_client: SioClient, raw: bytes) -> None:
        t = now()
        ts = p.delivery_ts(json.loads(raw[head:])[1:])
        if ts is not None and ts >= record_from[0]:
            samples.append((ts, t - ts))

    def on_ack(raw: bytes) -> None:
        acks[0 if _ack_ok(raw) else 1] += 1

    send_rate = delivered_per_s / max(1, members - 1)

    async def pace() -> None:
        start = now()
        sent = 0
        while running[0]:
            due = int((now() - start) * send_rate)
            while sent < due:
                client, conv = pairs[sent % len(pairs)]
                sent += 1
                client.emit(p.send_event, p.message(conv, f"{RUN}-l{sent}", now()), on_ack)
            await asyncio.sleep(0.001)

    delivery.on_match = on_match
    try:
        await _settle(delivery, 1.0)
        pacer = asyncio.create_task(pace())
        await asyncio.sleep(warmup)
        record_from[0] = now()
        windows: list[tuple[float, float, int, int, Window]] = []
        for _ in range(retries + 1):
            win = Window(ctx.server, ctx.services)
            t0, d0 = now(), delivery.count
            win.start()
            await asyncio.sleep(duration)
            t1, d1 = now(), delivery.count
            win.stop()
            windows.append((t0, t1, d0, d1, win))
            if not win.noisy or not ctx.server.alive():
                break
        running[0] = False
        await pacer
        await _settle(delivery)
        t0, t1, d0, d1, win = min(windows, key=lambda w: w[4].other_cpu)
        lat = sorted(latency for ts, latency in samples if t0 <= ts < t1)
        return {
            "target_delivered_per_s": delivered_per_s,
            "achieved_delivered_per_s": round((d1 - d0) / win.elapsed),
            "samples": len(lat),
            "expected_samples": round(send_rate * (t1 - t0)) * (members - 1),
            "p50_ms": round(percentile(lat, 0.50) * 1000, 3),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
            "max_ms": round(lat[-1] * 1000, 3) if lat else None,
            "windows": len(windows),
            "ack_errors": acks[1],
            **win.cpu(),
        }
    finally:
        running[0] = False
        close_all(built)


async def ack_roundtrip(
    ctx: Ctx,
    *,
    clients: int = 100,
    warmup: float = 0.5,
    duration: float = 3.0,
    retries: int = 3,
) -> dict[str, Any]:
    """``clients`` clients, each alone in its room, each sending with ack, one in flight."""
    built = await build_rooms(ctx, [f"ack-{i}" for i in range(clients)], 1, None)
    try:
        loop = ClosedLoop(ctx.profile, _interleaved_pairs(built), f"{RUN}-a-")
        loop.start()
        await asyncio.sleep(warmup)
        loop.rtts = []
        (ack_rate,), win = await measure_rates(ctx, lambda: (loop.acks,), duration, retries)
        rtts = sorted(loop.rtts)
        loop.rtts = None
        await loop.stop()
        return {
            "clients": clients,
            "acks_per_s": round(ack_rate),
            "acks_per_server_cpu_s": round(ack_rate / max(win.server_cpu, 1e-3)),
            "rtt_p50_ms": round(percentile(rtts, 0.50) * 1000, 3),
            "rtt_p99_ms": round(percentile(rtts, 0.99) * 1000, 3),
            "ack_errors": loop.errors,
            "first_error": loop.first_error.decode(errors="replace") if loop.first_error else None,
            **win.cpu(),
        }
    finally:
        close_all(built)


async def idle_memory(
    ctx: Ctx,
    *,
    connections: int = 5000,
    contacts: int = 100,
    concurrency: int = 100,
    settle: float = 2.0,
) -> dict[str, Any]:
    """Server RSS before and after ``connections`` idle websocket clients connect."""
    names = [f"idle-{i % contacts}" for i in range(connections)]
    # Warm up the server's code paths (and, for Parley, the contacts) first.
    warm = await build_rooms(ctx, sorted(set(names))[: min(contacts, 20)], 1, None)
    for r in warm:
        await r.members[0].call(
            ctx.profile.send_event,
            ctx.profile.message(r.conversation_id, f"{RUN}-warm-{r.name}", now()),
        )
    close_all(warm)
    await asyncio.sleep(1.0)
    before = ctx.server.rss_kb()
    t0 = now()
    clients = await connect_many(ctx, names, concurrency=concurrency, timeout=180)
    connect_s = now() - t0
    try:
        await asyncio.sleep(settle)
        after = ctx.server.rss_kb()
        still_open = sum(1 for c in clients if c.is_open)
        return {
            "connections": connections,
            "still_open": still_open,
            "rss_before_kb": before,
            "rss_after_kb": after,
            "kb_per_connection": round((after - before) / connections, 2),
            "connect_per_s": round(connections / connect_s),
        }
    finally:
        for c in clients:
            c.close()
