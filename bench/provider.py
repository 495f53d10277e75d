"""A fake SMS provider for the benchmarks: Twilio's Messages API shape, answering each
send after a fixed delay. Run in its own process (so its CPU is not the measured one):

    .venv/bin/python bench/provider.py --port 0 --delay 0.05

It prints ``listening on http://127.0.0.1:PORT`` once ready. ``POST
/2010-04-01/Accounts/{sid}/Messages.json`` answers 201 ``{"sid": "SM...", "status":
"queued"}`` after ``--delay`` seconds; ``GET /stats`` answers ``{"sends", "in_flight",
"max_in_flight"}`` and ``POST /stats/reset`` zeroes them. No checks beyond the shape: the
tests' fakes (tests/fakes/) are the faithful ones; this one is for speed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import sys

from aiohttp import web

_ids = itertools.count(1)


class Stats:
    def __init__(self) -> None:
        self.sends = 0
        self.in_flight = 0
        self.max_in_flight = 0


def make_app(delay: float) -> web.Application:
    stats = Stats()

    async def send(request: web.Request) -> web.Response:
        await request.read()
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await asyncio.sleep(delay)
        finally:
            stats.in_flight -= 1
        stats.sends += 1
        sid = f"SM{next(_ids):032x}"
        return web.json_response({"sid": sid, "status": "queued"}, status=201)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(
            {"sends": stats.sends, "in_flight": stats.in_flight, "max_in_flight": stats.max_in_flight}
        )

    async def reset(request: web.Request) -> web.Response:
        stats.sends = stats.max_in_flight = 0
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", send)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/stats/reset", reset)
    return app


async def serve(port: int, delay: float) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    runner = web.AppRunner(make_app(delay), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.port, args.delay))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
