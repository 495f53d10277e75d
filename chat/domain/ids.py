"""Identifiers: a type prefix, then 12 hex digits of milliseconds and 16 random ones.

Ids of one type sort by creation time, which makes them usable as pagination cursors.
"""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
