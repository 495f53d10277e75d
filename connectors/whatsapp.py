"""WhatsApp Business Platform, Cloud API (channel type ``whatsapp``).

Outbound: ``POST {api_base_url}/{api_version}/{phone_number_id}/messages`` with
``Authorization: Bearer {access_token}``. Parley content maps to a Cloud API message:

| Parley | Cloud API |
| --- | --- |
| text | ``text`` (``preview_url`` on when the text holds a link) |
| media | ``image`` / ``video`` / ``audio`` / ``document`` / ``sticker`` by link, chosen by ``mime_type`` (or the URL's extension); caption and filename where the type takes them |
| template | ``template``: ``parameters`` as a list fill the body's ``{{1}}``...; as a dict, ``components`` is passed through, ``header``/``body`` lists fill those components, other keys are named parameters |
| buttons | ``interactive``: up to 3 reply buttons, a list message for 4 to 10 |
| location | ``location`` |

The Cloud API takes no idempotency key: a worker that dies between its answer and the
commit sends again (the at-least-once window of chat.listeners.deliver).
With ``options["quote"]`` the reply quotes the customer's latest message (``context``).
Graph errors map through ``connectors.graph`` (throttling 130429/80007/4... -> ``RetryLater``,
131026/131047/... -> ``GiveUp`` with the Graph code).

Inbound: a GET is the ``hub.challenge`` handshake (``hub.verify_token`` checked), a POST
must carry ``X-Hub-Signature-256``. Every message type of the ``messages`` webhook becomes
Parley content: text; image/audio/video/document/sticker as media whose URL is the media's
Graph node (``{api_base_url}/{api_version}/{media id}``: fetch it with the access token for
the download URL); location; contacts, orders and system notices as readable text;
interactive ``button_reply``/``list_reply``/``nfm_reply`` and template ``button`` replies as
the text the customer tapped; a reaction as ``Reaction`` (no emoji: removed); a type the API
cannot show (``unknown``/``unsupported``) as a text naming the type and the error. Statuses
``sent``/``delivered``/``read``/``failed`` (``played``, a voice message heard, counts as
read) become ``StatusUpdate``s, a failure with the first error's code and title.
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
    WebhookAnswer,
    WebhookRequest,
)
from connectors.errors import GiveUp

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v21.0"
MAX_TEXT = 10_000  # Parley's text content limit
MAX_BUTTONS = 3  # reply buttons; a list message holds up to 10 rows
BUTTON_TITLE = 20
ROW_TITLE = 24
ROW_DESCRIPTION = 72
INTERACTIVE_BODY = 1024
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
_STATUSES: dict[str, Literal["sent", "delivered", "read", "failed"]] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "read",
    "failed": "failed",
}


class WhatsAppCloud:
    type: ClassVar[str] = "whatsapp"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = graph.base_url(config)
        self.version = str(config.get("api_version") or DEFAULT_API_VERSION)
        self.phone_number_id = str(config.get("phone_number_id", ""))
        self.access_token = str(config.get("access_token", ""))
        self.app_secret = str(config.get("app_secret", ""))
        self.verify_token = str(config.get("verify_token", ""))
        self.http = http

    # -- outbound ---------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.removeprefix("+"),
            **message_body(message.content),
        }
        if message.reply_to and message.options.get("quote"):
            payload["context"] = {"message_id": message.reply_to}
        url = f"{self.base}/{self.version}/{self.phone_number_id}/messages"
        answer = await graph.post(self.http, url, self.access_token, payload)
        try:
            provider_id = str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GiveUp(
                f"the Cloud API accepted the message but named no id: {answer!r}"[:500],
                code="no_message_id",
            ) from exc
        return SendResult(provider_id)

    async def mark_read(self, provider_message_id: str, typing: bool = False) -> None:
        """Tell the customer their message was read (blue ticks), and optionally show the
        typing indicator. Not part of the ``Connector`` protocol yet: nothing calls it."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": provider_message_id,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        url = f"{self.base}/{self.version}/{self.phone_number_id}/messages"
        await graph.post(self.http, url, self.access_token, payload)

    # -- inbound ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        graph.verify(request, self.app_secret, self.verify_token)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return graph.hub_challenge(request)

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        try:
            data = json.loads(request.body)
        except ValueError:
            log.warning("a signed WhatsApp callback that is not JSON: %r", request.body[:200])
            return []
        if not isinstance(data, dict):
            return []
        found: list[Parsed] = []
        for entry in _list(data.get("entry")):
            for change in _list(_dict(entry).get("changes")):
                change = _dict(change)
                if change.get("field") != "messages":
                    continue
                found += self._value(_dict(change.get("value")))
        return found

    def _value(self, value: Mapping[str, Any]) -> list[Parsed]:
        names = {
            str(c.get("wa_id")): _dict(c.get("profile")).get("name")
            for c in map(_dict, _list(value.get("contacts")))
        }
        found: list[Parsed] = []
        for msg in map(_dict, _list(value.get("messages"))):
            sender = str(msg.get("from", ""))
            if msg.get("type") == "reaction":
                reaction = _dict(msg.get("reaction"))
                found.append(
                    Reaction(
                        provider_message_id=str(reaction.get("message_id", "")),
                        sender=sender,
                        emoji=reaction.get("emoji") or None,
                    )
                )
                continue
            name = names.get(sender)
            found.append(
                Inbound(
                    provider_message_id=str(msg.get("id", "")),
                    sender=sender,
                    content=self.content(msg),
                    sent_at=_time(msg.get("timestamp")),
                    profile={"name": name} if isinstance(name, str) and name else {},
                    reply_to=_dict(msg.get("context")).get("id"),
                )
            )
        for status in map(_dict, _list(value.get("statuses"))):
            update = _status(status)
            if update is not None:
                found.append(update)
        return found

    def content(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Parley content for one inbound message of any type."""
        kind = str(msg.get("type", ""))
        body = _dict(msg.get(kind))
        if kind == "text" and body.get("body"):
            return _text(str(body["body"]))
        if kind in MEDIA_TYPES and body.get("id"):
            media: dict[str, Any] = {
                "type": "media",
                "url": f"{self.base}/{self.version}/{body['id']}",
            }
            if body.get("mime_type"):
                media["mime_type"] = str(body["mime_type"])[:200]
            if body.get("caption"):
                media["caption"] = str(body["caption"])[:4000]
            if body.get("filename"):
                media["filename"] = str(body["filename"])[:255]
            return media
        if kind == "location" and "latitude" in body and "longitude" in body:
            location: dict[str, Any] = {
                "type": "location",
                "latitude": float(body["latitude"]),
                "longitude": float(body["longitude"]),
            }
            if body.get("name"):
                location["name"] = str(body["name"])[:200]
            if body.get("address"):
                location["address"] = str(body["address"])[:500]
            return location
        if kind == "contacts" and isinstance(msg.get("contacts"), list):
            return _text("\n".join(_contact_card(_dict(c)) for c in msg["contacts"]))
        if kind == "interactive":
            reply = _interactive_reply(body)
            if reply:
                return _text(reply)
        if kind == "button" and body.get("text"):
            return _text(str(body["text"]))
        if kind == "order" and body:
            return _text(_order(body))
        if kind == "system" and body.get("body"):
            return _text(str(body["body"]))
        return _text(_unsupported(kind, msg))


# -- outbound mapping -----------------------------------------------------------------


def message_body(content: Mapping[str, Any]) -> dict[str, Any]:
    """The type-specific part of a Cloud API message for Parley ``content``."""
    kind = content.get("type")
    if kind == "text":
        text = str(content.get("text", ""))
        return {"type": "text", "text": {"preview_url": _has_link(text), "body": text}}
    if kind == "media":
        return _media(content)
    if kind == "template":
        return {"type": "template", "template": _template(content)}
    if kind == "buttons":
        return _buttons(content)
    if kind == "location":
        location = {"latitude": content["latitude"], "longitude": content["longitude"]}
        for key in ("name", "address"):
            if content.get(key):
                location[key] = content[key]
        return {"type": "location", "location": location}
    raise GiveUp(f"WhatsApp cannot carry {kind!r} content", code="unsupported_content")


def media_type(url: str, mime_type: str | None) -> str:
    mime = (mime_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "").lower()
    if mime == "image/webp":
        return "sticker"
    for prefix in ("image", "video", "audio"):
        if mime.startswith(prefix + "/"):
            return prefix
    return "document"


def _media(content: Mapping[str, Any]) -> dict[str, Any]:
    url = str(content["url"])
    kind = media_type(url, content.get("mime_type"))
    caption = content.get("caption")
    if caption and kind in ("audio", "sticker"):
        # Neither takes a caption: sent as a document, the caption kept.
        kind = "document"
    media: dict[str, Any] = {"link": url}
    if caption:
        media["caption"] = caption
    if kind == "document":
        media["filename"] = content.get("filename") or url.split("?", 1)[0].rsplit("/", 1)[-1]
    return {"type": kind, kind: media}


def _template(content: Mapping[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = {
        "name": content["name"],
        "language": {"code": content.get("language") or "en_US"},
    }
    params = content.get("parameters") or {}
    components: list[dict[str, Any]] = []
    if isinstance(params, list):
        if params:
            components.append({"type": "body", "parameters": [_param(p) for p in params]})
    elif isinstance(params, Mapping):
        if "components" in params:
            components = list(params["components"])
        else:
            for part in ("header", "body"):
                if isinstance(params.get(part), list):
                    components.append(
                        {"type": part, "parameters": [_param(p) for p in params[part]]}
                    )
            named = {k: v for k, v in params.items() if k not in ("header", "body", "buttons")}
            if named:
                body = next((c for c in components if c["type"] == "body"), None)
                if body is None:
                    body = {"type": "body", "parameters": []}
                    components.append(body)
                body["parameters"] += [
                    {"type": "text", "parameter_name": k, "text": str(v)} for k, v in named.items()
                ]
            components += list(params.get("buttons") or [])
    if components:
        template["components"] = components
    return template


def _param(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {"type": "text", "text": str(value)}


def _buttons(content: Mapping[str, Any]) -> dict[str, Any]:
    text = str(content["text"])
    buttons = list(content["buttons"])
    if len(text) > INTERACTIVE_BODY:
        # An interactive body holds 1,024 characters: numbered text instead.
        lines = [text, ""] + [f"{n}. {b['title']}" for n, b in enumerate(buttons, 1)]
        return message_body({"type": "text", "text": "\n".join(lines)})
    if len(buttons) <= MAX_BUTTONS and all(len(b["title"]) <= BUTTON_TITLE for b in buttons):
        action: dict[str, Any] = {
            "buttons": [
                {"type": "reply", "reply": {"id": b["id"], "title": b["title"]}} for b in buttons
            ]
        }
        kind = "button"
    else:
        rows = []
        for b in buttons:
            row = {"id": b["id"], "title": _clip(b["title"], ROW_TITLE)}
            if len(b["title"]) > ROW_TITLE:
                row["description"] = _clip(b["title"], ROW_DESCRIPTION)
            rows.append(row)
        action = {"button": "Choose", "sections": [{"title": "Options", "rows": rows}]}
        kind = "list"
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": text}, "action": action},
    }


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _has_link(text: str) -> bool:
    return "http://" in text or "https://" in text


# -- inbound mapping ------------------------------------------------------------------


def _status(status: Mapping[str, Any]) -> StatusUpdate | None:
    mapped = _STATUSES.get(str(status.get("status", "")))
    if mapped is None or not status.get("id"):
        log.info("a WhatsApp status Parley does not track: %r", status.get("status"))
        return None
    code = message = None
    errors = [_dict(e) for e in _list(status.get("errors"))]
    if errors:
        first = errors[0]
        code = str(first["code"]) if first.get("code") is not None else None
        message = str(first.get("title") or first.get("message") or "")
        details = _dict(first.get("error_data")).get("details")
        if details:
            message = f"{message}: {details}" if message else str(details)
    return StatusUpdate(
        provider_message_id=str(status["id"]),
        status=mapped,
        error_code=code,
        error_message=message or None,
        at=_time(status.get("timestamp")),
    )


def _interactive_reply(body: Mapping[str, Any]) -> str | None:
    kind = body.get("type")
    reply = _dict(body.get(kind)) if isinstance(kind, str) else {}
    if kind in ("button_reply", "list_reply") and reply.get("title"):
        title = str(reply["title"])
        return f"{title}\n{reply['description']}" if reply.get("description") else title
    if kind == "nfm_reply":
        return str(reply.get("response_json") or reply.get("body") or "") or None
    return None


def _contact_card(contact: Mapping[str, Any]) -> str:
    name = _dict(contact.get("name"))
    parts = [str(name.get("formatted_name") or name.get("first_name") or "Contact")]
    company = _dict(contact.get("org")).get("company")
    if company:
        parts.append(str(company))
    parts += [
        str(_dict(p).get("phone")) for p in _list(contact.get("phones")) if _dict(p).get("phone")
    ]
    parts += [
        str(_dict(e).get("email")) for e in _list(contact.get("emails")) if _dict(e).get("email")
    ]
    return "Contact: " + ", ".join(parts)


def _order(order: Mapping[str, Any]) -> str:
    lines = [f"Order (catalog {order.get('catalog_id', '?')})"]
    for item in map(_dict, _list(order.get("product_items"))):
        lines.append(
            f"{item.get('quantity', 1)} x {item.get('product_retailer_id', '?')}"
            f" at {item.get('item_price', '?')} {item.get('currency', '')}".rstrip()
        )
    if order.get("text"):
        lines.append(str(order["text"]))
    return "\n".join(lines)


def _unsupported(kind: str, msg: Mapping[str, Any]) -> str:
    errors = [_dict(e) for e in _list(msg.get("errors"))]
    why = ""
    if errors:
        first = errors[0]
        detail = first.get("details") or _dict(first.get("error_data")).get("details")
        why = f": {first.get('title') or first.get('message') or ''}"
        if detail:
            why += f" ({detail})"
        if first.get("code") is not None:
            why += f" [code {first['code']}]"
    return f"[unsupported WhatsApp message, type {kind or 'missing'!r}{why}]"


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text[:MAX_TEXT] or "[empty WhatsApp message]"}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
