"""What a delivery attempt's failure means: retry later, or give up.

A leaf: connectors raise these, the worker (``chat.worker``) catches them. Each carries
the provider's own error code and message when there is one, so the attempt record and
a failed message say what the provider said, not only an HTTP status.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """An attempt to hand something to the outside failed."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # the provider's error code, e.g. "21211" or "OAuthException:190"
        self.status_code = status_code  # the HTTP status the provider answered, if any


class RetryLater(DeliveryError):
    """Another attempt may succeed (timeouts, connection errors, 5xx, 429)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code)
        self.retry_after = retry_after  # seconds the provider asked us to wait


class GiveUp(DeliveryError):
    """No attempt will succeed (a bad recipient, bad credentials, a refused content)."""
