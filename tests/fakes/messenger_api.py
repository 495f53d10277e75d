"""A fake Messenger Send API (Graph) on 127.0.0.1.

``POST /{vN.N}/{page id or "me"}/messages`` checks what Graph checks: the Page access token,
as ``Authorization: Bearer`` or the ``access_token`` query parameter (401, code 190
otherwise), the page id (400, code 100 / subcode 33), a JSON body with ``recipient.id``
(100 / 2018001 "No matching user found" for a PSID the page does not know, when
``known_psids`` is set), exactly one of ``message`` and ``sender_action``, a valid
``messaging_type`` and, for ``MESSAGE_TAG``, an allowed ``tag`` (100 / 2018108 otherwise),
a ``message`` with ``text`` (at most 2,000 characters) or an ``attachment`` (type
image/audio/video/file/template with a payload), at most 13 quick replies with titles up to
20 characters. Accepted sends answer like the real API: ``{"recipient_id", "message_id"}``.

It answers by a script: ``Accept``, ``Fail`` (a Graph error envelope with the given HTTP
status, code and subcode, ``Retry-After`` when given) or ``HANG`` (hold until released or
the caller leaves); once the script is used up it accepts. Sender actions are recorded in
``actions`` and answered ``{"recipient_id"}``.
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
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
TAGS = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT",
        "CUSTOMER_FEEDBACK"}  # fmt: skip
ATTACHMENT_TYPES = {"image", "audio", "video", "file", "template"}
SENDER_ACTIONS = {"typing_on", "typing_off", "mark_seen"}


@dataclass(frozen=True)
class Accept:
    mid: str | None = None  # the message id to answer with (a generated one by default)


@dataclass(frozen=True)
class Fail:
    http_status: int
    code: int
    message: str
    subcode: int | None = None
    retry_after: float | None = None


Answer = Accept | Fail | Literal["hang"]


@dataclass
class Sent:
    version: str
    body: dict[str, Any]
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    mid: str | None = None


@dataclass
class FakeMessengerApi(ScriptedFake[Answer]):
    page_access_token: str
    page_id: str
    known_psids: set[str] | None = None  # None: every PSID is one the page may message
    requests: list[Sent] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.requests if s.mid is not None]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        match = PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _error(400, 100, "Unknown path components", subcode=2500)
        token = request.query.get("access_token") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        if token != self.page_access_token:
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if match.group(2) not in (self.page_id, "me"):
            return _error(
                400, 100, f"Unsupported post request. Object with ID '{match.group(2)}' "
                "does not exist", subcode=33,
            )  # fmt: skip
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 100, "(#100) Invalid parameter: the body is not JSON")
        problem = _check(body, self.known_psids) if isinstance(body, dict) else None
        if not isinstance(body, dict):
            problem = (100, None, "(#100) The body must be a JSON object")
        if problem is not None:
            return _error(400, problem[0], problem[2], subcode=problem[1])
        psid = str(body["recipient"]["id"])
        if "sender_action" in body:
            self.actions.append(body)
            self._changed.set()
            return web.json_response({"recipient_id": psid})
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
            return _error(answer.http_status, answer.code, answer.message, answer.subcode, headers)
        assert isinstance(answer, Accept)
        n = len(self.requests)
        fresh = "m_" + base64.urlsafe_b64encode(f"parley-fake-{n:06d}".encode()).decode()
        sent.mid = answer.mid or fresh
        return web.json_response({"recipient_id": psid, "message_id": sent.mid})



def _check(body: dict[str, Any], known: set[str] | None) -> tuple[int, int | None, str] | None:
    """What the Send API refuses in a body: (code, subcode, message), or None."""
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not recipient.get("id"):
        return 100, None, "(#100) param recipient must be non-empty."
    if known is not None and str(recipient["id"]) not in known:
        return 100, 2018001, "(#100) No matching user found"
    if ("message" in body) == ("sender_action" in body):
        return 100, None, "(#100) Must send either message or sender_action"
    if "sender_action" in body:
        if body["sender_action"] not in SENDER_ACTIONS:
            return 100, None, "(#100) param sender_action must be one of {TYPING_ON, ...}"
        return None
    messaging_type = body.get("messaging_type", "RESPONSE")
    if messaging_type not in MESSAGING_TYPES:
        return 100, None, "(#100) param messaging_type must be one of {RESPONSE, UPDATE, ...}"
    if messaging_type == "MESSAGE_TAG" and body.get("tag") not in TAGS:
        return 100, 2018108, "(#100) Tag is not allowed or not valid"
    message = body["message"]
    if not isinstance(message, dict):
        return 100, None, "(#100) param message must be an object"
    text, attachment = message.get("text"), message.get("attachment")
    if (text is None) == (attachment is None):
        return 100, None, "(#100) Must send either text or attachment"
    if text is not None:
        if not isinstance(text, str) or not text:
            return 100, None, "(#100) param message[text] must be non-empty."
        if len(text) > 2000:
            return (
                100,
                None,
                "(#100) Length of param message[text] must be less than or equal to 2000",
            )
    else:
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
            return 100, None, "(#100) param message[attachment][type] must be one of {...}"
        payload = attachment.get("payload")
        if not isinstance(payload, dict) or not (
            payload.get("url") or payload.get("attachment_id") or attachment["type"] == "template"
        ):
            return 100, None, "(#100) param message[attachment][payload][url] must be a URL"
    quick = message.get("quick_replies")
    if quick is not None:
        if not isinstance(quick, list) or not 1 <= len(quick) <= 13:
            return 100, None, "(#100) param message[quick_replies] must have 1 to 13 items"
        for reply in quick:
            if reply.get("content_type") not in ("text", "user_phone_number", "user_email"):
                return 100, None, "(#100) param content_type must be one of {TEXT, ...}"
            if reply.get("content_type") == "text":
                if not reply.get("title") or len(reply["title"]) > 20:
                    return 100, None, "(#100) quick reply title must be 1 to 20 characters"
                if not reply.get("payload") or len(reply["payload"]) > 1000:
                    return 100, None, "(#100) quick reply payload must be 1 to 1000 characters"
    return None


def _error(
    status: int,
    code: int,
    message: str,
    subcode: int | None = None,
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
    return web.json_response({"error": error}, status=status, headers=headers)
