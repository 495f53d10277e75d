"""Twilio Programmable Messaging (SMS and MMS) over the 2010 REST API.

| what | how |
| --- | --- |
| send | form POST ``/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic ``AccountSid:AuthToken``; ``From`` or ``MessagingServiceSid``; ``StatusCallback`` when configured; ``MediaUrl`` for media; a Content template (``HX…``) as ``ContentSid`` + ``ContentVariables`` |
| errors | the JSON error body ``{"code", "message", "more_info", "status"}``; timeouts, connection errors, 5xx and 429 (``Retry-After``) are retried, every other 4xx (21211 bad To, 21610 unsubscribed, 20003 auth ...) is given up with Twilio's code |
| verify | ``X-Twilio-Signature``: base64 HMAC-SHA1 (key: Auth Token) over the URL Twilio requested followed by every POST parameter, names sorted, ``name + value``; the URL is tried with and without its default port, as twilio-python's ``RequestValidator`` does |
| parse | an inbound SMS/MMS (``MessageSid`` without ``MessageStatus``): its ``Body`` as text, each ``MediaUrl{N}`` as media; a status callback (``MessageStatus``): sent, delivered, read, or failed (``failed``, ``undelivered``, ``canceled``) with ``ErrorCode`` |

Which URL Twilio signed: the one configured in Twilio (the number's or Messaging
Service's webhook, and the ``StatusCallback`` Parley sends). Behind a proxy the request
URL Parley sees differs from it, so the candidates are the configured
``status_callback_url``, the request URL, and the request URL with the proxy's
``X-Forwarded-Proto`` / ``X-Forwarded-Host`` (path and query always as received, so a
request signed for another endpoint does not verify here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    SendResult,
    StatusUpdate,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater

API_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "x-twilio-signature"
MAX_MEDIA = 10  # MediaUrl may repeat up to ten times
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")

# MessageStatus -> Parley's delivery status. queued, accepted, scheduled and sending
# say nothing Parley does not know yet (the message is queued); receiving and
# received are inbound.
_STATUS: Mapping[str, Literal["sent", "delivered", "read", "failed"]] = {
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}

# Status callbacks carry only ErrorCode; the reasons of the common delivery errors
# (https://www.twilio.com/docs/api/errors).
_DELIVERY_ERRORS: Mapping[str, str] = {
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
}


EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class TwilioSms:
    type: ClassVar[str] = "sms"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config.get("api_base_url") or API_BASE_URL).rstrip("/")
        self.account_sid = str(config["account_sid"])
        self.auth_token = str(config["auth_token"])
        self.from_number: str | None = config.get("from_number")
        self.messaging_service_sid: str | None = config.get("messaging_service_sid")
        self.status_callback_url: str | None = config.get("status_callback_url")
        self.http = http

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        """Twilio reads the answer to an incoming message as TwiML: an empty
        ``<Response/>`` says "no reply now" (Parley's replies go through the API)."""
        return WebhookAnswer(body=EMPTY_TWIML, content_type="text/xml")

    # -- send ---------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        form = [("To", message.to), *self._sender(), *_content_fields(message.content)]
        if self.status_callback_url:
            form.append(("StatusCallback", self.status_callback_url))
        url = f"{self.base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            r = await self.http.post(
                url,
                content=urlencode(form),
                auth=(self.account_sid, self.auth_token),
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        except httpx.TimeoutException as exc:
            raise RetryLater("Twilio did not answer in time", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"could not reach Twilio: {exc!r}", code="connection_error") from exc
        if r.status_code < 300:
            sid = _json(r).get("sid")
            if not isinstance(sid, str) or not sid:
                raise RetryLater(
                    "Twilio accepted the message without a sid", status_code=r.status_code
                )
            return SendResult(sid)
        raise _error(r)

    def _sender(self) -> list[tuple[str, str]]:
        # With a Messaging Service Twilio picks the sender from its pool.
        if self.messaging_service_sid:
            return [("MessagingServiceSid", self.messaging_service_sid)]
        if self.from_number:
            return [("From", self.from_number)]
        raise GiveUp("the channel has neither from_number nor messaging_service_sid")

    # -- webhooks -----------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("no X-Twilio-Signature header")
        body_hash = dict(parse_qsl(urlsplit(request.url).query)).get("bodySHA256")
        if body_hash is not None:
            # A JSON-bodied webhook: the URL (carrying the body's hash) is signed alone.
            actual = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(actual.encode(), body_hash.encode()):
                raise WebhookRejected("the body does not match its bodySHA256")
        params = {} if body_hash is not None else _signed_params(request)
        for url in self._signed_url_candidates(request):
            if validate(self.auth_token, url, params, signature):
                return
        raise WebhookRejected("the X-Twilio-Signature does not match")

    def _signed_url_candidates(self, request: WebhookRequest) -> list[str]:
        urls: list[str] = []
        if self.status_callback_url:
            urls.append(self.status_callback_url)
        urls.append(request.url)
        proto = _first(request.headers.get("x-forwarded-proto"))
        host = _first(request.headers.get("x-forwarded-host"))
        if proto or host:
            parts = urlsplit(request.url)
            forwarded = parts._replace(scheme=proto or parts.scheme, netloc=host or parts.netloc)
            urls.append(urlunsplit(forwarded))
        return list(dict.fromkeys(urls))

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return None  # Twilio has no verification handshake

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        fields = {name: values[0] for name, values in _params(request).items()}
        sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
        if not sid:
            return []
        if "MessageStatus" in fields:
            update = _status(sid, fields)
            return [update] if update is not None else []
        return _inbound(sid, fields)


# -- signatures (twilio-python twilio/request_validator.py) ----------------------


def compute_signature(auth_token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """base64(HMAC-SHA1(auth_token, url + name + value ... with names sorted)).

    A repeated name contributes all its values, sorted, duplicates removed."""
    payload = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            payload += name + value
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def validate(
    auth_token: str, url: str, params: Mapping[str, Sequence[str]], signature: str
) -> bool:
    """Whether ``signature`` signs ``url`` (with or without its default port) and
    ``params``; compared in constant time."""
    given = signature.encode()
    ok = False
    for candidate in (_remove_port(url), _add_port(url)):
        expected = compute_signature(auth_token, candidate, params).encode()
        ok = hmac.compare_digest(expected, given) or ok
    return ok


def _remove_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.split(":")[0]))


def _add_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _params(request: WebhookRequest) -> dict[str, list[str]]:
    """The form parameters: the POST body's, or for a GET webhook the URL's query."""
    if request.method.upper() == "POST":
        pairs = parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
    else:
        pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _signed_params(request: WebhookRequest) -> dict[str, list[str]]:
    """What is signed besides the URL: the POST parameters (a GET's are in the URL)."""
    return _params(request) if request.method.upper() == "POST" else {}


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


# -- parsing -------------------------------------------------------------------


def _status(sid: str, fields: Mapping[str, str]) -> StatusUpdate | None:
    status = _STATUS.get(fields["MessageStatus"].lower())
    if status is None:
        return None
    code = fields.get("ErrorCode") or None
    if status != "failed":
        return StatusUpdate(sid, status)
    message = fields.get("ErrorMessage") or (
        _DELIVERY_ERRORS.get(code, f"Twilio error {code}")
        if code
        else f"Twilio reports the message {fields['MessageStatus']}"
    )
    return StatusUpdate(sid, "failed", error_code=code, error_message=message)


def _inbound(sid: str, fields: Mapping[str, str]) -> list[Parsed]:
    sender = fields.get("From", "")
    body = fields.get("Body", "")
    profile: dict[str, Any] = {}
    if fields.get("ProfileName"):
        profile["name"] = fields["ProfileName"]
    media = []
    for n in range(_count(fields.get("NumMedia"))):
        url = fields.get(f"MediaUrl{n}")
        if url:
            media.append((url, fields.get(f"MediaContentType{n}")))
    if not media:
        if not body:
            return []
        return [Inbound(sid, sender, {"type": "text", "text": body}, profile=profile)]
    # One Parley message per media item; the first carries the text as its caption.
    # The extra items get ids of their own so a repeated callback still dedupes.
    out: list[Parsed] = []
    for n, (url, mime) in enumerate(media):
        content: dict[str, Any] = {"type": "media", "url": url}
        if mime:
            content["mime_type"] = mime
        if n == 0 and body:
            content["caption"] = body
        out.append(Inbound(sid if n == 0 else f"{sid}/media/{n}", sender, content, profile=profile))
    return out


def _count(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), MAX_MEDIA))
    except ValueError:
        return 0


# -- sending -------------------------------------------------------------------


def _content_fields(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    kind = content.get("type")
    if kind == "text":
        return [("Body", str(content["text"]))]
    if kind == "media":
        fields = [("MediaUrl", str(content["url"]))]
        if content.get("caption"):
            fields.insert(0, ("Body", str(content["caption"])))
        return fields
    if kind == "buttons":
        # SMS has no buttons: the choices are listed for a typed answer.
        lines = [str(content["text"])]
        lines += [f"{i}. {b['title']}" for i, b in enumerate(content["buttons"], start=1)]
        return [("Body", "\n".join(lines))]
    if kind == "location":
        lat, lng = content["latitude"], content["longitude"]
        lines = [str(x) for x in (content.get("name"), content.get("address")) if x]
        lines.append(f"https://maps.google.com/?q={lat},{lng}")
        return [("Body", "\n".join(lines))]
    if kind == "template":
        name = str(content.get("name", ""))
        if not _CONTENT_SID.match(name):
            raise GiveUp(
                f"an SMS template is a Twilio Content SID (HX + 32 hex), not {name!r}",
                code="unsupported_content",
            )
        fields = [("ContentSid", name)]
        params = content.get("parameters")
        if params:
            variables = (
                {str(i): v for i, v in enumerate(params, start=1)}
                if isinstance(params, list)
                else dict(params)
            )
            fields.append(("ContentVariables", json.dumps(variables, separators=(",", ":"))))
        return fields
    raise GiveUp(f"SMS cannot carry {kind!r} content", code="unsupported_content")


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(r: httpx.Response) -> RetryLater | GiveUp:
    body = _json(r)
    code = str(body["code"]) if body.get("code") is not None else None
    message = str(body.get("message") or f"Twilio answered HTTP {r.status_code}")
    if r.status_code == 429 or r.status_code >= 500:
        return RetryLater(
            message,
            code=code,
            status_code=r.status_code,
            retry_after=_retry_after(r.headers.get("retry-after")),
        )
    return GiveUp(message, code=code, status_code=r.status_code)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the worker's backoff applies
