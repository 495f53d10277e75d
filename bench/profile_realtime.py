"""Profile Parley's server under one realtime scenario with py-spy.

    .venv/bin/python bench/profile_realtime.py [--target parley_sqlite] [--scenario acks]
        [--duration 8] [--out /tmp/acks.raw]

Runs the scenario's full parameters with a longer measuring window and records the
server's Python stacks (``py-spy record -f raw``) during that window only, after the
clients are connected and warmed up. Needs py-spy (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import realtime, scenarios
from bench.targets import SERVER_CORE, TARGETS, ServerProcess, free_port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="parley_sqlite")
    ap.add_argument("--scenario", default="acks", choices=["fanout", "acks", "latency"])
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--level", type=int, default=300, help="fan-out: messages in flight")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--out", type=Path, default=Path("/tmp/parley-profile.raw"))
    ap.add_argument("--no-spy", action="store_true", help="only run the scenario (A/B figures)")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    target = TARGETS[args.target]()
    sc = next(s for s in realtime.SCENARIOS if s.key == args.scenario)
    params: dict[str, Any] = dict(sc.full)
    params["duration"] = args.duration
    params["retries"] = 0
    if args.scenario == "fanout":
        params["levels"] = (args.level,)
    realtime._pin_self()
    workdir = Path(tempfile.mkdtemp(prefix="parley-profile-"))
    target.prepare(workdir)
    port = free_port()
    server = ServerProcess(target.name, target.server_spec(port), port, workdir / "server.log", SERVER_CORE)
    ctx = scenarios.Ctx(target.profile, server, target.services)
    warm = params.get("warmup", 0.5)
    spying: list[subprocess.Popen[bytes]] = []

    real_measure = scenarios.measure_rates

    async def measured(*a: Any, **kw: Any) -> Any:
        cmd = [spy, "record", "-p", str(server.pid), "-d", str(int(args.duration)), "-r", str(args.rate),
               "-f", "raw", "-o", str(args.out)]
        if not args.no_spy:
            # py-spy runs beside the scenario; it is waited for once the scenario is over
            spying.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: ASYNC220
        return await real_measure(*a, **kw)

    real_build = scenarios.build_rooms

    async def built_then_spy(*a: Any, **kw: Any) -> Any:
        # The latency scenario measures without measure_rates: record once connected.
        rooms = await real_build(*a, **kw)
        if args.scenario == "latency" and not args.no_spy:
            cmd = [spy, "record", "-p", str(server.pid), "-d", str(int(args.duration)), "-r",
                   str(args.rate), "-f", "raw", "-o", str(args.out)]
            spying.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: ASYNC220
        return rooms

    scenarios.measure_rates = measured  # type: ignore[assignment]
    scenarios.build_rooms = built_then_spy  # type: ignore[assignment]
    try:
        asyncio.run(scenarios.probe(ctx))
        result = asyncio.run(sc.fn(ctx, **params))
        print(json.dumps(result))
    finally:
        for p in spying:
            p.wait(timeout=60)
        server.stop()
        target.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_spy:
        print(f"profile: {args.out} (warm-up {warm}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
