"""Meta's Graph API, shared by the WhatsApp Cloud API and Messenger connectors.

- ``signed_by_app``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>``,
  checked over the raw bytes (Meta escapes non-ASCII as ``\\uXXXX`` in what it signs, so the
  body is never re-serialised first) and compared in constant time.
- ``hub_challenge``: the GET handshake (``hub.mode=subscribe``, ``hub.verify_token``,
  answered with ``hub.challenge`` as plain text).
- ``post``: one Graph call with a bearer token; the Graph error envelope
  ``{"error": {"message", "type", "code", "error_subcode"?, "error_data"?, "is_transient"?}}``
  becomes ``RetryLater`` (throttling, transient and server errors) or ``GiveUp`` (the rest),
  carrying the Graph ``code`` as the error code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.base import WebhookAnswer, WebhookRejected, WebhookRequest
from connectors.errors import GiveUp, RetryLater

DEFAULT_BASE_URL = "https://graph.facebook.com"
SIGNATURE_HEADER = "x-hub-signature-256"

# Graph codes that mean "not now": throttling (app, account, WABA, throughput, pair rate)
# and Meta's own temporary failures. Everything else is permanent.
RETRY_CODES = frozenset(
    {
        1,  # API unknown (often transient)
        2,  # API service temporarily unavailable
        4,  # application request limit
        17,  # user request limit
        32,  # page request limit
        341,  # application limit
        613,  # calls within one hour exceeded
        1200,  # Messenger: temporary send message failure, try again later
        80007,  # WhatsApp Business Account rate limit
        130429,  # Cloud API throughput reached
        131000,  # something went wrong (Meta asks to retry)
        131016,  # service unavailable
        131056,  # pair rate limit: too many messages to one recipient
        133004,  # server temporarily unavailable
    }
)


def base_url(config: Mapping[str, Any]) -> str:
    return str(config.get("api_base_url") or DEFAULT_BASE_URL).rstrip("/")


def signature(app_secret: str, body: bytes) -> str:
    """The header value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signed_by_app(request: WebhookRequest, app_secret: str) -> None:
    """Raise ``WebhookRejected`` (401) unless a POST carries the app's signature."""
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise WebhookRejected("missing X-Hub-Signature-256")
    if not hmac.compare_digest(
        given.strip().lower().encode(), signature(app_secret, request.body).encode()
    ):
        raise WebhookRejected("X-Hub-Signature-256 does not match the body")


def verify_token_matches(request: WebhookRequest, verify_token: str) -> None:
    """A GET handshake: ``hub.verify_token`` must be the channel's (403 otherwise)."""
    given = request.query.get("hub.verify_token", "")
    if request.query.get("hub.mode") != "subscribe" or not given:
        raise WebhookRejected("not a subscribe handshake", status=403)
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        raise WebhookRejected("hub.verify_token does not match", status=403)


def verify(request: WebhookRequest, app_secret: str, verify_token: str) -> None:
    """A Graph webhook: a GET is the verify-token handshake, anything else is signed."""
    if request.method.upper() == "GET":
        verify_token_matches(request, verify_token)
    else:
        signed_by_app(request, app_secret)


def hub_challenge(request: WebhookRequest) -> WebhookAnswer | None:
    """The answer to a verified GET handshake: ``hub.challenge`` as plain text."""
    if request.method.upper() != "GET":
        return None
    return WebhookAnswer(body=request.query.get("hub.challenge", "").encode())


async def post(http: httpx.AsyncClient, url: str, token: str, payload: Mapping[str, Any]) -> Any:
    """POST ``payload`` as JSON with ``Authorization: Bearer``; the decoded answer, or
    ``RetryLater`` / ``GiveUp`` with the Graph error's code and message."""
    try:
        response = await http.post(
            url, json=dict(payload), headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.TimeoutException as exc:
        raise RetryLater(f"Graph API timed out: {type(exc).__name__}", code="timeout") from exc
    except httpx.TransportError as exc:
        raise RetryLater(f"{type(exc).__name__}: {exc}", code="connection_error") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict) and "error" not in body:
        return body
    raise error_from(response, body)


def error_from(response: httpx.Response, body: Any) -> RetryLater | GiveUp:
    status = response.status_code
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = response.text[:300] or response.reason_phrase
        if status == 429 or status >= 500 or response.is_success:
            return RetryLater(
                f"Graph API answered {status}: {text}",
                code=f"http_{status}",
                status_code=status,
                retry_after=_retry_after(response),
            )
        return GiveUp(
            f"Graph API answered {status}: {text}", code=f"http_{status}", status_code=status
        )
    code = error.get("code")
    message = str(error.get("message") or error.get("type") or "Graph API error")
    details = (
        error.get("error_data", {}).get("details")
        if isinstance(error.get("error_data"), dict)
        else None
    )
    if details and details not in message:
        message = f"{message}: {details}"
    subcode = error.get("error_subcode")
    if subcode is not None:
        message = f"{message} (subcode {subcode})"
    code_text = str(code) if code is not None else f"http_{status}"
    if code in RETRY_CODES or error.get("is_transient") is True or status == 429 or status >= 500:
        return RetryLater(
            message, code=code_text, status_code=status, retry_after=_retry_after(response)
        )
    return GiveUp(message, code=code_text, status_code=status)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` (seconds), else the usage header's ``estimated_time_to_regain_access``
    (minutes), when Graph gives one."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    usage = response.headers.get("x-business-use-case-usage")
    if usage:
        try:
            minutes = [
                float(item.get("estimated_time_to_regain_access") or 0)
                for items in json.loads(usage).values()
                for item in items
                if isinstance(item, dict)
            ]
        except (ValueError, AttributeError, TypeError):
            return None
        if minutes and max(minutes) > 0:
            return max(minutes) * 60.0
    return None
