"""A bot behind a URL (Parley's ``http`` bots) on 127.0.0.1.

It checks ``X-Parley-Signature`` the way a bot's author would (``bots.signing``), answering
401 to a request that is not signed with its secret, records each turn, and answers as
scripted: a JSON body (``Reply``), an empty 204 (``LATER``: it will answer through
Parley's REST API), a failure status (``Fail``) or nothing until released (``HANG``).
With ``LATER`` and a ``parley`` client (the workspace's API key), it then posts its reply
itself, as ``{"type": "bot", "id": <its bot id>}``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from aiohttp import web

from bots.signing import verify_webhook_signature
from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
LATER: Literal["later"] = "later"


@dataclass(frozen=True)
class Reply:
    body: dict[str, Any]


@dataclass(frozen=True)
class Fail:
    status: int


Answer = Reply | Fail | Literal["hang", "later"]


@dataclass
class FakeBot(ScriptedFake[Answer]):
    secret: str = "bot-secret-0123456789abcdef"
    parley: httpx.AsyncClient | None = None
    later_text: str = "Here is your answer, a moment later."
    turns: list[dict[str, Any]] = field(default_factory=list)
    unsigned: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        if not verify_webhook_signature(self.secret, raw, request.headers.get("X-Parley-Signature", "")):
            self.unsigned += 1
            self._changed.set()
            return web.json_response({"error": "bad signature"}, status=401)
        body = json.loads(raw)
        self.turns.append(body)
        self._changed.set()
        answer = self._script.popleft() if self._script else Reply({"replies": []})
        if answer == HANG:
            await self._release.wait()
            return web.json_response({"replies": ["too late"]})
        if answer == LATER:
            task = asyncio.create_task(self._answer_later(body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return web.Response(status=204)
        if isinstance(answer, Fail):
            return web.json_response({"error": "bot broke"}, status=answer.status)
        assert isinstance(answer, Reply)
        return web.json_response(answer.body)

    async def _answer_later(self, body: dict[str, Any]) -> None:
        assert self.parley is not None
        cid = body["turn"]["conversation_id"]
        r = await self.parley.post(f"/v1/conversations/{cid}/messages", json={
            "author": {"type": "bot", "id": body["bot_id"]},
            "content": {"type": "text", "text": self.later_text},
            "client_message_id": f"later-{body['turn']['message']['id']}",
        })
        assert r.status_code == 201, r.text
        self._changed.set()
