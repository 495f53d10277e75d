"""The ``X-Parley-Signature`` scheme, shared by Parley's webhooks and its HTTP bots.

``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``: a receiver recomputes
the MAC over the raw body and rejects an old ``t``, so a replayed request fails. Pure and
dependency-free, so ``chat`` (webhooks) and ``bots`` (the HTTP bot) sign alike without
``bots`` importing ``chat``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Parley-Signature"


def webhook_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``X-Parley-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_webhook_signature(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does; shipped so integrators and tests can reuse it."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = webhook_signature(secret, body, t)
    return hmac.compare_digest(expected, header)
