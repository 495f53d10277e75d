"""X (Twitter) direct messages: v2 DM create out, Account Activity API webhooks in.

Out: ``POST {api_base_url}/2/dm_conversations/with/{participant_id}/messages`` with
JSON ``{"text", "attachments"?}``, signed with OAuth 1.0a in user context (HMAC-SHA1,
RFC 5849, implemented here: ``oauth1_header``). X answers 201 ``{"data":
{"dm_conversation_id", "dm_event_id"}}``; the provider message id is the DM event id,
the same id the Account Activity webhook later echoes and mark-read events name.

| answer | means |
| --- | --- |
| 429 (``x-rate-limit-reset`` epoch seconds, or ``retry-after``), 5xx, timeouts | ``RetryLater`` |
| 400 invalid request, 401 (bad credentials), 403 (recipient refuses DMs ...), 404 | ``GiveUp`` |

Errors are problem JSON (``title``, ``detail``, ``type``, ``errors[]``); the code is the
problem type's last path segment (``invalid-request``), or the HTTP status when the type
is ``about:blank``; a v1.1-style ``errors[].code`` wins when present.

In: X checks the URL with ``GET ?crc_token=`` (answered with ``sha256=`` + base64
HMAC-SHA256(consumer secret, token) as JSON); events are POSTed with
``x-twitter-webhooks-signature: sha256=`` + base64 HMAC-SHA256(consumer secret, raw
body), compared in constant time. The CRC GET itself is not signed (the answer is the
proof), so ``verify`` lets a GET through only when it carries a ``crc_token``.

Both directions arrive as ``direct_message_events``: the subscribed account's own sends
(``sender_id == for_user_id``, including ours through the API) are echoes and are never
stored. A mark-read event from the customer names ``last_read_event_id``: that message
becomes ``read`` (a ``StatusUpdate``; Parley ignores ids it did not send), and so does
everything sent to the customer before it: the id is a Snowflake, whose top bits are its
creation time (``snowflake_time``), so the event is also a ``read`` ``Watermark`` at that
time. A mark-read by the account itself, and typing indicators, carry nothing Parley
stores.

v2's DM create takes no quick-reply options and takes media only as an uploaded
``media_id``: buttons go out as text with the options listed. An image, GIF or video is
fetched from its URL and uploaded with X's chunked upload (``connectors/x_media.py``),
then attached; other media (documents, audio) go out as text with their link, which X
shows as a card. ``Outbound.options["media_id"]`` attaches an already uploaded media as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import httpx

from connectors import x_media
from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    SendResult,
    StatusUpdate,
    Watermark,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater

API_BASE_URL = "https://api.x.com"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
MAX_TEXT = 10_000

_MEDIA_TYPES = {"photo": "image/jpeg", "animated_gif": "video/mp4", "video": "video/mp4"}


class XDirectMessages:
    type: ClassVar[str] = "twitter"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config.get("api_base_url") or API_BASE_URL).rstrip("/")
        self.consumer_key = str(config["consumer_key"])
        self.consumer_secret = str(config["consumer_secret"])
        self.access_token = str(config["access_token"])
        self.access_token_secret = str(config["access_token_secret"])
        self.http = http

    # -- outbound ----------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        participant = message.to.strip()
        if not participant.isdigit():
            raise GiveUp(f"an X user id is numeric, not {participant!r}", code="invalid_recipient")
        options = dict(message.options)
        content = message.content
        if content.get("type") == "media" and not options.get("media_id"):
            category = x_media.category_for(content)
            if category is not None:
                media = await x_media.fetch(self.http, content, category)
                options["media_id"] = await x_media.upload(self, media)
        body = request_for(content, options)
        r = await self._post(
            f"{self.base}/2/dm_conversations/with/{participant}/messages", json=body
        )
        if r.status_code in (200, 201):
            try:
                event_id = r.json()["data"]["dm_event_id"]
            except (ValueError, KeyError, TypeError) as exc:
                raise RetryLater(
                    f"HTTP {r.status_code} without a dm_event_id", code="bad_answer"
                ) from exc
            return SendResult(str(event_id))
        raise _failure(r)

    async def call(self, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]:
        """One signed request whose 2xx answer is JSON (``{}`` when empty); any other
        answer raised as ``RetryLater`` / ``GiveUp`` (``x_media.SignedApi``)."""
        r = await self._request(method, url, **kwargs)
        if not 200 <= r.status_code < 300:
            raise _failure(r)
        if not r.content:
            return {}
        try:
            answer = r.json()
        except ValueError as exc:
            raise RetryLater(f"HTTP {r.status_code} with a body that is not JSON", code="bad_answer") from exc
        return answer if isinstance(answer, dict) else {}

    async def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self._request("POST", url, **kwargs)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``url`` carries its query: OAuth signs it as sent. JSON and multipart bodies
        are not part of the signature (RFC 5849 3.4.1.3.1)."""
        auth = oauth1_header(
            method,
            url,
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            token=self.access_token,
            token_secret=self.access_token_secret,
        )
        try:
            return await self.http.request(method, url, headers={"authorization": auth}, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}", code="connection_error") from exc

    # -- inbound -----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        if request.method.upper() == "GET":
            if request.query.get("crc_token"):
                return  # the CRC: the answer is the proof, X does not sign the GET
            raise WebhookRejected("a GET without crc_token")
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise WebhookRejected("no x-twitter-webhooks-signature header")
        expected = "sha256=" + _hmac_b64(self.consumer_secret, request.body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("wrong x-twitter-webhooks-signature", status=403)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        token = request.query.get("crc_token")
        if request.method.upper() != "GET" or not token:
            return None
        answer = {"response_token": crc_response_token(self.consumer_secret, token)}
        return WebhookAnswer(200, json.dumps(answer).encode(), "application/json")

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        envelope = json.loads(request.body)
        if not isinstance(envelope, dict):
            raise TypeError("an Account Activity event is a JSON object")
        me = str(envelope.get("for_user_id") or "")
        users = envelope.get("users")
        if not isinstance(users, dict):  # the docs' example nests users inside apps
            users = (envelope.get("apps") or {}).get("users") or {}
        found: list[Parsed] = []
        for event in envelope.get("direct_message_events") or []:
            msg = _message_create(event, me, users)
            if msg is not None:
                found.append(msg)
        for event in envelope.get("direct_message_mark_read_events") or []:
            found += _mark_read(event, me)
        # direct_message_indicate_typing_events and the tweet/follow/... activities: nothing
        return found


# -- OAuth 1.0a (RFC 5849) ------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding, as RFC 5849 3.6 wants it (only unreserved kept)."""
    return quote(value, safe="-._~")


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1: method, base string URI and normalised parameters.

    ``params`` are the query's, a form body's and the ``oauth_*`` ones (without
    ``oauth_signature``); the query in ``url`` is taken from ``url`` itself."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    base_uri = urlunsplit((scheme, netloc, parts.path or "/", "", ""))
    pairs = list(params)
    if parts.query:
        pairs.extend(_query_pairs(parts.query))
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    normalised = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join((method.upper(), percent_encode(base_uri), percent_encode(normalised)))


def hmac_sha1_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def oauth1_header(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    form: Iterable[tuple[str, str]] = (),
    nonce: str | None = None,
    timestamp: str | None = None,
) -> str:
    """The ``Authorization: OAuth ...`` value for one request (a JSON body is not signed)."""
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": timestamp or str(int(time.time())),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    base = signature_base_string(method, url, [*oauth.items(), *form])
    oauth["oauth_signature"] = hmac_sha1_signature(base, consumer_secret, token_secret)
    return "OAuth " + ", ".join(
        f'{percent_encode(k)}="{percent_encode(v)}"' for k, v in sorted(oauth.items())
    )


def parse_oauth_header(value: str) -> dict[str, str]:
    """The parameters of an ``Authorization: OAuth`` header (RFC 5849 3.5.1), decoded."""
    if not value.startswith("OAuth "):
        raise ValueError("not an OAuth header")
    params: dict[str, str] = {}
    for item in value[len("OAuth ") :].split(","):
        item = item.strip()
        if not item:
            continue
        key, _, raw = item.partition("=")
        if not (raw.startswith('"') and raw.endswith('"')):
            raise ValueError(f"unquoted OAuth parameter {key!r}")
        params[unquote(key)] = unquote(raw[1:-1])
    return params


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in query.split("&"):
        if item:
            k, _, v = item.partition("=")
            pairs.append((unquote_plus(k), unquote_plus(v)))
    return pairs


# -- webhook signatures -------------------------------------------------------------------


def _hmac_b64(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    return "sha256=" + _hmac_b64(consumer_secret, crc_token.encode())


def webhook_signature(consumer_secret: str, body: bytes) -> str:
    return "sha256=" + _hmac_b64(consumer_secret, body)


# -- mapping --------------------------------------------------------------------------------


def request_for(content: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Parley content -> the v2 DM create body."""
    kind = content.get("type")
    body: dict[str, Any]
    if kind == "text":
        body = {"text": str(content["text"])}
    elif kind == "media":
        caption = str(content.get("caption") or "")
        if options.get("media_id"):
            body = {"attachments": [{"media_id": str(options["media_id"])}]}
            if caption:
                body["text"] = caption
        else:
            body = {"text": f"{caption}\n{content['url']}" if caption else str(content["url"])}
    elif kind == "buttons":
        lines = [str(content["text"])]
        lines += [f"{i}. {b['title']}" for i, b in enumerate(content["buttons"], start=1)]
        body = {"text": "\n".join(lines)}
    elif kind == "location":
        lat, lon = content["latitude"], content["longitude"]
        where = ", ".join(str(p) for p in (content.get("name"), content.get("address")) if p)
        link = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}"
        body = {"text": f"{where}\n{link}" if where else link}
    else:
        raise GiveUp(f"X direct messages cannot carry {kind!r} content", code="unsupported_content")
    if len(body.get("text", "")) > MAX_TEXT:
        raise GiveUp(f"X takes at most {MAX_TEXT} characters", code="text_too_long")
    return body


def _failure(r: httpx.Response) -> RetryLater | GiveUp:
    try:
        problem = r.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {}
    code = str(r.status_code)
    kind = problem.get("type")
    if isinstance(kind, str) and kind != "about:blank":
        code = kind.rstrip("/").rsplit("/", 1)[-1]
    errors = [e for e in problem.get("errors") or [] if isinstance(e, dict)]
    if errors and isinstance(errors[0].get("code"), int):
        code = str(errors[0]["code"])
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {r.status_code}")
    details = [str(e["message"]) for e in errors if e.get("message")]
    message = "; ".join([detail, *details])
    if r.status_code == 429 or r.status_code >= 500:
        return RetryLater(
            message, code=code, status_code=r.status_code, retry_after=_retry_after(r)
        )
    return GiveUp(message, code=code, status_code=r.status_code)


def _retry_after(r: httpx.Response) -> float | None:
    after = r.headers.get("retry-after")
    if after and after.strip().isdigit():
        return float(after)
    reset = r.headers.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _message_create(event: Mapping[str, Any], me: str, users: Mapping[str, Any]) -> Inbound | None:
    if not isinstance(event, dict) or event.get("type") != "message_create":
        return None
    create = event.get("message_create") or {}
    sender = str(create.get("sender_id") or "")
    if not sender or "id" not in event or sender == me:
        return None  # the account's own send (ours or from another app): an echo
    data = create.get("message_data") or {}
    text = str(data.get("text") or "")
    content: dict[str, Any] | None = None
    attachment = data.get("attachment") or {}
    media = attachment.get("media") if attachment.get("type") == "media" else None
    if isinstance(media, dict):
        content = _media(media, text)
    if content is None and text:
        content = {"type": "text", "text": text}
    if content is None:
        return None
    user = users.get(sender) or {}
    profile: dict[str, Any] = {}
    if user.get("name"):
        profile["name"] = str(user["name"])
    if user.get("screen_name"):
        profile["username"] = str(user["screen_name"])
    return Inbound(
        provider_message_id=str(event["id"]),
        sender=sender,
        content=content,
        sent_at=_at(event.get("created_timestamp")),
        profile=profile,
    )


def _media(media: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    kind = str(media.get("type") or "photo")
    url = media.get("media_url_https") or media.get("media_url")
    mime = _MEDIA_TYPES.get(kind, "application/octet-stream")
    variants = (media.get("video_info") or {}).get("variants") or []
    videos = [v for v in variants if isinstance(v, dict) and v.get("url")]
    if kind in ("video", "animated_gif") and videos:
        best = max(videos, key=lambda v: int(v.get("bitrate") or 0))
        url, mime = best["url"], str(best.get("content_type") or mime)
    if not url:
        return None
    # The DM's text ends with the t.co link that stands for the attachment.
    link = media.get("url")
    caption = text.replace(str(link), "").strip() if link else text.strip()
    content: dict[str, Any] = {"type": "media", "url": str(url), "mime_type": mime}
    if caption:
        content["caption"] = caption
    return content


def _mark_read(event: Mapping[str, Any], me: str) -> list[Parsed]:
    if not isinstance(event, dict):
        return []
    reader = str(event.get("sender_id") or "")
    last = str(event.get("last_read_event_id") or "")
    if not last or not reader or reader == me:
        return []  # the account itself read the customer's messages: nothing to store
    found: list[Parsed] = [StatusUpdate(last, "read", at=_at(event.get("created_timestamp")))]
    up_to = snowflake_time(last)
    if up_to is not None:
        found.append(Watermark(reader, "read", up_to))
    return found


SNOWFLAKE_EPOCH_MS = 1288834974657  # X's Snowflake epoch (2010-11-04T01:42:54.657Z)


def snowflake_time(event_id: str) -> datetime | None:
    """When X created the object with this Snowflake id (its top 41 bits count
    milliseconds from X's epoch); None for an id that is not a Snowflake."""
    if not event_id.isdigit() or int(event_id) >> 22 == 0:
        return None
    return datetime.fromtimestamp((int(event_id) >> 22) / 1000 + SNOWFLAKE_EPOCH_MS / 1000, tz=UTC)


def _at(ms: object) -> datetime | None:
    if (isinstance(ms, str) and ms.isdigit()) or isinstance(ms, int):
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return None
