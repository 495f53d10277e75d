"""In-process publish/subscribe, called after a transaction commits.

Subscribers are the immediate listeners (real-time fan-out, bots). Work that must
survive a crash (webhooks, provider sends) is written to the outbox inside the
transaction instead; the bus only wakes the worker. A failing subscriber is logged
and never fails the write that caused the event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str  # "message.created", "message.status", "conversation.created", ...
    workspace_id: str
    data: Mapping[str, Any]  # a view (``chat.services.views``) or a small JSON object
    # Who caused it, so a fan-out can skip the originating socket.
    origin: str | None = None


Subscriber = Callable[[DomainEvent], Awaitable[None]]


@dataclass
class Bus:
    _subscribers: list[Subscriber] = field(default_factory=list)
    _on_outbox: list[Callable[[], None]] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def on_outbox_written(self, wake: Callable[[], None]) -> None:
        self._on_outbox.append(wake)

    def outbox_written(self) -> None:
        for wake in self._on_outbox:
            wake()

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            for subscriber in self._subscribers:
                try:
                    await subscriber(event)
                except Exception:  # a listener's failure must not undo a committed write
                    log.exception("subscriber %r failed on %s", subscriber, event.type)
