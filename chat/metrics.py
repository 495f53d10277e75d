"""Prometheus text exposition of a few counters and gauges, no client library needed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.bus import DomainEvent
from chat.db import models as m
from chat.db.engine import Database


class Metrics:
    """Counters owned by one app instance (created in its lifespan)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.http_responses: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}

    async def on_event(self, event: DomainEvent) -> None:
        self.events[event.type] += 1

    async def render(self) -> str:
        lines = [
            "# HELP parley_http_responses_total HTTP responses by status code.",
            "# TYPE parley_http_responses_total counter",
        ]
        lines += [
            f'parley_http_responses_total{{code="{code}"}} {n}'
            for code, n in sorted(self.http_responses.items())
        ]
        lines += [
            "# HELP parley_events_total Domain events published (message.created, ...).",
            "# TYPE parley_events_total counter",
        ]
        lines += [f'parley_events_total{{type="{t}"}} {n}' for t, n in sorted(self.events.items())]
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(m.OutboxEntry.state, func.count()).group_by(m.OutboxEntry.state)
                )
            ).all()
        lines += [
            "# HELP parley_outbox_entries Outbox entries by state.",
            "# TYPE parley_outbox_entries gauge",
        ]
        lines += [f'parley_outbox_entries{{state="{state}"}} {n}' for state, n in sorted(rows)]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {read()}"]
        return "\n".join(lines) + "\n"


class CountResponses:
    """ASGI middleware counting HTTP responses into ``app.state.metrics``."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics = self.metrics()
                if metrics is not None:
                    metrics.http_responses[str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


Render = Callable[[], Awaitable[str]]
