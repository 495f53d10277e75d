"""A fake Twilio REST API on 127.0.0.1: Messages and Calls
(``POST /2010-04-01/Accounts/{sid}/Messages.json`` and ``.../Calls.json``).

For both it checks HTTP Basic ``AccountSid:AuthToken`` for the account in the path (401,
20003) and a form body. Before it queues a message: ``To`` (21604; 21211 when not
E.164), ``From`` or ``MessagingServiceSid`` (21603), one of ``Body``, ``MediaUrl`` or
``ContentSid`` (21602), ``Body`` at most 1,600 characters (21617), at most ten
``MediaUrl``s (21623). Before it queues a call: ``To`` (21201; 21211 when not E.164),
``From`` (21213; 21212 when not E.164), exactly one of ``Url``, ``Twiml`` or
``ApplicationSid`` (21205), ``Twiml`` at most 4,000 characters and well-formed XML with a
``<Response>`` root (12100, which real Twilio reports when the call runs), each
``StatusCallbackEvent`` one of initiated, ringing, answered, completed (21626).

It answers 201 with the Message resource (``SM…``, ``MM…`` with media; ``queued``, or
``accepted`` with a Messaging Service) or the Call resource (``CA…``, ``queued``), or as
scripted: ``Fail`` (Twilio's JSON error body, ``Retry-After`` on a 429), ``HANG`` (held
until released or the caller gives up). Every request is recorded with its form as sent.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
ACCOUNT_SID = "AC" + "0a" * 16
AUTH_TOKEN = "twilio-auth-token-0001"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/(?P<resource>Messages|Calls)\.json$")
_CALL_EVENTS = {"initiated", "ringing", "answered", "completed"}


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Fail:
    http_status: int
    code: int
    message: str
    retry_after: float | None = None


Answer = Accept | Fail | Literal["hang"]


@dataclass
class Request:
    path: str
    form: dict[str, list[str]]
    auth: tuple[str, str] | None
    content_type: str
    at: float  # time.monotonic() on arrival
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    status: int | None = None
    sid: str | None = None

    def one(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class FakeTwilio(ScriptedFake[Answer]):
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Request] = field(default_factory=list)

    @property
    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.sid is not None]

    @property
    def calls(self) -> list[Request]:
        """The calls it queued."""
        return [r for r in self.accepted if r.path.endswith("/Calls.json")]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = (await request.read()).decode()
        form: dict[str, list[str]] = {}
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            for name, value in parse_qsl(body, keep_blank_values=True):
                form.setdefault(name, []).append(value)
        recorded = Request(
            request.path,
            form,
            _basic(request.headers.get("Authorization")),
            content_type,
            time.monotonic(),
        )
        self.requests.append(recorded)
        self._changed.set()
        refused = self._check(request, recorded)
        if refused is not None:
            return self._answer(recorded, refused)
        answer = self._script.popleft() if self._script else Accept()
        try:
            if answer == HANG:
                recorded.outcome = "held"
                self._changed.set()
                await self._release.wait()
                answer = Accept()
        except (asyncio.CancelledError, ConnectionError):
            recorded.outcome = "caller left"
            self._changed.set()
            raise
        assert not isinstance(answer, str)
        return self._answer(recorded, answer)

    def _check(self, request: web.BaseRequest, r: Request) -> Fail | None:
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return Fail(404, 20404, f"The requested resource {request.path} was not found")
        if r.auth != (self.account_sid, self.auth_token) or match["sid"] != self.account_sid:
            return Fail(401, 20003, "Authenticate")
        if match["resource"] == "Calls":
            return _check_call(r)
        to = r.one("To")
        if not to:
            return Fail(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return Fail(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not (r.one("From") or r.one("MessagingServiceSid")):
            return Fail(400, 21603, "A 'From' phone number is required.")
        if not (r.one("Body") or r.form.get("MediaUrl") or r.one("ContentSid")):
            return Fail(400, 21602, "Message body is required.")
        if len(r.one("Body") or "") > 1600:
            return Fail(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if len(r.form.get("MediaUrl", [])) > 10:
            return Fail(400, 21623, "The number of media files exceeds the limit of 10.")
        return None

    def _answer(self, r: Request, answer: Accept | Fail) -> web.StreamResponse:
        r.outcome = "answered"
        self._changed.set()
        if isinstance(answer, Fail):
            r.status = answer.http_status
            headers = {}
            if answer.retry_after is not None:
                headers["Retry-After"] = f"{answer.retry_after:g}"
            return web.json_response(
                {
                    "code": answer.code,
                    "message": answer.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{answer.code}",
                    "status": answer.http_status,
                },
                status=answer.http_status,
                headers=headers,
            )
        if r.path.endswith("/Calls.json"):
            return self._call(r)
        media = r.form.get("MediaUrl", [])
        r.sid = ("MM" if media else "SM") + f"{len(self.requests):032x}"
        r.status = 201
        service = r.one("MessagingServiceSid")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{r.sid}"
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": r.one("Body") or "",
                "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
                "date_sent": None,
                "date_updated": "Thu, 30 Jul 2015 20:12:31 +0000",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": r.one("From"),
                "messaging_service_sid": service,
                "num_media": str(len(media)),
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": r.sid,
                "status": "accepted" if service else "queued",
                "subresource_uris": {"media": f"{uri}/Media.json"},
                "to": r.one("To"),
                "uri": f"{uri}.json",
            },
            status=201,
        )

    def _call(self, r: Request) -> web.StreamResponse:
        r.sid = "CA" + f"{len(self.requests):032x}"
        r.status = 201
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{r.sid}"
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "annotation": None,
                "answered_by": None,
                "api_version": "2010-04-01",
                "caller_name": None,
                "date_created": None,
                "date_updated": None,
                "direction": "outbound-api",
                "duration": None,
                "end_time": None,
                "forwarded_from": None,
                "from": r.one("From"),
                "group_sid": None,
                "parent_call_sid": None,
                "phone_number_sid": "PN" + "0d" * 16,
                "price": None,
                "price_unit": "USD",
                "queue_time": "0",
                "sid": r.sid,
                "start_time": None,
                "status": "queued",
                "subresource_uris": {
                    "notifications": f"{uri}/Notifications.json",
                    "recordings": f"{uri}/Recordings.json",
                    "events": f"{uri}/Events.json",
                },
                "to": r.one("To"),
                "trunk_sid": None,
                "uri": f"{uri}.json",
            },
            status=201,
        )


def _check_call(r: Request) -> Fail | None:
    to, from_ = r.one("To"), r.one("From")
    if not to:
        return Fail(400, 21201, "No 'To' number is specified")
    if not _E164.match(to):
        return Fail(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not from_:
        return Fail(400, 21213, "No 'From' number is specified")
    if not _E164.match(from_):
        return Fail(400, 21212, f"The 'From' number {from_} is not a valid phone number.")
    if sum(1 for k in ("Url", "Twiml", "ApplicationSid") if r.one(k)) != 1:
        return Fail(400, 21205, "Give exactly one of Url, Twiml or ApplicationSid.")
    twiml = r.one("Twiml")
    if twiml is not None:
        if len(twiml) > 4000:
            return Fail(400, 21205, "Twiml exceeds the 4000 character limit.")
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError:
            return Fail(400, 12100, "Document parse failure")
        if root.tag != "Response":
            return Fail(400, 12100, "Document parse failure: the root is not <Response>")
    if not set(r.form.get("StatusCallbackEvent", [])) <= _CALL_EVENTS:
        return Fail(400, 21626, "Invalid StatusCallbackEvent")
    return None


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password
