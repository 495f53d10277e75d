"""Identifiers: a type prefix, 14 hex digits of microseconds, then 10 random ones.

Ids of one type sort by creation time (strictly, within one process: the clock part
never repeats), which makes them usable as pagination cursors.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

_lock = threading.Lock()
_last = [0]
# Random bytes come from os.urandom in blocks: one system call per 800 ids, not per id.
_POOL_BYTES = 4000
_pool: list[bytes | int] = [b"", 0]


def _drop_pool() -> None:
    _pool[0], _pool[1] = b"", 0


os.register_at_fork(after_in_child=_drop_pool)  # a forked child must not reuse our bytes


def _tick_and_random() -> tuple[int, str]:
    """Microseconds since the epoch (strictly increasing across calls in this process)
    and 10 random hex digits."""
    now = time.time_ns() // 1000
    with _lock:
        now = max(now, _last[0] + 1)
        _last[0] = now
        block, at = _pool
        assert isinstance(block, bytes) and isinstance(at, int)
        if at + 5 > len(block):
            block, at = os.urandom(_POOL_BYTES), 0
            _pool[0] = block
        _pool[1] = at + 5
    return now, block[at : at + 5].hex()


def new_id(prefix: str) -> str:
    now, rand = _tick_and_random()
    return f"{prefix}_{now:014x}{rand}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"

