"""Facebook Messenger Platform: Send API and page webhooks (channel type ``messenger``).

Outbound: ``POST {api_base_url}/{api_version}/{page_id}/messages`` with the Page access
token (``Authorization: Bearer``, which Graph accepts like the ``access_token`` query
parameter of Meta's samples). The recipient is the customer's page-scoped id (PSID).

| Parley | Send API ``message`` |
| --- | --- |
| text | ``text`` |
| buttons | ``text`` with ``quick_replies`` (payload = the button id; titles over 20 characters clipped) |
| media | ``attachment`` by URL (``image`` / ``video`` / ``audio`` / ``file`` from ``mime_type`` or the URL's extension); a caption follows as a text message |
| location | a text with the name, address and a map link (a Page cannot send a location) |
| template | refused (``GiveUp``, code ``unsupported_content``): Messenger has no WhatsApp-style templates |

``messaging_type`` is ``RESPONSE``; with ``options["tag"]`` it is ``MESSAGE_TAG`` with that
tag (e.g. ``HUMAN_AGENT``), the only way to write outside the 24-hour window.
Graph errors map through ``connectors.graph``: throttling (4, 32, 613, ...) and 1200
(temporary send failure) -> ``RetryLater``; the rest -> ``GiveUp`` with the Graph code,
e.g. ``10`` (subcode 2018278, outside the allowed window), ``551`` (person unavailable),
``100`` (no matching user), ``190`` (bad token); the subcode is kept in the message.

Inbound: a GET is the ``hub.challenge`` handshake (``hub.verify_token`` checked); a POST
must carry ``X-Hub-Signature-256`` keyed with the App Secret (the legacy SHA-1
``X-Hub-Signature`` alone is refused). Only ``object: "page"`` bodies are read, each
``entry[].messaging[]`` event in turn:

- ``message``: text; a quick reply as the text of the tapped reply; attachments
  (image/video/audio/file/sticker) as media at their CDN URL, a shared location as location,
  fallback/template/share attachments as text with their title and URL; ``reply_to.mid``
  threads. Several attachments in one message are one Parley message each (the 2nd and
  later keyed ``{mid}:{n}``).
- ``message`` with ``is_echo``: the Page's own outgoing message (ours, or one sent from the
  Page inbox) echoed back: ignored, never stored (the echo guard). Any event whose sender is
  the Page itself (or names no sender) is ignored the same way.
- ``postback`` (a tapped button of a template or the persistent menu): the button's title.
- ``message_edit``: a new message keyed ``{mid}:edited:{num_edit}`` replying to the original.
- ``reaction``: a ``Reaction`` to the message ``mid`` (``unreact`` removes it).
- ``delivery``: a ``delivered`` ``StatusUpdate`` for each listed ``mid`` (``mids`` may be
  absent), and a ``delivered`` ``Watermark`` at its ``watermark`` (every message sent to
  the customer before that time).
- ``read``: a ``read`` ``Watermark`` at its ``watermark``. Parley, which knows what it
  sent, moves each of those messages forward.
- ``standby`` (another app holds the thread under the handover protocol), ``optin``,
  ``referral`` and other events are skipped (logged).
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import httpx

from connectors import graph
from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    Reaction,
    SendResult,
    StatusUpdate,
    Watermark,
    WebhookAnswer,
    WebhookRequest,
)
from connectors.errors import DeliveryError, GiveUp

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v21.0"
MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE = 20
QUICK_REPLY_PAYLOAD = 1000
MEDIA_KINDS = ("image", "video", "audio", "file")


class MessengerConnector:
    type: ClassVar[str] = "messenger"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = graph.base_url(config)
        self.version = str(config.get("api_version") or DEFAULT_API_VERSION)
        self.page_id = str(config.get("page_id", ""))
        self.page_access_token = str(config.get("page_access_token", ""))
        self.app_secret = str(config.get("app_secret", ""))
        self.verify_token = str(config.get("verify_token", ""))
        self.http = http

    # -- outbound ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.base}/{self.version}/{self.page_id}/messages"

    async def send(self, message: Outbound) -> SendResult:
        content = message.content
        kind = content.get("type")
        tag = message.options.get("tag")
        if kind == "media":
            mid = await self._post(message.to, _attachment(content), tag)
            caption = content.get("caption")
            if caption:
                # The attachment is out: a failed caption is logged, not raised, since a
                # retry would send the attachment twice.
                try:
                    await self._post(message.to, {"text": _clip(str(caption), MAX_TEXT)}, tag)
                except DeliveryError as exc:
                    log.warning("the caption of Messenger message %s was not sent: %s", mid, exc)
            return SendResult(mid)
        return SendResult(await self._post(message.to, message_body(content), tag))

    async def _post(self, psid: str, body: Mapping[str, Any], tag: Any) -> str:
        payload: dict[str, Any] = {
            "recipient": {"id": psid},
            "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE",
            "message": dict(body),
        }
        if tag:
            payload["tag"] = str(tag)
        answer = await graph.post(self.http, self.url, self.page_access_token, payload)
        mid = answer.get("message_id") if isinstance(answer, dict) else None
        if not mid:
            raise GiveUp(
                f"the Send API accepted the message but named no message_id: {answer!r}"[:500],
                code="no_message_id",
            )
        return str(mid)

    async def sender_action(self, psid: str, action: str) -> None:
        """``typing_on``, ``typing_off`` or ``mark_seen``. Not part of the ``Connector``
        protocol yet: nothing calls it."""
        payload = {"recipient": {"id": psid}, "sender_action": action}
        await graph.post(self.http, self.url, self.page_access_token, payload)

    # -- inbound ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        graph.verify(request, self.app_secret, self.verify_token)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return graph.hub_challenge(request)

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        try:
            data = json.loads(request.body)
        except ValueError:
            log.warning("a signed Messenger callback that is not JSON: %r", request.body[:200])
            return []
        if not isinstance(data, dict) or data.get("object") != "page":
            return []
        found: list[Parsed] = []
        for entry in map(_dict, _list(data.get("entry"))):
            if entry.get("standby"):
                log.info("Messenger standby events skipped (another app holds the thread)")
            for event in map(_dict, _list(entry.get("messaging"))):
                if str(_dict(event.get("sender")).get("id", "")) in (self.page_id, ""):
                    # The Page itself (an echo without is_echo, its own edit or reaction):
                    # never stored as the customer's.
                    continue
                found += parse_event(event)
        return found


# -- outbound mapping -----------------------------------------------------------------


def message_body(content: Mapping[str, Any]) -> dict[str, Any]:
    """The Send API ``message`` object for Parley content (media: see ``_attachment``)."""
    kind = content.get("type")
    if kind == "text":
        return {"text": _clip(str(content["text"]), MAX_TEXT)}
    if kind == "buttons":
        return {
            "text": _clip(str(content["text"]), MAX_TEXT),
            "quick_replies": [
                {
                    "content_type": "text",
                    "title": _clip(str(b["title"]), QUICK_REPLY_TITLE),
                    "payload": str(b["id"])[:QUICK_REPLY_PAYLOAD],
                }
                for b in list(content["buttons"])[:MAX_QUICK_REPLIES]
            ],
        }
    if kind == "media":
        return _attachment(content)
    if kind == "location":
        lat, lng = content["latitude"], content["longitude"]
        lines = [str(content[k]) for k in ("name", "address") if content.get(k)]
        lines.append(f"https://maps.google.com/?q={lat},{lng}")
        return {"text": "\n".join(lines)}
    raise GiveUp(f"Messenger cannot carry {kind!r} content", code="unsupported_content")


def _attachment(content: Mapping[str, Any]) -> dict[str, Any]:
    url = str(content["url"])
    return {
        "attachment": {
            "type": media_kind(url, content.get("mime_type")),
            "payload": {"url": url, "is_reusable": True},
        }
    }


def media_kind(url: str, mime_type: Any = None) -> str:
    mime = str(mime_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "").lower()
    for prefix in ("image", "video", "audio"):
        if mime.startswith(prefix + "/"):
            return prefix
    return "file"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# -- inbound mapping ------------------------------------------------------------------


def parse_event(event: Mapping[str, Any]) -> list[Parsed]:
    """What one ``entry[].messaging[]`` event means to Parley."""
    sender = str(_dict(event.get("sender")).get("id", ""))
    at = _time(event.get("timestamp"))
    if "message" in event:
        message = _dict(event["message"])
        if message.get("is_echo"):
            return []  # the Page's own message: never stored as the customer's
        return list(_message(message, sender, at))
    if "postback" in event:
        postback = _dict(event["postback"])
        title = str(postback.get("title") or postback.get("payload") or "")
        key = postback.get("mid") or f"postback:{sender}:{event.get('timestamp', '')}"
        return [Inbound(str(key), sender, _text(title), sent_at=at)]
    if "message_edit" in event:
        edit = _dict(event["message_edit"])
        mid = str(edit.get("mid", ""))
        if not mid:
            return []
        return [
            Inbound(
                f"{mid}:edited:{edit.get('num_edit', '')}",
                sender,
                _text(str(edit.get("text") or "")),
                sent_at=at,
                reply_to=mid,
            )
        ]
    if "reaction" in event:
        reaction = _dict(event["reaction"])
        if not reaction.get("mid"):
            return []
        emoji = reaction.get("emoji") if reaction.get("action") != "unreact" else None
        return [Reaction(str(reaction["mid"]), sender, str(emoji) if emoji else None)]
    if "delivery" in event:
        delivery = _dict(event["delivery"])
        mids = [str(m) for m in _list(delivery.get("mids")) if m]
        found: list[Parsed] = [StatusUpdate(mid, "delivered", at=at) for mid in mids]
        return found + _watermark(sender, "delivered", delivery.get("watermark"))
    if "read" in event:
        return _watermark(sender, "read", _dict(event["read"]).get("watermark"))
    log.info("a Messenger event Parley does not handle: %s", sorted(event))
    return []


def _watermark(sender: str, status: Literal["delivered", "read"], value: Any) -> list[Parsed]:
    up_to = _time(value)
    if up_to is None:
        log.info("a Messenger %s event without a usable watermark: %r", status, value)
        return []
    return [Watermark(sender, status, up_to)]


def _message(message: Mapping[str, Any], sender: str, at: datetime | None) -> list[Inbound]:
    mid = str(message.get("mid", ""))
    if not mid:
        return []
    reply_to = _dict(message.get("reply_to")).get("mid")
    text = message.get("text")
    contents = [_attachment_content(_dict(a)) for a in _list(message.get("attachments"))]
    if text:
        # A quick reply's ``text`` is the title the customer tapped.
        if contents and contents[0]["type"] == "media" and "caption" not in contents[0]:
            contents[0] = {**contents[0], "caption": str(text)}
        else:
            contents.insert(0, _text(str(text)))
    if not contents:
        contents = [_text("[empty Messenger message]")]
    return [
        Inbound(
            mid if n == 0 else f"{mid}:{n + 1}",
            sender,
            content,
            sent_at=at,
            reply_to=str(reply_to) if reply_to else None,
        )
        for n, content in enumerate(contents)
    ]


def _attachment_content(attachment: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(attachment.get("type", ""))
    payload = _dict(attachment.get("payload"))
    url = payload.get("url")
    if kind in MEDIA_KINDS and url:
        return {"type": "media", "url": str(url)}
    if kind == "location":
        coordinates = _dict(payload.get("coordinates"))
        if "lat" in coordinates and "long" in coordinates:
            location: dict[str, Any] = {
                "type": "location",
                "latitude": float(coordinates["lat"]),
                "longitude": float(coordinates["long"]),
            }
            if attachment.get("title"):
                location["name"] = str(attachment["title"])
            return location
    title = attachment.get("title") or payload.get("title")
    parts = [str(p) for p in (title, url or attachment.get("url")) if p]
    if parts:
        return _text("\n".join(parts))
    return _text(f"[unsupported Messenger attachment, type {kind or 'missing'!r}]")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text[:10_000] or "[empty Messenger message]"}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
