"""What a customer's backend computes to identify its users to Parley (no JWT library needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


def user_hmac(identity_secret: str, external_id: str) -> str:
    """The ``user.hmac`` of the connect auth: hex HMAC-SHA256(identity_secret, external_id)."""
    return hmac.new(identity_secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def user_token(
    identity_secret: str, external_id: str, ttl_seconds: int = 3600, **claims: Any
) -> str:
    """An HS256 JWT for ``user_token``: ``sub`` = external id, expiring after ``ttl_seconds``."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": external_id, "iat": now, "exp": now + ttl_seconds, **claims}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(payload))}"
    mac = hmac.new(identity_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
