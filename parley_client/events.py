"""A buffer of received events that callers can wait on, in arrival order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Match = Callable[[Any], bool]


@dataclass
class _Waiter:
    name: str
    match: Match | None
    future: asyncio.Future[Any]


class EventBuffer:
    """Keeps up to ``capacity`` events; ``wait_for`` takes the first that matches."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._items: deque[tuple[str, Any]] = deque(maxlen=capacity)
        self._waiters: list[_Waiter] = []

    def push(self, name: str, data: Any) -> None:
        for waiter in self._waiters:
            if waiter.name == name and not waiter.future.done() and _matches(waiter.match, data):
                waiter.future.set_result(data)
                self._waiters.remove(waiter)
                return
        self._items.append((name, data))

    async def wait_for(self, name: str, match: Match | None = None, timeout: float = 5.0) -> Any:
        """The first buffered or future ``name`` event for which ``match(data)`` holds."""
        for item in self._items:
            if item[0] == name and _matches(match, item[1]):
                self._items.remove(item)
                return item[1]
        waiter = _Waiter(name, match, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def take(self, name: str | None = None) -> list[Any]:
        """Every buffered event named ``name`` (all events as (name, data) if None), removed."""
        if name is None:
            items = list(self._items)
            self._items.clear()
            return items
        found = [data for n, data in self._items if n == name]
        kept = [(n, data) for n, data in self._items if n != name]
        self._items.clear()
        self._items.extend(kept)
        return found

    def clear(self) -> None:
        self._items.clear()


def _matches(match: Match | None, data: Any) -> bool:
    if match is None:
        return True
    try:
        return bool(match(data))
    except (KeyError, TypeError, AttributeError):
        return False
