"""Where an idle connection's bytes go: tracemalloc snapshots of ``parley serve`` diffed
across N idle websocket clients, with the server's RSS beside them.

    .venv/bin/python bench/idle_heap.py --backend sqlite --connections 1000 [--top 40]

The server runs with a thread that, when asked through a file, starts tracing (the
first time), collects garbage and dumps a snapshot; the client is bench/sioclient.py. Prints the
heap and RSS growth per connection and the largest differences by line and by traceback.
Tracing slows the server and adds its own bookkeeping to RSS, so the RSS figure here is
not the benchmark's (``bench/realtime.py --scenarios idle`` is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios
from bench.targets import HOST, Parley, ServerProcess, ServerSpec, free_port

# Run inside the server: a thread that dumps a snapshot when ``<dir>/ask`` appears.
HOOK = """
import gc, os, sys, threading, time, tracemalloc
d = os.environ["PARLEY_HEAP_DIR"]
def watch():
    n = 0
    while True:
        time.sleep(0.2)
        ask = os.path.join(d, "ask")
        if os.path.exists(ask):
            os.remove(ask)
            if not tracemalloc.is_tracing():  # traced from here: startup is slow traced
                tracemalloc.start(int(os.environ["PARLEY_HEAP_DEPTH"]))
            gc.collect()
            tracemalloc.take_snapshot().dump(os.path.join(d, f"snap{n}.tmp"))
            os.rename(os.path.join(d, f"snap{n}.tmp"), os.path.join(d, f"snap{n}"))
            n += 1
threading.Thread(target=watch, daemon=True).start()
from chat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def snapshot(d: Path, n: int) -> tracemalloc.Snapshot:
    (d / "ask").write_text("")
    path = d / f"snap{n}"
    while not path.exists():
        time.sleep(0.1)
    return tracemalloc.Snapshot.load(str(path))


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="parley-heap-"))
    target = Parley(args.backend)
    target.prepare(work)
    port = free_port()
    env = dict(target.env, PARLEY_HEAP_DIR=str(work))
    env["PARLEY_HEAP_DEPTH"] = str(args.depth)
    argv = [sys.executable, "-c", HOOK, "serve",
            "--host", HOST, "--port", str(port)]
    server = ServerProcess("heap", ServerSpec(argv, env=env, start_timeout=60), port,
                           work / "server.log", None)
    ctx = scenarios.Ctx(profile=target.profile, server=server)
    names = [f"idle-{i % 100}" for i in range(args.connections)]
    try:
        warm = await scenarios.connect_many(ctx, sorted(set(names))[:20])
        for c in warm:
            c.close()
        await asyncio.sleep(1.0)
        rss0 = server.rss_kb()
        s0 = snapshot(work, 0)
        clients = await scenarios.connect_many(
            ctx, names, concurrency=args.concurrency, timeout=900
        )
        await asyncio.sleep(args.settle)
        rss1 = server.rss_kb()
        s1 = snapshot(work, 1)
        n = len(clients)
        heap = sum(s.size for s in s1.statistics("filename")) - sum(
            s.size for s in s0.statistics("filename")
        )
        print(f"{n} connections: heap +{heap / n / 1024:.2f} KB/conn, "
              f"RSS (traced) +{(rss1 - rss0) / n:.2f} KB/conn")
        flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        s0, s1 = s0.filter_traces(flt), s1.filter_traces(flt)
        print("\n-- by line (bytes per connection, allocations per connection)")
        for st in s1.compare_to(s0, "lineno")[: args.top]:
            if st.size_diff <= 0:
                continue
            fr = st.traceback[0]
            print(f"{st.size_diff / n:8.0f} B {st.count_diff / n:6.1f}  "
                  f"{_short(fr.filename)}:{fr.lineno}")
        print("\n-- by traceback")
        for st in s1.compare_to(s0, "traceback")[: args.top]:
            if st.size_diff / n < args.min_bytes:
                continue
            print(f"{st.size_diff / n:8.0f} B {st.count_diff / n:6.1f}")
            for fr in list(st.traceback)[-args.frames:]:
                print(f"      {_short(fr.filename)}:{fr.lineno}")
        for c in clients:
            c.close()
    finally:
        server.stop()
        target.cleanup()


def _short(filename: str) -> str:
    for mark in ("site-packages/", "/rt-mem/", "/lib/python3"):
        if mark in filename:
            return filename.split(mark, 1)[1]
    return filename


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="sqlite", choices=["sqlite", "pg"])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--min-bytes", type=float, default=64)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=10)
    args = p.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
