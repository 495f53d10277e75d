"""What the client raises."""

from __future__ import annotations

from typing import Any


class ParleyError(Exception):
    """Base of every error of this package."""


class ConnectRefused(ParleyError):
    """The server refused the connection (bad widget key, hmac, token, session, origin)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AckError(ParleyError):
    """The server answered an event with ``{"ok": false, "error": {...}}``."""

    def __init__(self, event: str, ack: Any) -> None:
        error = ack.get("error") if isinstance(ack, dict) else None
        error = error if isinstance(error, dict) else {}
        self.event = event
        self.ack = ack
        self.code = str(error.get("code", "bad_ack"))
        self.message = str(error.get("message", ack))
        super().__init__(f"{event}: {self.code}: {self.message}")


class NotConnected(ParleyError):
    """The connection is down (and did not come back within the timeout)."""


class AckTimeout(ParleyError):
    """No answer from the server within the timeout."""
