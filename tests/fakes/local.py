"""Where the fakes listen: an aiohttp server on 127.0.0.1, on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Self, TypeVar

from aiohttp import web

A = TypeVar("A")  # what a fake can be told to answer
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


@dataclass(kw_only=True)
class ScriptedFake(Generic[A]):
    """A fake provider told in advance how to answer: ``respond(...)`` queues answers for
    the next requests (then it accepts), a "hang" answer holds a request until ``release()``,
    and ``wait_for`` waits until what the fake saw passes a check."""

    url: str = ""
    _script: deque[A] = field(default_factory=deque)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.ServerRunner | None = None

    def respond(self, *answers: A) -> None:
        """The answers to the next valid requests, in order; then it accepts."""
        self._script.extend(answers)

    def release(self) -> None:
        self._release.set()

    async def wait_for(self, check: Callable[[Self], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if check(self):
                    return
                await self._changed.wait()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self) -> Self:
        self._runner, self.url = await serve_locally(self._handle)
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
