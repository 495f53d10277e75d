"""Identifiers: a type prefix, 14 hex digits of microseconds, then 10 random ones.

Ids of one type sort by creation time (strictly, within one process: the clock part
never repeats), which makes them usable as pagination cursors.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = [0]


def _tick() -> int:
    """Microseconds since the epoch, strictly increasing across calls in this process."""
    now = time.time_ns() // 1000
    with _lock:
        now = max(now, _last[0] + 1)
        _last[0] = now
    return now


def new_id(prefix: str) -> str:
    return f"{prefix}_{_tick():014x}{secrets.token_hex(5)}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"

