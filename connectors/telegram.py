"""Telegram Bot API: ``sendMessage`` and the media methods out, webhook ``Update``s in.

Requests go to ``{api_base_url}/bot<bot_token>/<method>`` as JSON (a self-hosted
``telegram-bot-api`` server takes the same paths). Every answer is ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"?}``; we
branch on ``error_code`` and ``parameters``, never on the wording:

| answer | means |
| --- | --- |
| ``parameters.retry_after`` (429 flood control), 5xx, timeouts | ``RetryLater`` |
| ``parameters.migrate_to_chat_id`` (a group became a supergroup) | sent again, once, to the new chat |
| 400 (chat not found ...), 401/404 (bad token), 403 (blocked, deactivated) | ``GiveUp`` |

Telegram's message ids count per chat, so a provider message id is
``"<chat_id>:<message_id>"``: unique on a channel, and what reactions point at. A
contact's address is its chat id (a group is one contact); in a group, a reply quotes
the customer's latest message.

Webhooks carry no HMAC: ``setWebhook``'s ``secret_token`` comes back in every request's
``X-Telegram-Bot-Api-Secret-Token`` header, compared in constant time. Telegram sends no
delivery or read receipts to bots, so there are no status updates.

A callback query (an inline-keyboard press) is stored as the button's title; the
spinner on the customer's button stops when the bot calls ``answerCallbackQuery``:
``callback_answer`` is that call as a webhook reply body, ``answer_callback_query``
the same as an outbound request (the web edge does I/O-free parsing, so wiring either
is the caller's choice).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    Reaction,
    SendResult,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater

API_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes

# Message fields that carry a file, and the MIME type to assume when Telegram gives none.
_FILES: tuple[tuple[str, str], ...] = (
    ("document", "application/octet-stream"),
    ("video", "video/mp4"),
    ("animation", "video/mp4"),
    ("audio", "audio/mpeg"),
    ("voice", "audio/ogg"),
    ("video_note", "video/mp4"),
)


class TelegramConnector:
    type: ClassVar[str] = "telegram"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config.get("api_base_url") or API_BASE_URL).rstrip("/")
        self.token = str(config["bot_token"])
        self.secret_token = str(config["secret_token"])
        self.http = http

    # -- outbound ----------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        method, fields = request_for(message.content)
        chat_id = chat_id_param(message.to)
        quoted = _quoted(chat_id, message.reply_to)
        if quoted is not None:
            fields["reply_parameters"] = {
                "message_id": quoted,
                "allow_sending_without_reply": True,
            }
        try:
            result = await self._call(method, {"chat_id": chat_id, **fields})
        except _Migrated as moved:
            result = await self._call(method, {"chat_id": moved.chat_id, **fields})
        return SendResult(f"{result['chat']['id']}:{result['message_id']}")

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        """Stop the customer's button spinner (optionally with a short notice)."""
        fields: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            fields["text"] = text[:200]
        await self._call("answerCallbackQuery", fields)

    async def _call(self, method: str, fields: Mapping[str, Any]) -> Any:
        url = f"{self.base}/bot{self.token}/{method}"
        try:
            r = await self.http.post(url, json=dict(fields))
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}", code="connection_error") from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # Not the Bot API speaking (a proxy's error page): the HTTP status decides.
            message = f"HTTP {r.status_code} without a Bot API answer"
            if r.status_code >= 500 or r.status_code == 429:
                raise RetryLater(message, code=str(r.status_code), status_code=r.status_code)
            raise GiveUp(message, code=str(r.status_code), status_code=r.status_code)
        if body.get("ok") is True:
            return body.get("result")
        code = body.get("error_code", r.status_code)
        description = str(body.get("description") or f"HTTP {r.status_code}")
        parameters = body.get("parameters") or {}
        if "migrate_to_chat_id" in parameters:
            raise _Migrated(parameters["migrate_to_chat_id"])
        if "retry_after" in parameters or code == 429 or r.status_code >= 500:
            after = parameters.get("retry_after")
            raise RetryLater(
                description,
                code=str(code),
                status_code=r.status_code,
                retry_after=float(after) if isinstance(after, int | float) else None,
            )
        raise GiveUp(description, code=str(code), status_code=r.status_code)

    # -- inbound -----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise WebhookRejected("no X-Telegram-Bot-Api-Secret-Token header")
        if not _same(given, self.secret_token):
            raise WebhookRejected("wrong X-Telegram-Bot-Api-Secret-Token", status=403)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return None  # Telegram has no handshake: setWebhook is called by the bot

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        update = json.loads(request.body)
        if not isinstance(update, dict):
            raise TypeError("a Telegram update is a JSON object")
        for kind in ("message", "business_message", "channel_post"):
            if isinstance(update.get(kind), dict):
                found = _message(update[kind])
                return [found] if found is not None else []
        for kind in ("edited_message", "edited_business_message", "edited_channel_post"):
            if isinstance(update.get(kind), dict):
                found = _message(update[kind], edited=True)
                return [found] if found is not None else []
        if isinstance(update.get("callback_query"), dict):
            found = _callback_query(update["callback_query"])
            return [found] if found is not None else []
        if isinstance(update.get("message_reaction"), dict):
            return _reactions(update["message_reaction"])
        # inline queries, chat member changes, polls, payments ...: nothing to store.
        return []

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        """For a callback query, the 200 body that answers it (Telegram runs a Bot API
        call given as the webhook's response); None for any other update."""
        update = json.loads(request.body)
        query = update.get("callback_query") if isinstance(update, dict) else None
        if not isinstance(query, dict) or "id" not in query:
            return None
        body = {"method": "answerCallbackQuery", "callback_query_id": str(query["id"])}
        return WebhookAnswer(body=json.dumps(body).encode(), content_type="application/json")


class _Migrated(Exception):
    def __init__(self, chat_id: int | str) -> None:
        super().__init__(f"the chat moved to {chat_id}")
        self.chat_id = chat_id


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def chat_id_param(address: str) -> int | str:
    """Telegram's ``chat_id``: an integer id, or ``@channelusername`` as written."""
    try:
        return int(address)
    except ValueError:
        return address


def _quoted(chat_id: int | str, reply_to: str | None) -> int | None:
    """In a group, the customer's message a reply quotes, so the group sees whom it
    answers; a private chat has one customer and no quote."""
    if reply_to is None or not isinstance(chat_id, int) or chat_id > 0:
        return None
    chat, _, rest = reply_to.partition(":")
    message_id = rest.split(":", 1)[0]
    if chat != str(chat_id) or not message_id.isdigit():
        return None  # a button press ("callback:<id>"), or another chat's message
    return int(message_id)


def request_for(content: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Bot API method and fields (less ``chat_id``) that carry Parley ``content``."""
    kind = content.get("type")
    if kind == "text":
        return "sendMessage", {"text": _text(str(content["text"]))}
    if kind == "buttons":
        keyboard = [[_button(b)] for b in content["buttons"]]
        return "sendMessage", {
            "text": _text(str(content["text"])),
            "reply_markup": {"inline_keyboard": keyboard},
        }
    if kind == "media":
        fields: dict[str, Any] = {}
        if content.get("caption"):
            caption = str(content["caption"])
            if len(caption) > MAX_CAPTION:
                raise GiveUp(
                    f"a Telegram caption takes at most {MAX_CAPTION} characters",
                    code="caption_too_long",
                )
            fields["caption"] = caption
        method, field = _media_method(content.get("mime_type"))
        fields[field] = str(content["url"])
        return method, fields
    if kind == "location":
        point = {"latitude": content["latitude"], "longitude": content["longitude"]}
        if content.get("name") and content.get("address"):
            return "sendVenue", {**point, "title": content["name"], "address": content["address"]}
        return "sendLocation", point
    raise GiveUp(f"Telegram cannot carry {kind!r} content", code="content_not_supported")


def _text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise GiveUp(
            f"a Telegram message takes at most {MAX_TEXT} characters", code="text_too_long"
        )
    return text


def _button(button: Mapping[str, Any]) -> dict[str, str]:
    data = str(button["id"])
    if len(data.encode()) > MAX_CALLBACK_DATA:
        raise GiveUp(
            f"a Telegram button id (callback_data) takes at most {MAX_CALLBACK_DATA} bytes",
            code="button_id_too_long",
        )
    return {"text": str(button["title"]), "callback_data": data}


def _media_method(mime_type: object) -> tuple[str, str]:
    mime = str(mime_type or "").lower()
    if mime == "image/gif":
        return "sendAnimation", "animation"
    if mime.startswith("image/"):
        return "sendPhoto", "photo"
    if mime.startswith("video/"):
        return "sendVideo", "video"
    if mime in ("audio/mpeg", "audio/mp3", "audio/mp4", "audio/m4a"):
        return "sendAudio", "audio"
    return "sendDocument", "document"


# -- parsing -------------------------------------------------------------------------


def _message(msg: Mapping[str, Any], edited: bool = False) -> Inbound | None:
    chat = msg.get("chat") or {}
    if "id" not in chat or "message_id" not in msg:
        return None
    content = _content(msg)
    if content is None:
        return None
    key = f"{chat['id']}:{msg['message_id']}"
    if edited:
        # Its own id, so a later edit is stored and a repeat of the same edit is not.
        key = f"{key}:edited:{msg.get('edit_date', '')}"
    reply = msg.get("reply_to_message")
    return Inbound(
        provider_message_id=key,
        sender=str(chat["id"]),
        content=content,
        sent_at=_time(msg.get("edit_date") if edited else msg.get("date")),
        profile=_profile(msg.get("from") or chat),
        reply_to=f"{chat['id']}:{reply['message_id']}"
        if isinstance(reply, dict) and "message_id" in reply
        else None,
    )


def _content(msg: Mapping[str, Any]) -> dict[str, Any] | None:
    caption = msg.get("caption")
    if isinstance(msg.get("text"), str) and msg["text"]:
        return {"type": "text", "text": msg["text"]}
    if isinstance(msg.get("photo"), list) and msg["photo"]:
        largest = msg["photo"][-1]  # PhotoSize list, smallest first
        return _media(largest["file_id"], "image/jpeg", caption)
    if isinstance(msg.get("sticker"), dict):
        sticker = msg["sticker"]
        mime = (
            "video/webm"
            if sticker.get("is_video")
            else "application/x-tgsticker"
            if sticker.get("is_animated")
            else "image/webp"
        )
        return _media(sticker["file_id"], mime, sticker.get("emoji"))
    for field, default_mime in _FILES:
        if isinstance(msg.get(field), dict):
            file = msg[field]
            return _media(
                file["file_id"],
                file.get("mime_type") or default_mime,
                caption,
                file.get("file_name"),
            )
    if isinstance(msg.get("venue"), dict):
        venue = msg["venue"]
        location = venue.get("location") or {}
        return _location(location, venue.get("title"), venue.get("address"))
    if isinstance(msg.get("location"), dict):
        return _location(msg["location"])
    if isinstance(msg.get("contact"), dict):
        contact = msg["contact"]
        name = " ".join(str(p) for p in (contact.get("first_name"), contact.get("last_name")) if p)
        return {
            "type": "text",
            "text": f"Contact: {name} {contact.get('phone_number', '')}".strip(),
        }
    if isinstance(caption, str) and caption:
        return {"type": "text", "text": caption}
    return None  # service messages (members joined, pinned ...): nothing a customer wrote


def _media(
    file_id: str, mime_type: str, caption: object, filename: object = None
) -> dict[str, Any]:
    # Telegram gives a file_id, not a URL; getFile turns it into a download link that
    # carries the bot token, so what is stored names the file without the token.
    content: dict[str, Any] = {
        "type": "media",
        "url": f"{API_BASE_URL}/file/{file_id}",
        "mime_type": mime_type,
    }
    if isinstance(caption, str) and caption:
        content["caption"] = caption
    if isinstance(filename, str) and filename:
        content["filename"] = filename
    return content


def _location(
    location: Mapping[str, Any], name: object = None, address: object = None
) -> dict[str, Any] | None:
    if "latitude" not in location or "longitude" not in location:
        return None
    content: dict[str, Any] = {
        "type": "location",
        "latitude": location["latitude"],
        "longitude": location["longitude"],
    }
    if isinstance(name, str) and name:
        content["name"] = name
    if isinstance(address, str) and address:
        content["address"] = address
    return content


def _callback_query(query: Mapping[str, Any]) -> Inbound | None:
    """An inline-keyboard press: the button's title as text (its id is the data)."""
    data = query.get("data")
    msg = query.get("message") or {}
    chat = msg.get("chat") or {}
    user = query.get("from") or {}
    sender = chat.get("id", user.get("id"))
    if not isinstance(data, str) or sender is None or "id" not in query:
        return None  # a game short name, or a button of an inline message: nothing to store
    title = data
    keyboard = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
    for row in keyboard:
        for button in row:
            if isinstance(button, dict) and button.get("callback_data") == data:
                title = str(button.get("text") or data)
    return Inbound(
        provider_message_id=f"callback:{query['id']}",
        sender=str(sender),
        content={"type": "text", "text": title},
        profile=_profile(user),
        reply_to=f"{chat['id']}:{msg['message_id']}"
        if "id" in chat and "message_id" in msg
        else None,
    )


def _reactions(update: Mapping[str, Any]) -> list[Parsed]:
    chat = update.get("chat") or {}
    user = update.get("user") or {}
    if "id" not in chat or "message_id" not in update:
        return []
    emojis = [
        r["emoji"]
        for r in update.get("new_reaction") or []
        if isinstance(r, dict) and r.get("type") == "emoji" and "emoji" in r
    ]
    return [
        Reaction(
            provider_message_id=f"{chat['id']}:{update['message_id']}",
            sender=str(user.get("id", chat["id"])),
            emoji=emojis[-1] if emojis else None,
        )
    ]


def _profile(user: Mapping[str, Any]) -> dict[str, Any]:
    # A channel post or a group's anonymous admin has no user: the chat's title names it.
    name = " ".join(str(p) for p in (user.get("first_name"), user.get("last_name")) if p)
    name = name or str(user.get("title") or "")
    profile: dict[str, Any] = {}
    if name:
        profile["name"] = name
    if user.get("username"):
        profile["username"] = user["username"]
    if user.get("language_code"):
        profile["language"] = user["language_code"]
    return profile


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None
