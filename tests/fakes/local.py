"""Where the fakes listen: an aiohttp server on 127.0.0.1, on a free port."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


async def serve_locally(handler: Handler) -> tuple[web.ServerRunner, str]:
    """Start ``handler`` on 127.0.0.1; the runner (to ``cleanup()``) and the base URL.

    A handler is cancelled when its client goes away, so a test can hang a request and
    see the caller leave; shutdown waits at most a second for requests still open."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.ServerRunner(web.Server(handler, handler_cancellation=True), shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{port}"
