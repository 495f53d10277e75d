"""Realtime (Socket.IO) benchmark: Parley against baseline relays.

    .venv/bin/python bench/realtime.py [--targets node,bare_sio,parley_sqlite,parley_pg]
        [--scenarios fanout,latency,acks,idle] [--quick] [--write docs/benchmarks.md]
        [--json results.json]

Each scenario starts a fresh server pinned to core 0; the load generator (this process,
a raw Socket.IO client in bench/sioclient.py on uvloop) pins itself to core 1. A target
whose setup or server start fails is skipped with its reason. Exit status: 0 when every
scenario of every target that started produced figures, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios
from bench.targets import (
    LOADGEN_CORE,
    NODE_RELAY_DIR,
    REPO,
    SERVER_CORE,
    TARGETS,
    ServerProcess,
    Target,
    TargetUnavailable,
    free_port,
)

BEGIN, END = "<!-- realtime:begin -->", "<!-- realtime:end -->"

ScenarioFn = Callable[..., Awaitable[dict[str, Any]]]
T = TypeVar("T")


@dataclass
class Scenario:
    key: str
    fn: ScenarioFn
    full: dict[str, Any]
    quick: dict[str, Any]
    timeout: float


SCENARIOS: list[Scenario] = [
    Scenario(
        "fanout",
        scenarios.fanout_peak,
        {"rooms": 100, "members": 10, "levels": (10, 30, 100, 300, 1000), "duration": 2.5},
        {
            "rooms": 20,
            "members": 10,
            "levels": (200,),
            "warmup": 0.3,
            "duration": 1.0,
            "retries": 0,
        },
        240,
    ),
    Scenario(
        "latency",
        scenarios.fanout_latency,
        {"rooms": 100, "members": 10, "delivered_per_s": 2000.0, "duration": 5.0},
        {
            "rooms": 20,
            "members": 10,
            "delivered_per_s": 2000.0,
            "warmup": 0.5,
            "duration": 1.5,
            "retries": 0,
        },
        120,
    ),
    Scenario(
        "acks",
        scenarios.ack_roundtrip,
        {"clients": 100, "duration": 3.0},
        {"clients": 20, "warmup": 0.3, "duration": 1.0, "retries": 0},
        120,
    ),
    Scenario(
        "idle",
        scenarios.idle_memory,
        {"connections": 5000, "contacts": 100},
        {"connections": 300, "contacts": 20, "settle": 1.0},
        300,
    ),
]


@dataclass
class TargetResult:
    name: str
    description: str
    skipped: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- running


def _pin_self() -> str:
    try:
        if os.cpu_count() and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {LOADGEN_CORE})
            return f"server on core {SERVER_CORE}, load generator on core {LOADGEN_CORE}"
    except (AttributeError, OSError):
        pass
    return "not pinned (fewer than 2 cores)"


def _raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def wait_quiet(max_wait: float, limit: float = 0.10) -> None:
    """Wait (at most ``max_wait`` s) until other processes leave both cores nearly idle.

    On a shared machine somebody's test run on the server's core halves the figures;
    waiting is cheap. Gives up silently after ``max_wait`` (each window also reports the
    interference it saw).
    """
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        b0 = [scenarios.core_busy_seconds(c) for c in (SERVER_CORE, LOADGEN_CORE)]
        time.sleep(0.5)
        b1 = [scenarios.core_busy_seconds(c) for c in (SERVER_CORE, LOADGEN_CORE)]
        busy = max((b - a) / 0.5 for a, b in zip(b0, b1))
        if busy <= limit or time.monotonic() > deadline:
            return
        if not told:
            _progress(
                f"[bench] other processes keep a core {busy:.0%} busy; waiting up to {max_wait:.0f}s"
            )
            told = True


def run_target(
    target: Target, chosen: list[Scenario], quick: bool, log_dir: Path, quiet_wait: float = 0.0
) -> TargetResult:
    res = TargetResult(target.name, target.description)
    workdir = Path(tempfile.mkdtemp(prefix=f"parley-bench-{target.name}-"))
    try:
        try:
            target.prepare(workdir)
        except TargetUnavailable as exc:
            res.skipped = str(exc)
            return res
        for sc in chosen:
            params = sc.quick if quick else sc.full
            if quiet_wait > 0:
                wait_quiet(quiet_wait)
            port = free_port()
            log = log_dir / f"{target.name}-{sc.key}.log"
            try:
                server = ServerProcess(
                    target.name, target.server_spec(port), port, log, SERVER_CORE
                )
            except TargetUnavailable as exc:
                res.skipped = str(exc)
                return res
            ctx = scenarios.Ctx(target.profile, server, target.services)
            try:
                _run_async(scenarios.probe(ctx))
            except Exception as exc:  # noqa: BLE001 - any probe failure means skip
                server.stop()
                res.skipped = (
                    f"{target.name}: server started but a Socket.IO client could not connect to "
                    f"{target.profile.namespace}: {type(exc).__name__}: {exc}; log:\n{server.log_tail()}"
                )
                return res
            t0 = time.monotonic()
            try:
                res.results[sc.key] = _run_async(asyncio.wait_for(sc.fn(ctx, **params), sc.timeout))
                if not server.alive():
                    res.errors[sc.key] = (
                        f"server died during the scenario; log:\n{server.log_tail()}"
                    )
            except Exception as exc:  # noqa: BLE001 - a scenario failure is reported, the run goes on
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                res.errors[sc.key] = f"{detail}\nserver log tail:\n{server.log_tail()}"
            finally:
                server.stop()
            _progress(
                f"  {target.name} {sc.key}: {time.monotonic() - t0:.1f}s "
                f"{json.dumps(res.results.get(sc.key) or res.errors.get(sc.key, '')[:300])}"
            )
        return res
    finally:
        target.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not math.isnan(v)


def _fmt_int(v: Any) -> str:
    return f"{v:,}" if _is_num(v) else "—"


def _fmt_ms(v: Any) -> str:
    return f"{v:.2f}" if _is_num(v) else "—"


def summary_table(results: list[TargetResult]) -> str:
    lines = [
        "| server | peak delivered msgs/s | p50 ms @ 2,000/s | p99 ms @ 2,000/s | acks/s | KB per idle conn |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.name} | skipped | | | | |")
            continue
        fan = r.results.get("fanout", {})
        lat = r.results.get("latency", {})
        ack = r.results.get("acks", {})
        idle = r.results.get("idle", {})
        lines.append(
            f"| {r.name} | {_fmt_int(fan.get('peak_delivered_per_s'))} | {_fmt_ms(lat.get('p50_ms'))} "
            f"| {_fmt_ms(lat.get('p99_ms'))} | {_fmt_int(ack.get('acks_per_s'))} "
            f"| {_fmt_ms(idle.get('kb_per_connection'))} |"
        )
    return "\n".join(lines)


def _brief(text: str, limit: int = 400) -> str:
    """First line of a failure text, plus its last line (often the exception) if different."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "unavailable"
    out = lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _cpu_note(x: dict[str, Any]) -> str:
    note = f"server CPU {x['server_cpu']:.0%}, loadgen CPU {x['loadgen_cpu']:.0%}"
    if "services_cpu" in x:
        note += f", PostgreSQL + Redis CPU {x['services_cpu']:.0%}"
    if x.get("other_cpu", 0.0) > scenarios.NOISE_LIMIT:
        note += f", OTHER PROCESSES {x['other_cpu']:.0%} of a core"
    return note


def details(results: list[TargetResult]) -> str:
    out: list[str] = []
    for r in results:
        out.append(f"- **{r.name}** ({r.description})")
        if r.skipped:
            out.append(f"  - skipped: {_brief(r.skipped)}")
            continue
        fan = r.results.get("fanout")
        if fan:
            lv = "; ".join(
                f"{x['inflight']} in flight: {x['delivered_per_s']:,}/s ({_cpu_note(x)})"
                for x in fan["levels"]
            )
            out.append(f"  - fan-out {fan['rooms']}x{fan['members']}, delivered/s at {lv}")
            for x in fan["levels"]:
                ratio = x.get("delivered_ratio")
                if ratio is not None and abs(ratio - 1.0) > 0.01:
                    out.append(
                        f"  - WARNING: at {x['inflight']} in flight {ratio:.3f} deliveries per "
                        f"expected one (each message should reach the other {fan['members'] - 1})"
                    )
                if x.get("ack_errors"):
                    out.append(
                        f"  - WARNING: {x['ack_errors']} failed acks, e.g. {x['first_error']}"
                    )
        lat = r.results.get("latency")
        if lat:
            out.append(
                f"  - latency: {lat['achieved_delivered_per_s']:,}/s delivered, "
                f"{lat['samples']:,} samples, max {_fmt_ms(lat['max_ms'])} ms ({_cpu_note(lat)})"
            )
        ack = r.results.get("acks")
        if ack:
            out.append(
                f"  - acks: {ack['clients']} clients, RTT p50 {_fmt_ms(ack['rtt_p50_ms'])} ms / "
                f"p99 {_fmt_ms(ack['rtt_p99_ms'])} ms ({_cpu_note(ack)})"
            )
        idle = r.results.get("idle")
        if idle:
            out.append(
                f"  - idle: {idle['still_open']:,}/{idle['connections']:,} open, RSS "
                f"{idle['rss_before_kb'] / 1024:.1f} -> {idle['rss_after_kb'] / 1024:.1f} MiB"
            )
        for key, err in r.errors.items():
            out.append(f"  - {key} FAILED: {_brief(err)}")
    return "\n".join(out)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for dist in ("python-socketio", "uvicorn", "websockets"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    node = shutil.which("node")
    if node:
        try:
            done = subprocess.run(
                [node, "--version"], check=False, capture_output=True, text=True, timeout=10
            )
            parts.append("Node " + done.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    pkg = NODE_RELAY_DIR / "node_modules" / "socket.io" / "package.json"
    if pkg.exists():
        parts.append("socket.io " + json.loads(pkg.read_text()).get("version", "?"))
    return ", ".join(parts)


def section(results: list[TargetResult], command: str, quick: bool, pinning: str) -> str:
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            BEGIN,
            "## Realtime (Socket.IO) benchmark",
            "",
            f"Command: `{command}`{'  (quick smoke run: small counts, not comparable)' if quick else ''}",
            "",
            f"Run {date} on `nproc` = {os.cpu_count()}, CPU: {_cpu_model()}; {pinning}. {_versions()}.",
            "",
            summary_table(results),
            "",
            details(results),
            "",
            METHOD,
            END,
        ]
    )


METHOD = """\
How it is measured (bench/realtime.py, bench/scenarios.py):

- Load generator: Python, one process on uvloop pinned to core 1, with its own raw
  Engine.IO v4 / Socket.IO v5 client over its own websocket framing (bench/sioclient.py).
  It counts delivered events by their raw prefix without decoding them and costs about
  5 µs of its core per delivered message, so it can count about 190,000/s; each window
  reports its CPU use ("loadgen CPU") next to the server's, so a saturated load
  generator would show.
- Order: scenario by scenario, each on every target in turn (`--order scenario`), so a
  baseline and Parley are measured seconds apart on a machine whose speed drifts.
- Servers: a fresh process per scenario, pinned to core 0. Baselines are
  bench/relays/node/relay.js (socket.io 4, websocket only, perMessageDeflate off) and
  bench/relays/bare_sio.py (python-socketio AsyncServer, ASGI, uvicorn with uvloop +
  httptools and its default websocket implementation, permessage-deflate off). They do
  Parley's relay logic without storage; every target gets the same payloads.
- peak delivered msgs/s: 100 rooms x 10 websocket members. Members send `message` with an
  ack in a closed loop (the next one after the ack) with 10, 30, 100, 300 and 1,000
  messages in flight, spread over all rooms; each message reaches the other 9 members
  (checked: deliveries = 9 x acked). 2.5 s window after 0.5 s warm-up per level; the
  table shows the best level.
- p50/p99 ms @ 2,000/s: open loop at 2,000 delivered/s (222 sends/s round-robin over all
  1,000 members); the send time (`perf_counter`) travels in `content.text`; latency is
  delivery time minus send time for the messages sent during a 5 s window (late ones are
  awaited). Includes the load generator's own scheduling delay.
- acks/s: 100 clients, each alone in its room (so no fan-out), each with one `message` +
  ack in flight.
- KB per idle conn: (server VmRSS with 5,000 idle websocket clients connected - VmRSS
  before) / 5,000, after a warm-up and 2 s of settling.
- parley_pg: PostgreSQL and Redis are the machine's own services, not pinned; their CPU
  is shown as "PostgreSQL + Redis CPU".
- Shared machine: before each scenario the harness waits (up to 60 s) for other
  processes to leave both cores idle, and re-measures a window (up to 3 times) in which
  anything else (not the server, the load generator or the target's PostgreSQL/Redis)
  used more than 5% of a core; interference that remained is flagged above as
  "OTHER PROCESSES"."""


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _m: text, old, count=1)
    elif old.strip():
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    else:
        new = text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma list of {', '.join(TARGETS)}"
    )
    ap.add_argument(
        "--scenarios",
        default=",".join(s.key for s in SCENARIOS),
        help=f"comma list of {', '.join(s.key for s in SCENARIOS)}",
    )
    ap.add_argument(
        "--quick", action="store_true", help="short smoke run with small counts (~30 s)"
    )
    ap.add_argument(
        "--write", metavar="MD", type=Path, help="write/replace the realtime section of this file"
    )
    ap.add_argument("--json", metavar="PATH", type=Path, help="also write raw results as JSON")
    ap.add_argument(
        "--quiet-wait",
        metavar="S",
        type=float,
        default=None,
        help="before each scenario wait up to S seconds for other load to stop "
        "(default 60, 0 with --quick)",
    )
    ap.add_argument(
        "--logs", metavar="DIR", type=Path, help="keep server logs here (default: a temp dir)"
    )
    ap.add_argument(
        "--order",
        choices=["scenario", "target"],
        default="scenario",
        help="scenario: each scenario runs on every target in turn (default); target: "
        "every scenario of one target, then the next target",
    )
    args = ap.parse_args(argv)

    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    keys = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in TARGETS] + [
        k for k in keys if k not in {s.key for s in SCENARIOS}
    ]
    if unknown or not names or not keys:
        ap.error(f"unknown or empty --targets/--scenarios: {unknown}")
    chosen = [s for s in SCENARIOS if s.key in keys]

    pinning = _pin_self()
    _raise_nofile(16384)
    log_dir = args.logs or Path(tempfile.mkdtemp(prefix="parley-bench-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    py = Path(sys.executable)
    shown = str(py.relative_to(REPO)) if py.is_relative_to(REPO) else "python"
    command = f"{shown} bench/realtime.py " + " ".join(argv if argv is not None else sys.argv[1:])
    _progress(f"[bench] {pinning}; server logs in {log_dir}")

    quiet = args.quiet_wait if args.quiet_wait is not None else (0.0 if args.quick else 60.0)
    by_name = {name: TargetResult(name, TARGETS[name]().description) for name in names}
    # Scenario by scenario, every target in turn: a baseline and Parley are measured
    # seconds apart, not minutes (on a shared machine the speed drifts; Node's ack rate
    # moved 2.7x between two runs 14 minutes apart).
    for sc in chosen if args.order == "scenario" else [None]:
        for name in names:
            merged = by_name[name]
            if merged.skipped:
                continue
            _progress(f"[bench] target {name}" + (f", {sc.key}" if sc else ""))
            r = run_target(TARGETS[name](), [sc] if sc else chosen, args.quick, log_dir, quiet)
            merged.results.update(r.results)
            merged.errors.update(r.errors)
            if r.skipped:
                merged.skipped = r.skipped
                _progress(f"[bench] SKIPPED {name}: {r.skipped}")
    results = list(by_name.values())

    print(summary_table(results))
    print()
    print(details(results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2, default=str))
    if args.write:
        write_section(args.write, section(results, command.strip(), args.quick, pinning))
        _progress(f"[bench] wrote {args.write}")
    failed = any(r.errors for r in results)
    if args.logs is None and not failed and not any(r.skipped for r in results):
        shutil.rmtree(log_dir, ignore_errors=True)  # nothing to look at
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
