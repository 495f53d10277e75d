"""A real HTTP webhook receiver on 127.0.0.1, run in the test's event loop.

It records every request and answers by a script: a status code (or a status code and
headers, e.g. ``(429, {"Retry-After": "1"})``); ``HANG`` to hold
the request until the test releases it or the caller gives up; or ``DRIP`` to send
200 and then trickle the body a byte at a time, never finishing until released.
Once the script is used up it answers 200.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.local import serve_locally

HANG: Literal["hang"] = "hang"
DRIP: Literal["drip"] = "drip"
Answer = int | tuple[int, dict[str, str]] | Literal["hang", "drip"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int | None = None  # what we answered; None while held or if the caller left
    outcome: str = "pending"  # "answered" | "held" | "caller left"

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_type(self) -> str | None:
        kind = self.json().get("type")
        return kind if isinstance(kind, str) else None


@dataclass
class WebhookReceiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.ServerRunner | None = None

    def respond(self, *answers: Answer) -> None:
        """Answer the next requests like this, in order (then 200)."""
        self._script.extend(answers)

    def release(self) -> None:
        """Let every held request (and any later HANG) answer 200."""
        self._release.set()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    @property
    def holding(self) -> list[Received]:
        return [r for r in self.requests if r.outcome == "held"]

    async def wait_for(
        self, check: Callable[[WebhookReceiver], bool], timeout: float = 10.0
    ) -> None:
        """Wait (bounded) until ``check`` holds; it is re-tested after every change."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if check(self):
                    return
                await self._changed.wait()

    async def wait_count(
        self, n: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        await self.wait_for(lambda r: len(r.at(path) if path else r.requests) >= n, timeout)
        return self.at(path) if path else list(self.requests)

    def _notify(self) -> None:
        self._changed.set()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        got = Received(request.path, headers, await request.read(), time.monotonic())
        self.requests.append(got)
        self._notify()
        answer = self._script.popleft() if self._script else 200
        reply_headers: dict[str, str] = {}
        if isinstance(answer, tuple):
            answer, reply_headers = answer
        try:
            if answer == DRIP:
                return await self._drip(request, got)
            if answer == HANG:
                got.outcome = "held"
                self._notify()
                await self._release.wait()
                answer = 200
        except (asyncio.CancelledError, ConnectionError):  # the caller gave up and hung up
            got.outcome = "caller left"
            self._notify()
            raise
        got.status, got.outcome = int(answer), "answered"
        self._notify()
        return web.json_response({"ok": answer < 300}, status=int(answer), headers=reply_headers)

    async def _drip(self, request: web.BaseRequest, got: Received) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        got.status, got.outcome = 200, "held"
        self._notify()
        while not self._release.is_set():
            await response.write(b" ")
            await asyncio.sleep(0.02)
        await response.write_eof(b"{}")
        got.outcome = "answered"
        self._notify()
        return response

    async def start(self) -> WebhookReceiver:
        self._runner, self.url = await serve_locally(self._handle)
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
