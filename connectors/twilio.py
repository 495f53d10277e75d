"""What Twilio's connectors share (SMS in ``twilio_sms``, voice in ``twilio_voice``).

| what | how |
| --- | --- |
| account | ``TwilioAccount`` from a channel's config: ``account_sid``, ``auth_token``, ``api_base_url``, ``status_callback_url`` |
| send | ``TwilioAccount.create(resource, form)``: a form POST to ``/2010-04-01/Accounts/{AccountSid}/{resource}.json`` with HTTP Basic ``AccountSid:AuthToken``; the created resource's JSON |
| errors | the JSON error body ``{"code", "message", "more_info", "status"}``; timeouts, connection errors, 5xx and 429 (``Retry-After``) are ``RetryLater``, every other 4xx (21211 bad To, 20003 auth ...) is ``GiveUp`` with Twilio's code |
| verify | ``X-Twilio-Signature``: base64 HMAC-SHA1 (key: Auth Token) over the URL Twilio requested followed by every POST parameter, names sorted, ``name + value``; the URL is tried with and without its default port, as twilio-python's ``RequestValidator`` does |

Which URL Twilio signed: the one configured in Twilio (the number's webhook, and the
``StatusCallback`` Parley sends). Behind a proxy the request URL Parley sees differs
from it, so the candidates are the configured ``status_callback_url`` (as configured, and
with the query the request carried), the request URL, and the request URL with the
proxy's ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` (path and query always as received,
so a request signed for another endpoint does not verify here). ``signed_url`` says which
one it was, for answers that must point back at it (a voice ``<Gather action>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connectors.base import WebhookRejected, WebhookRequest
from connectors.errors import GiveUp, RetryLater

API_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "x-twilio-signature"


class TwilioAccount:
    """One Twilio account as a channel's config names it, with the shared HTTP client."""

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config.get("api_base_url") or API_BASE_URL).rstrip("/")
        self.account_sid = str(config["account_sid"])
        self.auth_token = str(config["auth_token"])
        self.status_callback_url: str | None = config.get("status_callback_url")
        self.http = http

    async def create(
        self, resource: str, form: Sequence[tuple[str, str]], what: str = "resource"
    ) -> dict[str, Any]:
        """POST ``form`` to the account's ``resource`` (``Messages``, ``Calls``); the created
        resource, which has a ``sid``. Raises ``RetryLater`` or ``GiveUp``."""
        url = f"{self.base}/2010-04-01/Accounts/{self.account_sid}/{resource}.json"
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
        if r.status_code >= 300:
            raise error(r)
        body = _json(r)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise RetryLater(f"Twilio accepted the {what} without a sid", status_code=r.status_code)
        return body

    # -- webhooks -----------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``WebhookRejected`` unless Twilio signed the request."""
        self.signed_url(request)

    def signed_url(self, request: WebhookRequest) -> str:
        """The URL Twilio signed this request for; ``WebhookRejected`` when none matches."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("no X-Twilio-Signature header")
        body_hash = dict(parse_qsl(urlsplit(request.url).query)).get("bodySHA256")
        if body_hash is not None:
            # A JSON-bodied webhook: the URL (carrying the body's hash) is signed alone.
            actual = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(actual.encode(), body_hash.encode()):
                raise WebhookRejected("the body does not match its bodySHA256")
        params = {} if body_hash is not None else signed_params(request)
        for url in self._signed_url_candidates(request):
            if validate(self.auth_token, url, params, signature):
                return url
        raise WebhookRejected("the X-Twilio-Signature does not match")

    def _signed_url_candidates(self, request: WebhookRequest) -> list[str]:
        urls: list[str] = []
        received = urlsplit(request.url)
        if self.status_callback_url:
            urls.append(self.status_callback_url)
            configured = urlsplit(self.status_callback_url)
            if received.query and not configured.query:
                # A URL Parley derived from it (a <Gather action> with its step number).
                urls.append(urlunsplit(configured._replace(query=received.query)))
        urls.append(request.url)
        proto = _first(request.headers.get("x-forwarded-proto"))
        host = _first(request.headers.get("x-forwarded-host"))
        if proto or host:
            forwarded = received._replace(
                scheme=proto or received.scheme, netloc=host or received.netloc
            )
            urls.append(urlunsplit(forwarded))
        return list(dict.fromkeys(urls))


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


def params(request: WebhookRequest) -> dict[str, list[str]]:
    """The form parameters: the POST body's, or for a GET webhook the URL's query."""
    if request.method.upper() == "POST":
        pairs = parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
    else:
        pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        found.setdefault(name, []).append(value)
    return found


def fields(request: WebhookRequest) -> dict[str, str]:
    """Each form parameter's first value."""
    return {name: values[0] for name, values in params(request).items()}


def signed_params(request: WebhookRequest) -> dict[str, list[str]]:
    """What is signed besides the URL: the POST parameters (a GET's are in the URL)."""
    return params(request) if request.method.upper() == "POST" else {}


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


# -- answers ---------------------------------------------------------------------


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error(r: httpx.Response) -> RetryLater | GiveUp:
    """What a Twilio error answer means: retry (429, 5xx) or give up (any other 4xx)."""
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
