"""Outbox handler (kind ``deliver``): send a stored outbound message through its
channel's connector, record the attempt, store the provider's id, move the status.

Failures come back as the connector's typed errors (``RetryLater`` / ``GiveUp``, with
the provider's code and message); the worker retries or gives up, and on giving up
``gave_up`` marks the message ``failed`` with that reason.

At-least-once window: a process that dies after the provider accepted a message and
before the attempt is committed sends it again when the lease lapses. Connectors whose
provider takes an idempotency key pass ``Outbound.message_id`` (stable across retries)
so that the provider drops the repeat; for the others a repeat in that window is
possible. Once the provider's id is committed, a re-run sends nothing.

HTTP clients: sends go round-robin over several ``httpx.AsyncClient``s. One client's
connection pool (httpcore) walks every connection of the pool, with a ``poll`` call per
idle one, each time a request starts or ends: with the 32 sends a lane may have in
flight that cost 2-3 ms of CPU per request, against under 1 ms over clients of 4 to 16
connections each (bench/drain.py, docs/benchmarks.md). ``settings.delivery_http_clients``
says how many.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import DomainEvent
from chat.db import models as m
from chat.domain.enums import MessageStatus
from chat.domain.errors import Unprocessable
from chat.services.deliveries import Deliveries, Outcome, Plan
from chat.services.provider_egress import provider_origins
from connectors.base import Connector, KeepsTokens, Outbound, SendResult, TokenCache
from connectors.errors import DeliveryError, GiveUp, RetryLater

log = logging.getLogger(__name__)

# The channel registry's lookup: the connector class for a channel type, if any.
ConnectorFor = Callable[[str], type[Connector] | None]


class Deliver:
    def __init__(
        self,
        deliveries: Deliveries,
        http: httpx.AsyncClient | Sequence[httpx.AsyncClient],
        connector_for: ConnectorFor,
        timeout: float = 30.0,
        tokens: TokenCache | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.clients = [http] if isinstance(http, httpx.AsyncClient) else list(http)
        if not self.clients:
            raise ValueError("Deliver needs at least one HTTP client")
        self._turn = itertools.count()
        self.connector_for = connector_for
        self.timeout = timeout  # one deadline for a whole send, whatever the connector does
        self.tokens = tokens  # providers' access tokens, kept across sends

    async def __call__(self, entry: m.OutboxEntry) -> None:
        try:
            plan = await self.deliveries.prepare(
                entry.payload["message_id"], entry.payload.get("address")
            )
        except Unprocessable as exc:
            raise GiveUp(exc.message, code=exc.code) from exc
        if plan is None:
            return
        connector_class = self.connector_for(plan.channel_type)
        if connector_class is None:
            raise GiveUp(
                f"no connector sends on '{plan.channel_type}' channels",
                code="channel_not_supported",
            )
        started = time.perf_counter()
        try:
            result = await self._send(connector_class, plan)
        except DeliveryError as exc:
            await self.deliveries.record(entry, plan, _failed(exc, started))
            raise
        except Exception as exc:
            log.exception("connector %s crashed on message %s", plan.channel_type, plan.message_id)
            await self.deliveries.record(
                entry,
                plan,
                Outcome(ok=False, duration_ms=_ms(started), error_code="crashed", error=repr(exc)),
            )
            raise
        status = MessageStatus.DELIVERED if result.status == "delivered" else MessageStatus.SENT
        await self.deliveries.record(
            entry,
            plan,
            Outcome(
                ok=True,
                duration_ms=_ms(started),
                provider_message_id=result.provider_message_id,
                status=status,
            ),
        )

    async def _send(self, connector_class: type[Connector], plan: Plan) -> SendResult:
        http = self.clients[next(self._turn) % len(self.clients)]
        connector = connector_class(plan.config, http)
        if self.tokens is not None and isinstance(connector, KeepsTokens):
            connector.use_tokens(self.tokens)
        outbound = Outbound(
            message_id=plan.message_id,
            to=plan.address,
            content=plan.content,
            reply_to=plan.reply_to,
            options=plan.options,
            locale=plan.locale,
        )
        try:
            async with asyncio.timeout(self.timeout):
                with provider_origins(plan.config):
                    return await connector.send(outbound)
        except TimeoutError as exc:
            raise RetryLater("timeout", code="timeout") from exc
        # A connector should say what its transport errors mean; these always mean "retry".
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}", code="connection_error") from exc

    async def gave_up(
        self, session: AsyncSession, entry: m.OutboxEntry, error: DeliveryError
    ) -> Sequence[DomainEvent]:
        event = await self.deliveries.fail(
            session, entry.payload["message_id"], error.code, error.message, error.status_code
        )
        return [event] if event is not None else []


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _failed(exc: DeliveryError, started: float) -> Outcome:
    return Outcome(
        ok=False,
        duration_ms=_ms(started),
        error_code=exc.code,
        error=exc.message,
        status_code=exc.status_code,
    )
