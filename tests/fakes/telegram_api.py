"""A fake Telegram Bot API on 127.0.0.1: ``POST /bot<token>/<method>``.

It checks what the real one checks: the bot token in the path (401 ``Unauthorized``
otherwise), the method name (case-insensitive; 404 ``Not Found`` for an unknown one),
each method's required fields (400 ``Bad Request: ...``), an ``inline_keyboard`` of
rows of buttons whose ``callback_data`` is 1-64 bytes, and text/caption lengths. It
takes JSON, form-encoded and query-string parameters (nested objects JSON-encoded, as
Telegram wants them there), answers in the Bot API envelope, and numbers messages per
chat like Telegram does.

It answers by a script, like tests/fakes/provider.py: ``Ok()``, ``Error(http status,
description, parameters)`` (``retry_after`` for flood control, ``migrate_to_chat_id``
for an upgraded group), or ``HANG`` (hold the request until released or the caller
gives up). Once the script is used up it accepts. ``answerCallbackQuery`` is never
scripted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.local import serve_locally

HANG: Literal["hang"] = "hang"
TOKEN = "7000000001:AAFakeTokenForTests_-x"

_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "sendmessage": ("chat_id", "text"),
    "sendphoto": ("chat_id", "photo"),
    "senddocument": ("chat_id", "document"),
    "sendvideo": ("chat_id", "video"),
    "sendanimation": ("chat_id", "animation"),
    "sendaudio": ("chat_id", "audio"),
    "sendlocation": ("chat_id", "latitude", "longitude"),
    "sendvenue": ("chat_id", "latitude", "longitude", "title", "address"),
    "answercallbackquery": ("callback_query_id",),
}
_NESTED = ("reply_markup", "reply_parameters", "entities", "link_preview_options")


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class Error:
    http_status: int
    description: str
    parameters: Mapping[str, Any] | None = None


Answer = Ok | Error | Literal["hang"]

BLOCKED = Error(403, "Forbidden: bot was blocked by the user")
CHAT_NOT_FOUND = Error(400, "Bad Request: chat not found")
UNAUTHORIZED = Error(401, "Unauthorized")


def flood(retry_after: int) -> Error:
    return Error(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def migrated(to_chat_id: int) -> Error:
    return Error(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": to_chat_id},
    )


@dataclass
class Call:
    method: str  # as Telegram names it, e.g. "sendMessage"
    fields: dict[str, Any]
    at: float  # time.monotonic() on arrival
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    result: dict[str, Any] | None = None  # the sent Message, when accepted

    @property
    def provider_message_id(self) -> str | None:
        if self.result is None or "message_id" not in self.result:
            return None
        return f"{self.result['chat']['id']}:{self.result['message_id']}"


@dataclass
class FakeTelegram:
    token: str = TOKEN
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _next_id: dict[str, int] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.ServerRunner | None = None

    def respond(self, *answers: Answer) -> None:
        self._script.extend(answers)

    def release(self) -> None:
        self._release.set()

    @property
    def sent(self) -> list[Call]:
        """Messages Telegram accepted, in order."""
        return [c for c in self.calls if c.provider_message_id is not None]

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, check: Callable[[FakeTelegram], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if check(self):
                    return
                await self._changed.wait()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return _error(404, "Not Found")
        if parts[0][3:] != self.token:
            return _error(401, "Unauthorized")
        method = next((m for m in _METHOD_NAMES if m.lower() == parts[1].lower()), None)
        if method is None:
            return _error(404, "Not Found: method not found")
        try:
            fields = await _fields(request)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        problem = _check(method, fields)
        if problem is not None:
            return _error(400, f"Bad Request: {problem}")
        call = Call(method, fields, time.monotonic())
        self.calls.append(call)
        self._changed.set()
        if method == "answerCallbackQuery":
            call.outcome = "answered"
            self._changed.set()
            return web.json_response({"ok": True, "result": True})
        answer = self._script.popleft() if self._script else Ok()
        try:
            if answer == HANG:
                call.outcome = "held"
                self._changed.set()
                await self._release.wait()
                answer = Ok()
        except (asyncio.CancelledError, ConnectionError):
            call.outcome = "caller left"
            self._changed.set()
            raise
        call.outcome = "answered"
        self._changed.set()
        if isinstance(answer, Error):
            return _error(answer.http_status, answer.description, answer.parameters)
        call.result = self._message(method, fields)
        self._changed.set()
        return web.json_response({"ok": True, "result": call.result})

    def _message(self, method: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        chat_id = fields["chat_id"]
        key = str(chat_id)
        self._next_id[key] = self._next_id.get(key, 1000) + 1
        result: dict[str, Any] = {
            "message_id": self._next_id[key],
            "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Fake"},
            "chat": {"id": chat_id, "type": _chat_type(chat_id)},
            "date": int(time.time()),
        }
        if method == "sendMessage":
            result["text"] = fields["text"]
        if "reply_markup" in fields:
            result["reply_markup"] = fields["reply_markup"]
        if "caption" in fields:
            result["caption"] = fields["caption"]
        return result

    async def start(self) -> FakeTelegram:
        self._runner, self.url = await serve_locally(self._handle)
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


_METHOD_NAMES = (
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendVideo",
    "sendAnimation",
    "sendAudio",
    "sendLocation",
    "sendVenue",
    "answerCallbackQuery",
)


def _chat_type(chat_id: object) -> str:
    if str(chat_id).startswith("@"):
        return "channel"
    return "private" if int(str(chat_id)) > 0 else "supergroup"


def _error(
    status: int, description: str, parameters: Mapping[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = dict(parameters)
    return web.json_response(body, status=status)


async def _fields(request: web.BaseRequest) -> dict[str, Any]:
    fields: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("parameters must be a JSON object")
            return {**fields, **body}
        form = await request.post()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    for name in _NESTED:  # JSON-encoded strings outside a JSON body
        if isinstance(fields.get(name), str):
            try:
                fields[name] = json.loads(fields[name])
            except ValueError:
                raise ValueError(f"can't parse {name} JSON object") from None
    return fields


def _check(method: str, fields: Mapping[str, Any]) -> str | None:
    for name in _REQUIRED[method.lower()]:
        if fields.get(name) in (None, ""):
            if name == "text":
                return "message text is empty"
            return f"{name} is empty" if name != "chat_id" else "chat_id is empty"
    if "chat_id" in fields:
        chat_id = fields["chat_id"]
        numeric = isinstance(chat_id, int) or str(chat_id).lstrip("-").isdigit()
        if not numeric and not str(chat_id).startswith("@"):
            return "chat not found"
    if len(str(fields.get("text", ""))) > 4096:
        return "message is too long"
    if len(str(fields.get("caption", ""))) > 1024:
        return "message caption is too long"
    quote = fields.get("reply_parameters")
    if quote is not None and not (
        isinstance(quote, dict) and isinstance(quote.get("message_id"), int)
    ):
        return 'field "message_id" of the ReplyParameters must be an Integer'
    markup = fields.get("reply_markup")
    if markup is not None:
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            return 'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    return "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    return "BUTTON_DATA_INVALID"
    return None
