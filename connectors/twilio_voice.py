"""Twilio Programmable Voice: a message is a phone call that speaks it; a caller hears
the workspace's greeting and every key they press is stored.

| what | how |
| --- | --- |
| send | form POST ``/2010-04-01/Accounts/{AccountSid}/Calls.json`` (``connectors.twilio``): ``To``, ``From``, inline ``Twiml`` ``<Response><Say language="...">text</Say></Response>``; with ``status_callback_url``, ``StatusCallback`` and ``StatusCallbackEvent`` initiated, ringing, answered, completed. The Call SID (``CA…``) is the provider's message id |
| language | the contact's locale (``Outbound.locale``) as a language ``<Say>`` speaks (``fr`` -> ``fr-FR``, ``pt_BR`` -> ``pt-BR``); otherwise the channel's ``language`` (default ``en-US``) |
| content | text is spoken; buttons are spoken with "Press 1 for …"; a location by its name and address (or coordinates); audio media is played (``<Play>``) after its caption, other media only by its caption; a template cannot be spoken (``GiveUp``) |
| statuses | ``CallStatus`` of the outbound call: queued says nothing new; initiated and ringing are ``sent``; in-progress (answered) and completed are ``delivered`` (somebody or a voicemail picked up and heard it); busy, no-answer, canceled and failed are ``failed`` with Twilio's ``ErrorCode`` or the status as the code, and a reason |
| inbound call | Twilio POSTs the number's Voice webhook (``Direction=inbound``, ``CallStatus=ringing``): stored as a text message "Incoming call" from the caller (once per ``CallSid``), which opens or reopens their conversation; answered with TwiML: the ``greeting`` inside a ``<Gather input="dtmf" numDigits=gather_digits action=<the URL Twilio called>?gather=1>``, then ``goodbye`` and ``<Hangup/>`` if no key comes |
| keys | each ``<Gather>`` callback (``Digits``) is a text message of the digits with ``data: {"digits", "call_sid"}``, and a ``voice.digits`` event on the contact (payload ``{"digits", "call_sid"}``); its provider id is ``<CallSid>:digits:<n>``, ``n`` the step in the action URL, so Twilio's repeats are stored once while the same key pressed again later is a new message. The answer thanks the caller (``thanks``) and gathers again (step ``n + 1``); silence ends the call with ``goodbye`` |
| hidden numbers | a caller who hides their number (``From`` ``+266696687`` "anonymous" and the like, or no E.164 number) hears the greeting and may press keys, but nothing is stored: there is no contact to keep it for |
| verify | ``X-Twilio-Signature``, exactly as for SMS (``connectors.twilio``) |

Parley cannot answer a key while the call lasts (agents and flows answer later, with
a new call or on another channel), so the caller is told their choice was received and
may press another key or hang up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx

from connectors.base import (
    ContactEvent,
    Inbound,
    Outbound,
    Parsed,
    SendResult,
    StatusUpdate,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp
from connectors.twilio import TwilioAccount, fields

log = logging.getLogger(__name__)

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
EMPTY_TWIML = f"{XML_DECLARATION}<Response></Response>".encode()
MAX_TWIML = 4000  # characters Twilio takes in the Twiml parameter
DEFAULT_LANGUAGE = "en-US"
DEFAULT_GREETING = "Thank you for calling. Please choose an option on your keypad now."
DEFAULT_THANKS = "Thank you, we received your choice. You can press another key, or hang up."
DEFAULT_GOODBYE = "Goodbye."
DIGITS_EVENT = "voice.digits"
INCOMING_CALL_TEXT = "Incoming call"
STEP_PARAM = "gather"  # the <Gather action> URL's step number
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")

# The languages <Say> speaks (Twilio's standard, Polly and Google voices between them).
SAY_LANGUAGES = frozenset(
    {
        "ar-AE", "ca-ES", "cy-GB", "da-DK", "de-AT", "de-DE", "en-AU", "en-CA", "en-GB",
        "en-IE", "en-IN", "en-NZ", "en-US", "en-ZA", "es-ES", "es-MX", "es-US", "fi-FI",
        "fr-CA", "fr-FR", "hi-IN", "is-IS", "it-IT", "ja-JP", "ko-KR", "nb-NO", "nl-BE",
        "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE", "tr-TR", "zh-CN",
        "zh-HK", "zh-TW",
    }
)  # fmt: skip
# A bare language (or one with a region <Say> lacks) is spoken as its main locale.
_MAIN_LOCALE = {
    "ar": "ar-AE", "ca": "ca-ES", "cy": "cy-GB", "da": "da-DK", "de": "de-DE", "en": "en-US",
    "es": "es-ES", "fi": "fi-FI", "fr": "fr-FR", "hi": "hi-IN", "is": "is-IS", "it": "it-IT",
    "ja": "ja-JP", "ko": "ko-KR", "nb": "nb-NO", "nn": "nb-NO", "no": "nb-NO", "nl": "nl-NL",
    "pl": "pl-PL", "pt": "pt-BR", "ro": "ro-RO", "ru": "ru-RU", "sv": "sv-SE", "tr": "tr-TR",
    "zh": "zh-CN", "yue": "zh-HK", "cmn": "zh-CN",
}  # fmt: skip
_CHINESE_SCRIPT = {"hant": "zh-TW", "hans": "zh-CN"}

# CallStatus of an outbound call -> Parley's status; None: nothing Parley does not know.
_STATUS: Mapping[str, Literal["sent", "delivered", "failed"] | None] = {
    "queued": None,
    "initiated": "sent",
    "ringing": "sent",
    "in-progress": "delivered",
    "completed": "delivered",
    "busy": "failed",
    "no-answer": "failed",
    "canceled": "failed",
    "failed": "failed",
}
_FAILED_BECAUSE = {
    "busy": "The line was busy",
    "no-answer": "Nobody answered the call",
    "canceled": "The call was canceled before it was answered",
    "failed": "Twilio could not place the call",
}
# What Twilio puts in From for a caller who hides their number: "ANONYMOUS",
# "UNAVAILABLE", "RESTRICTED", "BLOCKED" on a keypad.
_HIDDEN_CALLERS = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533"})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_AUDIO_EXTENSIONS = (".mp3", ".wav", ".aif", ".aiff", ".gsm", ".ulaw")


class TwilioVoice:
    type: ClassVar[str] = "voice"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.account = TwilioAccount(config, http)
        self.from_number: str | None = config.get("from_number")
        self.language = str(config.get("language") or DEFAULT_LANGUAGE)
        self.say_voice: str | None = config.get("say_voice")
        self.greeting = str(config.get("greeting") or DEFAULT_GREETING)
        self.thanks = str(config.get("thanks") or DEFAULT_THANKS)
        self.goodbye = str(config.get("goodbye") or DEFAULT_GOODBYE)
        self.gather_digits = int(config.get("gather_digits") or 1)

    # -- send ---------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        if not self.from_number:
            raise GiveUp("a voice channel needs from_number to place calls", code="no_sender")
        language = say_language(message.locale, self.language)
        twiml = "<Response>" + "".join(self._speak(message.content, language)) + "</Response>"
        if len(twiml) > MAX_TWIML:
            raise GiveUp(
                f"the call's TwiML is {len(twiml)} characters; Twilio takes {MAX_TWIML}",
                code="twiml_too_long",
            )
        form = [("To", message.to), ("From", self.from_number), ("Twiml", twiml)]
        callback = self.account.status_callback_url
        if callback:
            form.append(("StatusCallback", callback))
            form += [("StatusCallbackEvent", event) for event in STATUS_EVENTS]
            form.append(("StatusCallbackMethod", "POST"))
        created = await self.account.create("Calls", form, "call")
        return SendResult(str(created["sid"]))

    def _speak(self, content: Mapping[str, Any], language: str) -> list[str]:
        """TwiML verbs that say ``content``: text as <Say>, audio as <Play>."""
        say = self._say
        kind = content.get("type")
        if kind == "text":
            return [say(str(content["text"]), language)]
        if kind == "buttons":
            choices = " ".join(
                f"Press {n} for {b['title']}." for n, b in enumerate(content["buttons"], start=1)
            )
            return [say(f"{content['text']} {choices}", language)]
        if kind == "location":
            words = [str(x) for x in (content.get("name"), content.get("address")) if x]
            if not words:
                words = [f"Latitude {content['latitude']}, longitude {content['longitude']}"]
            return [say(", ".join(words), language)]
        if kind == "media":
            verbs = [say(str(content["caption"]), language)] if content.get("caption") else []
            if _is_audio(content):
                verbs.append(f"<Play>{_xml_text(str(content['url']))}</Play>")
            if not verbs:
                raise GiveUp(
                    "a call can play audio or say a caption; this media has neither",
                    code="unsupported_content",
                )
            return verbs
        raise GiveUp(f"a call cannot speak {kind!r} content", code="unsupported_content")

    def _say(self, text: str, language: str) -> str:
        attributes = {"voice": self.say_voice, "language": language}
        return f"<Say{_attributes(attributes)}>{_xml_text(text)}</Say>"

    # -- webhooks -----------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        self.account.verify(request)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        return None  # Twilio has no verification handshake

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        form = fields(request)
        sid = form.get("CallSid")
        if not sid:
            return []
        if not form.get("Direction", "").startswith("outbound") and _hidden(form):
            # Nobody to store it for; the caller still hears the greeting.
            log.info("a call from a hidden number on %s: answered, not stored", form.get("To"))
            return []
        if "Digits" in form:
            return _keys(sid, form, _step(request))
        if form.get("Direction", "").startswith("outbound"):
            update = _status(sid, form)
            return [update] if update is not None else []
        if _incoming_call(form):
            profile = {"name": form["CallerName"]} if form.get("CallerName") else {}
            content = {"type": "text", "text": INCOMING_CALL_TEXT, "data": {"call_sid": sid}}
            return [Inbound(sid, form.get("From", ""), content, profile=profile)]
        return []  # an inbound call's own progress (completed ...): no news

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        """TwiML for the call: the greeting and a <Gather> for a call coming in, thanks
        and another <Gather> after keys; an empty <Response> to status callbacks."""
        form = fields(request)
        if "Digits" in form:
            step = _step(request) + 1
            return self._twiml(self._gather(request, step, self.thanks))
        if not form.get("Direction", "").startswith("outbound") and _incoming_call(form):
            return self._twiml(self._gather(request, 1, self.greeting))
        return WebhookAnswer(body=EMPTY_TWIML, content_type="text/xml")

    def _gather(self, request: WebhookRequest, step: int, prompt: str) -> str:
        attributes = {
            "input": "dtmf",
            "numDigits": str(self.gather_digits),
            "action": _with_step(self._called_url(request), step),
            "method": "POST",
        }
        return (
            f"<Gather{_attributes(attributes)}>{self._say(prompt, self.language)}</Gather>"
            f"{self._say(self.goodbye, self.language)}<Hangup/>"
        )

    def _called_url(self, request: WebhookRequest) -> str:
        """The URL Twilio called (the public one, behind a proxy too)."""
        try:
            return self.account.signed_url(request)
        except WebhookRejected:  # not reached: the request was verified before
            return request.url

    @staticmethod
    def _twiml(verbs: str) -> WebhookAnswer:
        body = f"{XML_DECLARATION}<Response>{verbs}</Response>"
        return WebhookAnswer(body=body.encode(), content_type="text/xml")


# -- languages -----------------------------------------------------------------


def say_language(locale: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The <Say> language for a contact's locale (BCP 47 or POSIX style), else ``default``."""
    if not locale:
        return default
    parts = [p for p in re.split(r"[-_.@]", locale.strip()) if p]
    if not parts:
        return default
    language = parts[0].lower()
    rest = parts[1:]
    if language == "zh" and rest and rest[0].lower() in _CHINESE_SCRIPT:
        script = rest[0].lower()
        region = rest[1].upper() if len(rest) > 1 else ""
        found = f"zh-{region}"
        return found if found in SAY_LANGUAGES else _CHINESE_SCRIPT[script]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            candidate = f"{language}-{part.upper()}"
            if candidate in SAY_LANGUAGES:
                return candidate
            break
    return _MAIN_LOCALE.get(language, default)


# -- TwiML ---------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return escape(_XML_INVALID.sub("", text))


def _attributes(attributes: Mapping[str, str | None]) -> str:
    return "".join(
        f' {name}="{escape(_XML_INVALID.sub("", value), {chr(34): "&quot;"})}"'
        for name, value in attributes.items()
        if value is not None
    )


def _is_audio(content: Mapping[str, Any]) -> bool:
    mime = str(content.get("mime_type") or "")
    if mime:
        return mime.startswith("audio/")
    return urlsplit(str(content["url"])).path.lower().endswith(_AUDIO_EXTENSIONS)


def _step(request: WebhookRequest) -> int:
    """The <Gather> step this callback answers (1 when the action URL has none)."""
    value = dict(parse_qsl(urlsplit(request.url).query)).get(STEP_PARAM, "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


def _with_step(url: str, step: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != STEP_PARAM]
    query.append((STEP_PARAM, str(step)))
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- parsing ---------------------------------------------------------------------


def _hidden(form: Mapping[str, str]) -> bool:
    caller = form.get("From", "")
    return caller in _HIDDEN_CALLERS or not _E164.match(caller)


def _incoming_call(form: Mapping[str, str]) -> bool:
    """The number's Voice webhook for a new call (not a progress callback)."""
    status = form.get("CallStatus", "").lower()
    return "CallbackSource" not in form and status in ("ringing", "queued", "in-progress")


def _keys(sid: str, form: Mapping[str, str], step: int) -> list[Parsed]:
    digits = form["Digits"].strip()
    if not digits:
        return []  # the caller pressed nothing before the timeout
    key = f"{sid}:digits:{step}"
    content = {"type": "text", "text": digits, "data": {"digits": digits, "call_sid": sid}}
    return [
        Inbound(key, form.get("From", ""), content),
        ContactEvent(key, DIGITS_EVENT, {"digits": digits, "call_sid": sid}),
    ]


def _status(sid: str, form: Mapping[str, str]) -> StatusUpdate | None:
    call_status = form.get("CallStatus", "").lower()
    status = _STATUS.get(call_status)
    if status is None:
        return None
    if status != "failed":
        return StatusUpdate(sid, status)
    code = form.get("ErrorCode") or call_status
    reason = form.get("ErrorMessage") or _FAILED_BECAUSE[call_status]
    if form.get("SipResponseCode"):
        reason += f" (SIP {form['SipResponseCode']})"
    return StatusUpdate(sid, "failed", error_code=code, error_message=reason)
