"""A fake WhatsApp Cloud API (Graph) on 127.0.0.1.

``POST /{vN.N}/{phone_number_id}/messages`` checks what Graph checks: the bearer token
(401, code 190 otherwise), the phone number id (400, code 100 / subcode 33), a JSON
body with ``messaging_product: "whatsapp"``, ``to`` and the object its ``type`` names
(400, code 100 or 131008), the text limit (4,096) and the reply-button rules (at most 3,
titles up to 20 characters: 131009). Accepted sends answer like the real API
(``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``).

It answers by a script: ``Accept``, ``Fail`` (a Graph error envelope with the given HTTP
status and code, ``Retry-After`` when given) or ``HANG`` (hold until released or the
caller leaves); once the script is used up it accepts. A mark-as-read body
(``{"status": "read", "message_id"}``) is recorded in ``read_receipts`` and answered
``{"success": true}``.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")
TYPES = {
    "text", "template", "image", "audio", "video", "document", "sticker",
    "location", "contacts", "interactive", "reaction",
}  # fmt: skip


@dataclass(frozen=True)
class Accept:
    wamid: str | None = None  # the message id to answer with (a generated one by default)


@dataclass(frozen=True)
class Fail:
    http_status: int
    code: int
    message: str
    subcode: int | None = None
    details: str | None = None
    retry_after: float | None = None


Answer = Accept | Fail | Literal["hang"]


@dataclass
class Sent:
    version: str
    body: dict[str, Any]
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    wamid: str | None = None


@dataclass
class FakeWhatsAppApi(ScriptedFake[Answer]):
    access_token: str
    phone_number_id: str
    requests: list[Sent] = field(default_factory=list)
    read_receipts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.requests if s.wamid is not None]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        match = PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _error(400, 100, "Unknown path components", subcode=2500)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if match.group(2) != self.phone_number_id:
            return _error(
                400, 100, f"Unsupported post request. Object with ID '{match.group(2)}' "
                "does not exist", subcode=33,
            )  # fmt: skip
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 100, "Invalid parameter", details="the body is not JSON")
        if isinstance(body, dict) and body.get("status") == "read" and "message_id" in body:
            if body.get("messaging_product") != "whatsapp":
                return _error(400, 100, "Invalid parameter", details="messaging_product")
            self.read_receipts.append(body)
            self._changed.set()
            return web.json_response({"success": True})
        problem = _check(body) if isinstance(body, dict) else (100, "body must be an object")
        if problem is not None:
            return _error(400, problem[0], f"(#{problem[0]}) Invalid parameter", details=problem[1])
        sent = Sent(match.group(1), body)
        self.requests.append(sent)
        self._changed.set()
        answer = self._script.popleft() if self._script else Accept()
        try:
            if answer == HANG:
                sent.outcome = "held"
                self._changed.set()
                await self._release.wait()
                answer = Accept()
        except (asyncio.CancelledError, ConnectionError):
            sent.outcome = "caller left"
            self._changed.set()
            raise
        sent.outcome = "answered"
        self._changed.set()
        if isinstance(answer, Fail):
            headers = {}
            if answer.retry_after is not None:
                headers["Retry-After"] = str(answer.retry_after)
            return _error(
                answer.http_status, answer.code, answer.message, answer.subcode,
                answer.details, headers,
            )  # fmt: skip
        assert isinstance(answer, Accept)
        n = len(self.requests)
        fresh = "wamid." + base64.b64encode(f"parley-fake-{n:06d}".encode()).decode()
        sent.wamid = answer.wamid or fresh
        to = str(body["to"])
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.removeprefix("+")}],
                "messages": [{"id": sent.wamid}],
            }
        )



def _check(body: dict[str, Any]) -> tuple[int, str] | None:
    """What the Cloud API refuses in a message body: (code, details), or None."""
    if body.get("messaging_product") != "whatsapp":
        return 100, "messaging_product must be 'whatsapp'"
    if not body.get("to"):
        return 131008, "Required parameter is missing: to"
    kind = body.get("type", "text")
    if kind not in TYPES:
        return 100, f"type {kind!r} is not a message type"
    part = body.get(kind)
    if not isinstance(part, dict):
        return 131008, f"Required parameter is missing: {kind}"
    if kind == "text":
        text = part.get("body")
        if not isinstance(text, str) or not text:
            return 131008, "Required parameter is missing: text.body"
        if len(text) > 4096:
            return 100, "text.body is longer than 4096 characters"
    elif kind in ("image", "audio", "video", "document", "sticker"):
        if not (part.get("link") or part.get("id")):
            return 131008, f"{kind} needs a link or an id"
        if "caption" in part and kind in ("audio", "sticker"):
            return 100, f"{kind} takes no caption"
    elif kind == "template":
        if not part.get("name") or not isinstance(part.get("language"), dict):
            return 131008, "template needs a name and a language"
    elif kind == "interactive":
        action = part.get("action")
        if not isinstance(action, dict) or not isinstance(part.get("body"), dict):
            return 131008, "interactive needs a body and an action"
        if part.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= 3:
                return 131009, "between 1 and 3 reply buttons"
            if any(len(b["reply"]["title"]) > 20 for b in buttons):
                return 131009, "a reply button title is at most 20 characters"
        elif part.get("type") == "list":
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            if not action.get("button") or not 1 <= len(rows) <= 10:
                return 131009, "a list needs a button label and 1 to 10 rows"
            if any(len(r["title"]) > 24 for r in rows):
                return 131009, "a row title is at most 24 characters"
    elif kind == "location" and not ("latitude" in part and "longitude" in part):
        return 131008, "location needs latitude and longitude"
    return None


def _error(
    status: int,
    code: int,
    message: str,
    subcode: int | None = None,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AFakeTrace0123456789",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return web.json_response({"error": error}, status=status, headers=headers)
