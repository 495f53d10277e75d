"""A fake messaging provider on 127.0.0.1, and a connector that talks to it.

``FakeProvider`` is a real HTTP server in the test's event loop. It checks the bot token
in the path (401 otherwise), records every send, and answers by a script: ``Accept``
(200 with a provider id), ``Fail`` (an error status with the provider's code and
message, and ``Retry-After`` for a 429), or ``HANG`` (hold the request until released
or the caller gives up). Once the script is used up it accepts.

``FakeConnector`` is a connector as a provider module would write one: it is given its
channel's config (``api_base_url``, ``bot_token``) and the shared HTTP client, and maps
the provider's answers to ``SendResult``, ``RetryLater`` and ``GiveUp``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from aiohttp import web

from connectors.base import Outbound, Parsed, SendResult, WebhookAnswer, WebhookRequest
from connectors.errors import GiveUp, RetryLater
from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
TOKEN = "123456:fake-token"


@dataclass(frozen=True)
class Accept:
    status: Literal["sent", "delivered"] = "sent"


@dataclass(frozen=True)
class Fail:
    http_status: int
    code: str
    message: str
    retry_after: float | None = None


Answer = Accept | Fail | Literal["hang"]


@dataclass
class Send:
    to: str
    text: str | None
    idempotency_key: str
    at: float  # time.monotonic() on arrival
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    provider_message_id: str | None = None


@dataclass
class FakeProvider(ScriptedFake[Answer]):
    sends: list[Send] = field(default_factory=list)

    @property
    def holding(self) -> list[Send]:
        return [s for s in self.sends if s.outcome == "held"]

    @property
    def accepted(self) -> list[Send]:
        return [s for s in self.sends if s.provider_message_id is not None]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path != f"/bot{TOKEN}/send":
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "bad token"}}, status=401
            )
        body = await request.json()
        send = Send(
            body.get("to", ""), body.get("text"), body.get("idempotency_key", ""), time.monotonic()
        )
        self.sends.append(send)
        self._changed.set()
        answer = self._script.popleft() if self._script else Accept()
        try:
            if answer == HANG:
                send.outcome = "held"
                self._changed.set()
                await self._release.wait()
                answer = Accept()
        except (asyncio.CancelledError, ConnectionError):
            send.outcome = "caller left"
            self._changed.set()
            raise
        send.outcome = "answered"
        self._changed.set()
        if isinstance(answer, Fail):
            headers = {}
            if answer.retry_after is not None:
                headers["Retry-After"] = str(answer.retry_after)
            return web.json_response(
                {"error": {"code": answer.code, "message": answer.message}},
                status=answer.http_status,
                headers=headers,
            )
        assert isinstance(answer, Accept)
        send.provider_message_id = f"pm_{self.sends.index(send) + 1}"
        return web.json_response({"id": send.provider_message_id, "status": answer.status})



class FakeConnector:
    type: ClassVar[str] = "telegram"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config["api_base_url"]).rstrip("/")
        self.token = str(config["bot_token"])
        self.http = http

    async def send(self, message: Outbound) -> SendResult:
        try:
            r = await self.http.post(
                f"{self.base}/bot{self.token}/send",
                json={
                    "to": message.to,
                    "text": message.content.get("text"),
                    "idempotency_key": message.message_id,
                },
            )
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout", code="timeout") from exc
        body = r.json()
        if r.status_code < 300:
            return SendResult(body["id"], status=body["status"])
        error = body["error"]
        if r.status_code == 429 or r.status_code >= 500:
            after = r.headers.get("retry-after")
            raise RetryLater(
                error["message"],
                code=error["code"],
                status_code=r.status_code,
                retry_after=float(after) if after else None,
            )
        raise GiveUp(error["message"], code=error["code"], status_code=r.status_code)

    def verify(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return None

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        return []
