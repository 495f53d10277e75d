"""Outbox handler: POST a signed webhook (subscriptions and ``notify_url``), record the try."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.ids import new_id
from chat.security import webhook_signature
from chat.services import egress
from connectors.errors import GiveUp, RetryLater


class WebhookDelivery:
    def __init__(
        self,
        db: Database,
        http: httpx.AsyncClient,
        timeout: float,
        allow_private_networks: bool = False,
    ) -> None:
        self.db = db
        self.http = http
        self.timeout = timeout
        self.allow_private_networks = allow_private_networks

    async def __call__(self, entry: m.OutboxEntry) -> None:
        url: str = entry.payload["url"]
        subscription_id: str | None = entry.payload.get("subscription_id")
        if not self.allow_private_networks:
            problem = await egress.resolved_problem(url)
            if problem is not None:
                started = time.perf_counter()
                await self._record(entry, subscription_id, url, False, None, f"blocked: {problem}", started)
                raise GiveUp(f"blocked: {problem}")
        secret = await self._secret(entry.workspace_id, subscription_id)
        body = json.dumps(entry.payload["body"], separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Parley-Webhooks/1",
            "X-Parley-Signature": webhook_signature(secret, body),
            "X-Parley-Event": entry.payload["body"].get("type", ""),
            "X-Parley-Delivery": entry.id,
        }
        started = time.perf_counter()
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            # One deadline for the whole exchange (httpx's timeout is per read), and
            # the body is never read: only the status matters, so a receiver that
            # trickles bytes cannot hold the delivery past its lease.
            async with asyncio.timeout(self.timeout):
                async with self.http.stream(
                    "POST", url, content=body, headers=headers, timeout=self.timeout
                ) as response:
                    status = response.status_code
                    retry_after = _seconds(response.headers.get("retry-after"))
        except (httpx.TimeoutException, TimeoutError):
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        await self._record(entry, subscription_id, url, ok, status, error, started)
        if ok:
            return
        if status is None or status >= 500 or status in (408, 429):
            raise RetryLater(error or f"HTTP {status}", status_code=status, retry_after=retry_after)
        raise GiveUp(f"HTTP {status}", status_code=status)

    async def _secret(self, workspace_id: str, subscription_id: str | None) -> str:
        async with self.db.read() as session:
            if subscription_id is None:
                ws = await session.get(m.Workspace, workspace_id)
                if ws is None:
                    raise GiveUp("workspace removed")
                return ws.webhook_secret
            sub = await session.get(m.WebhookSubscription, subscription_id)
            if sub is None or not sub.active:
                raise GiveUp("subscription removed")
            return sub.secret

    async def _record(
        self,
        entry: m.OutboxEntry,
        subscription_id: str | None,
        url: str,
        ok: bool,
        status: int | None,
        error: str | None,
        started: float,
    ) -> None:
        async with self.db.write() as session:
            session.add(
                m.DeliveryAttempt(
                    id=new_id("att"),
                    workspace_id=entry.workspace_id,
                    outbox_id=entry.id,
                    message_id=entry.ref_id,
                    subscription_id=subscription_id,
                    target=url,
                    attempt=entry.attempts,
                    ok=ok,
                    status_code=status,
                    error=error,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                )
            )


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is rare from receivers: ignored)."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None
