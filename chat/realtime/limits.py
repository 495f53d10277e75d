"""Per-socket protection: a token-bucket rate limit, a payload size limit, a typing throttle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` events per second on average, bursts of up to ``burst``."""

    # One per socket (and per connection for malformed packets): no per-instance dict.
    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class TypingThrottle:
    """Lets a ``typing: true`` through at most once per ``interval`` per conversation;
    a ``typing: false`` always passes and re-arms the next start."""

    __slots__ = ("_last", "clock", "interval")

    def __init__(self, interval: float, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}

    def allow(self, conversation_id: str, typing: bool) -> bool:
        if not typing:
            self._last.pop(conversation_id, None)
            return True
        now = self.clock()
        last = self._last.get(conversation_id)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) > 1000:  # a socket typing in a thousand conversations: start over
            self._last.clear()
        self._last[conversation_id] = now
        return True


def payload_size(data: Any) -> int:
    """Bytes of ``data`` as compact JSON (about what it took on the wire)."""
    try:
        return len(orjson.dumps(data))
    except TypeError:  # binary attachments, huge ints and the like
        return len(repr(data))
