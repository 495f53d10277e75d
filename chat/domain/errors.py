"""Errors that services raise; the edges turn them into the contract's JSON shape."""

from __future__ import annotations

import math
from typing import Any


class ParleyError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the error's response carries besides its JSON body."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(ParleyError):
    status = 400
    code = "bad_request"


class Unauthorized(ParleyError):
    status = 401
    code = "unauthorized"


class Forbidden(ParleyError):
    status = 403
    code = "forbidden"


class NotFound(ParleyError):
    status = 404
    code = "not_found"


class Conflict(ParleyError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ParleyError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ParleyError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(ParleyError):
    status = 422
    code = "validation_error"


class RateLimited(ParleyError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
