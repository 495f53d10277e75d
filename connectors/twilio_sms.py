"""Twilio Programmable Messaging (SMS and MMS) over the 2010 REST API.

| what | how |
| --- | --- |
| send | form POST ``/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic ``AccountSid:AuthToken``; ``From`` or ``MessagingServiceSid``; ``StatusCallback`` when configured; ``MediaUrl`` for media; a Content template (``HX…``) as ``ContentSid`` + ``ContentVariables`` |
| errors | Twilio's JSON error body; timeouts, connection errors, 5xx and 429 (``Retry-After``) are retried, every other 4xx (21211 bad To, 21610 unsubscribed, 20003 auth ...) is given up with Twilio's code (``connectors.twilio``) |
| verify | ``X-Twilio-Signature`` as twilio-python's ``RequestValidator`` checks it (``connectors.twilio``) |
| parse | an inbound SMS/MMS (``MessageSid`` without ``MessageStatus``): its ``Body`` as text, each ``MediaUrl{N}`` as media; a status callback (``MessageStatus``): sent, delivered, read, or failed (``failed``, ``undelivered``, ``canceled``) with ``ErrorCode`` |

Which URL Twilio signed, behind a proxy too: see ``connectors.twilio``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx

from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    SendResult,
    StatusUpdate,
    WebhookAnswer,
    WebhookRequest,
)
from connectors.errors import GiveUp
from connectors.twilio import TwilioAccount, compute_signature, fields, validate

__all__ = ["TwilioSms", "compute_signature", "validate"]

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
        self.account = TwilioAccount(config, http)
        self.from_number: str | None = config.get("from_number")
        self.messaging_service_sid: str | None = config.get("messaging_service_sid")

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        """Twilio reads the answer to an incoming message as TwiML: an empty
        ``<Response/>`` says "no reply now" (Parley's replies go through the API)."""
        return WebhookAnswer(body=EMPTY_TWIML, content_type="text/xml")

    # -- send ---------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        form = [("To", message.to), *self._sender(), *_content_fields(message.content)]
        if self.account.status_callback_url:
            form.append(("StatusCallback", self.account.status_callback_url))
        created = await self.account.create("Messages", form, "message")
        return SendResult(str(created["sid"]))

    def _sender(self) -> list[tuple[str, str]]:
        # With a Messaging Service Twilio picks the sender from its pool.
        if self.messaging_service_sid:
            return [("MessagingServiceSid", self.messaging_service_sid)]
        if self.from_number:
            return [("From", self.from_number)]
        raise GiveUp("the channel has neither from_number nor messaging_service_sid")

    # -- webhooks -----------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        self.account.verify(request)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return None  # Twilio has no verification handshake

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        form = fields(request)
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        if not sid:
            return []
        if "MessageStatus" in form:
            update = _status(sid, form)
            return [update] if update is not None else []
        return _inbound(sid, form)


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
