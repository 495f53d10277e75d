"""Twilio voice (connectors/twilio_voice.py): calls placed through a fake Twilio Calls API
(tests/fakes/twilio_api.py) speaking the message in the contact's language, every call
status, inbound calls answered with the greeting and a <Gather>, keys pressed stored as
messages and as events on the contact, and the whole path through the real app on both
databases."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from chat.settings import Settings
from connectors.base import (
    ContactEvent,
    Inbound,
    Outbound,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.twilio import compute_signature
from connectors.twilio_voice import TwilioVoice, say_language
from tests import conftest
from tests.conftest import LiveServer
from tests.connectors.e2e import (
    agent_reply,
    messages_in,
    note_stayed_inside,
    only_conversation,
    socket_reply_and_note,
    until_status,
)
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, HANG, Fail, FakeTwilio

FIXTURES = Path("/work/shared/fixtures/providers")
VECTORS = json.loads((FIXTURES / "twilio.signature_vectors.json").read_text())
[CALL_VECTOR] = [v for v in VECTORS["fixtures"] if "call_status" in v["file"]]
FIXTURE_TOKEN = CALL_VECTOR["auth_token"]
CALL_SID = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
PARLEY_NUMBER = "+15017122661"
# The fixtures' customer, +1 555-867-5310, is a placeholder Parley's phone rule refuses.
CUSTOMER = "+14155550123"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def form_of(body: bytes | str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    text = body.decode() if isinstance(body, bytes) else body
    for k, v in parse_qsl(text, keep_blank_values=True):
        found.setdefault(k, []).append(v)
    return found


def voice(token: str = FIXTURE_TOKEN, **config: Any) -> TwilioVoice:
    base = {"account_sid": ACCOUNT_SID, "auth_token": token, "from_number": PARLEY_NUMBER}
    return TwilioVoice({**base, **config}, httpx.AsyncClient())


def signed(url: str, body: bytes, token: str = FIXTURE_TOKEN, **headers: str) -> WebhookRequest:
    signature = compute_signature(token, url, form_of(body))
    all_headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature,
        **headers,
    }
    return WebhookRequest("POST", url, all_headers, {}, body)


def call_form(**fields: str) -> bytes:
    """A voice webhook's form as Twilio posts it for a call coming in to Parley's number."""
    base = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL_SID,
        "CallStatus": "ringing",
        "Called": PARLEY_NUMBER,
        "Caller": CUSTOMER,
        "Direction": "inbound",
        "From": CUSTOMER,
        "To": PARLEY_NUMBER,
    }
    return urlencode({**base, **fields}).encode()


def status_form(sid: str, status: str, **extra: str) -> bytes:
    """A progress callback of a call Parley placed."""
    return urlencode(
        {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Called": CUSTOMER,
            "Caller": PARLEY_NUMBER,
            "Direction": "outbound-api",
            "From": PARLEY_NUMBER,
            "SequenceNumber": "0",
            "To": CUSTOMER,
            **extra,
        }
    ).encode()


def twiml(body: bytes) -> ET.Element:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return root


# -- the signature, exactly as for SMS -------------------------------------------------


def test_the_call_status_fixture_verifies_byte_for_byte() -> None:
    body = fixture(CALL_VECTOR["file"])
    headers = {"x-twilio-signature": CALL_VECTOR["expected_signature"]}
    voice().verify(WebhookRequest("POST", CALL_VECTOR["url"], headers, {}, body))
    with pytest.raises(WebhookRejected) as exc:
        tampered = body.replace(b"CallStatus=completed", b"CallStatus=canceled")
        voice().verify(WebhookRequest("POST", CALL_VECTOR["url"], headers, {}, tampered))
    assert exc.value.status == 401
    with pytest.raises(WebhookRejected):
        voice("another-token").verify(WebhookRequest("POST", CALL_VECTOR["url"], headers, {}, body))
    with pytest.raises(WebhookRejected):
        voice().verify(WebhookRequest("POST", CALL_VECTOR["url"], {}, {}, body))


def test_behind_a_proxy_the_forwarded_url_verifies_and_is_where_the_gather_points() -> None:
    public = "https://parley.example.com/webhooks/ch_1"
    body = call_form()
    proxied = signed(public, body)
    inside = WebhookRequest(
        "POST",
        "http://10.0.0.7:8000/webhooks/ch_1",
        {**proxied.headers, "x-forwarded-proto": "https", "x-forwarded-host": "parley.example.com"},
        {},
        body,
    )
    connector = voice()
    connector.verify(inside)
    answer = connector.callback_answer(inside)
    assert answer is not None
    [gather] = twiml(answer.body).iter("Gather")
    assert gather.get("action") == public + "?gather=1"
    # Without the forwarded headers the URL Parley sees is not the one Twilio signed.
    with pytest.raises(WebhookRejected):
        connector.verify(WebhookRequest("POST", inside.url, proxied.headers, {}, body))


def test_a_gather_callback_to_the_configured_url_verifies_with_its_step() -> None:
    public = "https://parley.example.com/webhooks/ch_1"
    body = call_form(CallStatus="in-progress", Digits="4")
    request = signed(public + "?gather=2", body)
    seen = WebhookRequest(
        "POST", "http://127.0.0.1:8000/webhooks/ch_1?gather=2", request.headers, {}, body
    )
    voice(status_callback_url=public).verify(seen)
    with pytest.raises(WebhookRejected):  # the step is signed too
        voice(status_callback_url=public).verify(
            WebhookRequest(
                "POST", "http://127.0.0.1:8000/webhooks/ch_1?gather=3", request.headers, {}, body
            )
        )


# -- the language <Say> speaks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        (None, "en-US"),
        ("", "en-US"),
        ("fr", "fr-FR"),
        ("fr-CA", "fr-CA"),
        ("fr_BE", "fr-FR"),  # a region <Say> lacks: the language's main locale
        ("pt_BR.UTF-8", "pt-BR"),
        ("pt", "pt-BR"),
        ("en-gb", "en-GB"),
        ("de-CH", "de-DE"),
        ("nn-NO", "nb-NO"),
        ("zh-Hant-TW", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("zh", "zh-CN"),
        ("sw-KE", "en-US"),  # not spoken: the default
    ],
)
def test_a_locale_becomes_a_language_say_speaks(locale: str | None, language: str) -> None:
    assert say_language(locale) == language


def test_the_channels_language_is_the_default() -> None:
    assert say_language(None, "es-MX") == "es-MX"
    assert say_language("xx", "es-MX") == "es-MX"


# -- parsing --------------------------------------------------------------------------


def parse(body: bytes, url: str = "https://parley.example.com/webhooks/ch_1") -> list[Any]:
    return list(voice().parse(WebhookRequest("POST", url, {}, {}, body)))


def test_the_completed_fixture_means_the_call_was_delivered() -> None:
    assert parse(fixture("twilio.call_status_callback_completed.form")) == [
        StatusUpdate(CALL_SID, "delivered")
    ]


@pytest.mark.parametrize(
    ("call_status", "expected"),
    [
        ("queued", None),
        ("initiated", StatusUpdate(CALL_SID, "sent")),
        ("ringing", StatusUpdate(CALL_SID, "sent")),
        ("in-progress", StatusUpdate(CALL_SID, "delivered")),
        ("completed", StatusUpdate(CALL_SID, "delivered")),
        ("busy", StatusUpdate(CALL_SID, "failed", "busy", "The line was busy")),
        ("no-answer", StatusUpdate(CALL_SID, "failed", "no-answer", "Nobody answered the call")),
        (
            "canceled",
            StatusUpdate(
                CALL_SID, "failed", "canceled", "The call was canceled before it was answered"
            ),
        ),
        ("failed", StatusUpdate(CALL_SID, "failed", "failed", "Twilio could not place the call")),
    ],
)
def test_every_call_status_of_a_call_parley_placed(
    call_status: str, expected: StatusUpdate | None
) -> None:
    assert parse(status_form(CALL_SID, call_status)) == ([expected] if expected else [])


def test_a_failed_call_keeps_twilios_error_code_and_the_sip_answer() -> None:
    body = status_form(CALL_SID, "failed", ErrorCode="32009", SipResponseCode="404")
    assert parse(body) == [
        StatusUpdate(CALL_SID, "failed", "32009", "Twilio could not place the call (SIP 404)")
    ]


def test_a_call_coming_in_is_an_incoming_call_message_from_the_caller() -> None:
    assert parse(call_form(CallerName="Ann Smith")) == [
        Inbound(
            CALL_SID,
            CUSTOMER,
            {"type": "text", "text": "Incoming call", "data": {"call_sid": CALL_SID}},
            profile={"name": "Ann Smith"},
        )
    ]


def test_keys_pressed_are_a_message_and_an_event_keyed_by_the_gather_step() -> None:
    body = call_form(CallStatus="in-progress", Digits="42")
    key = f"{CALL_SID}:digits:3"
    assert parse(body, "https://parley.example.com/webhooks/ch_1?gather=3") == [
        Inbound(
            key,
            CUSTOMER,
            {"type": "text", "text": "42", "data": {"digits": "42", "call_sid": CALL_SID}},
        ),
        ContactEvent(key, "voice.digits", {"digits": "42", "call_sid": CALL_SID}),
    ]
    # No step in the URL (Twilio's default action): the first.
    assert parse(body)[0].provider_message_id == f"{CALL_SID}:digits:1"


def test_no_key_and_an_inbound_calls_own_progress_are_no_news() -> None:
    assert parse(call_form(CallStatus="in-progress", Digits="")) == []
    assert parse(call_form(CallStatus="completed", CallbackSource="call-progress-events")) == []
    assert parse(b"AccountSid=AC1") == []


@pytest.mark.parametrize("caller", ["+266696687", "+7378742833", "anonymous", ""])
def test_a_caller_who_hides_their_number_is_answered_but_not_stored(caller: str) -> None:
    assert parse(call_form(From=caller)) == []
    assert parse(call_form(From=caller, CallStatus="in-progress", Digits="1")) == []
    request = signed("https://parley.example.com/webhooks/ch_1", call_form(From=caller))
    answer = voice().callback_answer(request)
    assert answer is not None and [v.tag for v in twiml(answer.body)] == ["Gather", "Say", "Hangup"]


# -- what Twilio is told to do in the call ------------------------------------------------


def test_a_call_coming_in_hears_the_greeting_inside_a_gather() -> None:
    connector = voice(greeting="Welcome to Acme & Co. Press 1 for sales.", gather_digits=2)
    request = signed("https://parley.example.com/webhooks/ch_1", call_form())
    answer = connector.callback_answer(request)
    assert answer is not None and answer.content_type == "text/xml"
    root = twiml(answer.body)
    assert [child.tag for child in root] == ["Gather", "Say", "Hangup"]
    gather = root[0]
    assert gather.attrib == {
        "input": "dtmf",
        "numDigits": "2",
        "action": "https://parley.example.com/webhooks/ch_1?gather=1",
        "method": "POST",
    }
    [say] = list(gather)
    assert (say.tag, say.text, say.get("language")) == (
        "Say",
        "Welcome to Acme & Co. Press 1 for sales.",
        "en-US",
    )
    assert b"Acme &amp; Co." in answer.body
    assert root[1].text == "Goodbye."


def test_after_a_key_the_caller_is_thanked_and_may_press_another() -> None:
    connector = voice(language="fr-FR", thanks="Merci.", goodbye="Au revoir.")
    url = "https://parley.example.com/webhooks/ch_1?gather=2"
    answer = connector.callback_answer(signed(url, call_form(CallStatus="in-progress", Digits="1")))
    assert answer is not None
    root = twiml(answer.body)
    [gather] = root.iter("Gather")
    assert gather.get("action") == "https://parley.example.com/webhooks/ch_1?gather=3"
    assert [(s.text, s.get("language")) for s in root.iter("Say")] == [
        ("Merci.", "fr-FR"),
        ("Au revoir.", "fr-FR"),
    ]
    assert root[-1].tag == "Hangup"


def test_a_status_callback_is_answered_with_an_empty_response() -> None:
    request = signed(CALL_VECTOR["url"], fixture("twilio.call_status_callback_completed.form"))
    answer = voice().callback_answer(request)
    assert answer is not None
    assert list(twiml(answer.body)) == []


# -- placing calls at the fake Twilio ------------------------------------------------------


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def caller(twilio: FakeTwilio, http: httpx.AsyncClient, **config: Any) -> TwilioVoice:
    base = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": PARLEY_NUMBER,
        "api_base_url": twilio.url,
    }
    return TwilioVoice({k: v for k, v in {**base, **config}.items() if v is not None}, http)


def out(
    content: dict[str, Any] | str, locale: str | None = None, to: str = "+15558675310"
) -> Outbound:
    if isinstance(content, str):
        content = {"type": "text", "text": content}
    return Outbound("msg_1", to, content, locale=locale)


async def test_a_call_is_the_fixtures_form_with_basic_auth(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    connector = caller(
        twilio,
        http,
        say_voice="alice",
        status_callback_url="https://example.com/webhooks/twilio/call-status",
    )
    result = await connector.send(out("Hello. Your verification code is 1 2 3 4.", "en-US"))
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form == form_of(fixture("twilio.create_call.request.form"))
    # The same <Say> as Twilio's own TwiML sample, without the XML declaration.
    sample = fixture("twilio.voice_say.twiml.xml").decode().strip()
    assert sample.endswith(request.one("Twiml") or "")
    assert result.provider_message_id == request.sid and result.status == "sent"
    assert result.provider_message_id.startswith("CA")


async def test_the_text_is_escaped_and_spoken_in_the_contacts_language(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    text = 'Votre commande <#12> "A&B" est prête'
    await caller(twilio, http).send(out(text, locale="fr_CA"))
    [request] = twilio.calls  # the fake parsed it as XML
    assert request.one("Twiml") == (
        '<Response><Say language="fr-CA">'
        'Votre commande &lt;#12&gt; "A&amp;B" est prête</Say></Response>'
    )
    say = ET.fromstring(request.one("Twiml") or "")[0]
    assert say.text == text
    assert "StatusCallback" not in request.form  # none configured: none asked for


async def test_a_contact_without_a_locale_hears_the_channels_language(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    await caller(twilio, http, language="de-DE", say_voice="Polly.Marlene").send(out("Hallo"))
    assert twilio.calls[0].one("Twiml") == (
        '<Response><Say voice="Polly.Marlene" language="de-DE">Hallo</Say></Response>'
    )


async def test_other_content_is_spoken(twilio: FakeTwilio, http: httpx.AsyncClient) -> None:
    connector = caller(twilio, http)
    buttons = {
        "type": "buttons",
        "text": "Is the delivery time fine?",
        "buttons": [{"id": "y", "title": "yes"}, {"id": "n", "title": "another day"}],
    }
    await connector.send(out(buttons))
    await connector.send(
        out(
            {
                "type": "location",
                "latitude": 1.5,
                "longitude": 2.0,
                "name": "Acme",
                "address": "1 Main St",
            }
        )
    )
    await connector.send(
        out(
            {
                "type": "media",
                "url": "https://cdn.acme.com/hello.mp3",
                "caption": "A message for you",
            }
        )
    )
    spoken = [r.one("Twiml") for r in twilio.calls]
    assert spoken == [
        (
            '<Response><Say language="en-US">Is the delivery time fine? '
            "Press 1 for yes. Press 2 for another day.</Say></Response>"
        ),
        '<Response><Say language="en-US">Acme, 1 Main St</Say></Response>',
        (
            '<Response><Say language="en-US">A message for you</Say>'
            "<Play>https://cdn.acme.com/hello.mp3</Play></Response>"
        ),
    ]


@pytest.mark.parametrize(
    "content",
    [
        {"type": "template", "name": "order_shipped"},
        {
            "type": "media",
            "url": "https://cdn.acme.com/receipt.pdf",
            "mime_type": "application/pdf",
        },
        {"type": "text", "text": "x" * 4000},
    ],
)
async def test_what_cannot_be_spoken_is_given_up_before_calling(
    twilio: FakeTwilio, http: httpx.AsyncClient, content: dict[str, Any]
) -> None:
    with pytest.raises(GiveUp) as exc:
        await caller(twilio, http).send(out(content))
    assert exc.value.code in ("unsupported_content", "twiml_too_long")
    assert twilio.requests == []


@pytest.mark.parametrize(
    ("to", "answer", "code", "status"),
    [
        ("+1555", None, "21211", 400),  # the fake refuses it as Twilio does
        (
            "+15558675310",
            Fail(400, 21215, "Geo Permission configuration is not permitting call"),
            "21215",
            400,
        ),
        ("+15558675310", Fail(401, 20003, "Authenticate"), "20003", 401),
    ],
)
async def test_a_permanent_error_gives_up_with_twilios_code_and_message(
    twilio: FakeTwilio,
    http: httpx.AsyncClient,
    to: str,
    answer: Fail | None,
    code: str,
    status: int,
) -> None:
    if answer is not None:
        twilio.respond(answer)
    with pytest.raises(GiveUp) as exc:
        await caller(twilio, http).send(out("hi", to=to))
    assert (exc.value.code, exc.value.status_code) == (code, status)
    if answer is None:
        assert exc.value.message == "The 'To' number +1555 is not a valid phone number."


async def test_wrong_credentials_give_up_with_20003(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    with pytest.raises(GiveUp) as exc:
        await caller(twilio, http, auth_token="wrong").send(out("hi"))
    assert (exc.value.code, exc.value.status_code, exc.value.message) == (
        "20003",
        401,
        "Authenticate",
    )


async def test_a_429_a_5xx_a_timeout_and_a_refused_connection_are_retried(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    twilio.respond(
        Fail(429, 20429, "Too Many Requests", retry_after=3), Fail(500, 20500, "Internal"), HANG
    )
    connector = caller(twilio, http)
    with pytest.raises(RetryLater) as exc:
        await connector.send(out("hi"))
    assert (exc.value.code, exc.value.status_code, exc.value.retry_after) == ("20429", 429, 3.0)
    with pytest.raises(RetryLater) as exc:
        await connector.send(out("hi"))
    assert (exc.value.code, exc.value.status_code) == ("20500", 500)
    with pytest.raises(RetryLater) as exc:
        await connector.send(out("hi"))
    assert exc.value.code == "timeout"
    await twilio.stop()
    with pytest.raises(RetryLater) as exc:
        await connector.send(out("hi"))
    assert exc.value.code == "connection_error"


# -- end to end through the app, on both databases -----------------------------------


@pytest.fixture
def settings(db_url: str) -> Settings:
    return conftest.test_settings(db_url, max_delivery_attempts=3)


WEBHOOK_BASE = "http://parley.test/webhooks"


async def voice_channel(api: httpx.AsyncClient, twilio: FakeTwilio, **config: Any) -> str:
    body = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": PARLEY_NUMBER,
        "api_base_url": twilio.url,
        **config,
    }
    r = await api.post("/v1/channels", json={"type": "voice", "name": "Phone", "config": body})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def twilio_posts(
    client: httpx.AsyncClient,
    channel_id: str,
    body: bytes,
    query: str = "",
    token: str = AUTH_TOKEN,
) -> httpx.Response:
    # The URL Twilio signs is the one it posts to: the test app's, or a live server's.
    url = f"{str(client.base_url).rstrip('/')}/webhooks/{channel_id}{query}"
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": compute_signature(token, url, form_of(body)),
    }
    return await client.post(url, content=body, headers=headers)


async def contact_with_locale(api: httpx.AsyncClient, locale: str) -> str:
    r = await api.post(
        "/v1/contacts",
        json={
            "name": "Émile",
            "locale": locale,
            "identities": [{"channel_type": "voice", "address": CUSTOMER}],
        },
    )
    assert r.status_code == 201, r.text
    contact_id: str = r.json()["id"]
    return contact_id


async def call(api: httpx.AsyncClient, to: dict[str, str], text: str = "Votre colis arrive") -> str:
    r = await api.post(
        "/v1/messages",
        json={"channel": "voice", "to": to, "content": {"type": "text", "text": text}},
    )
    assert r.status_code == 202, r.text
    message_id: str = r.json()["messages"][0]["message_id"]
    return message_id


async def test_a_call_speaks_in_the_contacts_language_and_moves_through_every_status(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(
        api, twilio, status_callback_url="https://parley.example.com/webhooks/x"
    )
    contact_id = await contact_with_locale(api, "fr-FR")
    message_id = await call(api, {"contact_id": contact_id}, "Votre colis <A&B> arrive")
    msg = await until_status(api, runtime, message_id, "sent")
    [placed] = twilio.calls
    assert placed.one("To") == CUSTOMER and placed.one("From") == PARLEY_NUMBER
    assert placed.one("Twiml") == (
        '<Response><Say language="fr-FR">Votre colis &lt;A&amp;B&gt; arrive</Say></Response>'
    )
    assert placed.form["StatusCallback"] == ["https://parley.example.com/webhooks/x"]
    assert placed.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert msg["delivery"]["provider_message_id"] == placed.sid

    assert placed.sid is not None
    for status in ("initiated", "ringing", "in-progress", "completed", "ringing"):
        r = await twilio_posts(client, ch, status_form(placed.sid, status))
        assert r.status_code == 200, r.text
        assert list(twiml(r.content)) == []
    msg = (await api.get(f"/v1/messages/{message_id}")).json()
    # initiated/ringing repeat "sent"; answered is "delivered"; nothing moves back.
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "delivered"]
    assert msg["status"] == "delivered"


@pytest.mark.parametrize(
    ("call_status", "reason"),
    [
        ("busy", "The line was busy"),
        ("no-answer", "Nobody answered the call"),
        ("canceled", "The call was canceled before it was answered"),
        ("failed", "Twilio could not place the call"),
    ],
)
async def test_a_call_nobody_took_fails_the_message_with_the_reason(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    twilio: FakeTwilio,
    call_status: str,
    reason: str,
) -> None:
    ch = await voice_channel(api, twilio)
    message_id = await call(api, {"address": CUSTOMER})
    await until_status(api, runtime, message_id, "sent")
    [placed] = twilio.calls
    assert placed.sid is not None
    for status in ("ringing", call_status):
        assert (await twilio_posts(client, ch, status_form(placed.sid, status))).status_code == 200
    msg = (await api.get(f"/v1/messages/{message_id}")).json()
    assert msg["status"] == "failed"
    detail = msg["status_history"][-1]["detail"]
    assert (detail["code"], detail["message"]) == (call_status, reason)


async def test_a_contact_without_a_locale_is_called_in_the_channels_language(
    api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    await voice_channel(api, twilio, language="en-GB")
    await until_status(api, runtime, await call(api, {"address": CUSTOMER}, "Hello"), "sent")
    assert twilio.calls[0].one("Twiml") == '<Response><Say language="en-GB">Hello</Say></Response>'


async def test_a_5xx_is_retried_then_the_call_is_placed(
    api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    await voice_channel(api, twilio)
    twilio.respond(
        Fail(500, 20500, "Internal Server Error"), Fail(429, 20429, "Too Many Requests", 0)
    )
    msg = await until_status(api, runtime, await call(api, {"address": CUSTOMER}), "sent")
    assert [r.status for r in twilio.requests] == [500, 429, 201]
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["20500", "20429", None]


async def test_after_the_last_attempt_the_message_fails_with_every_attempt_recorded(
    api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    await voice_channel(api, twilio)
    twilio.respond(*[Fail(503, 20500, "Service Unavailable")] * 3)
    msg = await until_status(api, runtime, await call(api, {"address": CUSTOMER}), "failed")
    assert len(twilio.requests) == 3 and twilio.calls == []
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["20500"] * 3
    assert msg["status_history"][-1]["detail"]["code"] == "20500"


async def test_a_permanent_error_fails_the_message_at_once(
    api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    await voice_channel(api, twilio)
    twilio.respond(Fail(400, 21215, "Geo Permission configuration is not permitting call"))
    msg = await until_status(api, runtime, await call(api, {"address": CUSTOMER}), "failed")
    assert len(twilio.requests) == 1
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["21215"]
    detail = msg["status_history"][-1]["detail"]
    assert (detail["code"], detail["message"]) == (
        "21215",
        "Geo Permission configuration is not permitting call",
    )


async def test_a_call_in_is_answered_with_the_greeting_and_opens_the_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio, greeting="Welcome to Acme. Press 1 for orders.")
    r = await twilio_posts(client, ch, call_form())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    root = twiml(r.content)
    [gather] = root.iter("Gather")
    assert gather.get("action") == f"{WEBHOOK_BASE}/{ch}?gather=1"
    assert (gather.get("input"), gather.get("numDigits"), gather.get("method")) == (
        "dtmf",
        "1",
        "POST",
    )
    assert [s.text for s in gather] == ["Welcome to Acme. Press 1 for orders."]

    conv = await only_conversation(api, ch)
    [first] = await messages_in(api, conv["id"])
    assert first["direction"] == "inbound"
    assert first["content"] == {
        "type": "text",
        "text": "Incoming call",
        "data": {"call_sid": CALL_SID},
    }
    contact = (await api.get(f"/v1/contacts/{conv['contact_id']}")).json()
    assert contact["phone"] == CUSTOMER


async def test_keys_are_stored_as_messages_and_as_events_on_the_contact(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio)
    assert (await twilio_posts(client, ch, call_form())).status_code == 200
    pressed = call_form(CallStatus="in-progress", Digits="1")
    r = await twilio_posts(client, ch, pressed, "?gather=1")
    assert r.status_code == 200, r.text
    [gather] = twiml(r.content).iter("Gather")
    assert gather.get("action") == f"{WEBHOOK_BASE}/{ch}?gather=2"
    # The same key again, at the next step, is a new press.
    assert (await twilio_posts(client, ch, pressed, "?gather=2")).status_code == 200

    conv = await only_conversation(api, ch)
    history = await messages_in(api, conv["id"])
    assert [(m["content"]["text"], m["content"].get("data")) for m in history] == [
        ("Incoming call", {"call_sid": CALL_SID}),
        ("1", {"digits": "1", "call_sid": CALL_SID}),
        ("1", {"digits": "1", "call_sid": CALL_SID}),
    ]
    events = (await api.get(f"/v1/events?name=voice.digits&contact_id={conv['contact_id']}")).json()
    assert [
        (e["name"], e["contact_id"], e["payload"])
        for e in sorted(events["data"], key=lambda e: e["id"])
    ] == [
        (
            "voice.digits",
            conv["contact_id"],
            {"digits": "1", "call_sid": CALL_SID, "channel_id": ch, "message_id": m["id"]},
        )
        for m in history[1:]
    ]


async def test_repeated_callbacks_are_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio)
    pressed = call_form(CallStatus="in-progress", Digits="7")
    for _ in range(2):
        assert (await twilio_posts(client, ch, call_form())).status_code == 200
        r = await twilio_posts(client, ch, pressed, "?gather=1")
        assert r.status_code == 200
        # Each repeat is answered as the first was.
        [gather] = twiml(r.content).iter("Gather")
        assert gather.get("action") == f"{WEBHOOK_BASE}/{ch}?gather=2"
    conv = await only_conversation(api, ch)
    assert [m["content"]["text"] for m in await messages_in(api, conv["id"])] == [
        "Incoming call",
        "7",
    ]
    events = (await api.get("/v1/events?name=voice.digits")).json()["data"]
    assert [e["payload"]["digits"] for e in events] == ["7"]


async def test_a_bad_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio)
    r = await twilio_posts(client, ch, call_form(), token="not-the-token")
    assert r.status_code == 401 and r.json()["error"]["code"] == "webhook_rejected"
    r = await twilio_posts(
        client, ch, call_form(CallStatus="in-progress", Digits="1"), "?gather=1", token="nope"
    )
    assert r.status_code == 401
    unsigned = await client.post(
        f"/webhooks/{ch}",
        content=call_form(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    assert (await api.get(f"/v1/conversations?channel={ch}")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []
    assert (await api.get("/v1/events")).json()["data"] == []


async def test_a_hidden_number_hears_the_greeting_and_nothing_is_stored(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio)
    r = await twilio_posts(client, ch, call_form(From="+266696687", Caller="+266696687"))
    assert r.status_code == 200, r.text
    assert [v.tag for v in twiml(r.content)] == ["Gather", "Say", "Hangup"]
    assert (await api.get(f"/v1/conversations?channel={ch}")).json()["data"] == []


async def test_an_agents_reply_in_a_call_conversation_calls_the_caller_back(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, twilio: FakeTwilio
) -> None:
    ch = await voice_channel(api, twilio)
    assert (await twilio_posts(client, ch, call_form())).status_code == 200
    conv = await only_conversation(api, ch)
    await until_status(
        api, runtime, await agent_reply(api, conv["id"], "We will call you back"), "sent"
    )
    [placed] = twilio.calls
    assert placed.one("To") == CUSTOMER
    assert placed.one("Twiml") == (
        '<Response><Say language="en-US">We will call you back</Say></Response>'
    )


async def test_an_agents_reply_on_the_agent_socket_calls_the_caller_back_and_a_note_does_not(
    live_server: LiveServer, twilio: FakeTwilio
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    ch = await voice_channel(api, twilio)
    r = await twilio_posts(api, ch, call_form())  # signed over the live server's URL
    assert r.status_code == 200, r.text
    [gather] = twiml(r.content).iter("Gather")
    assert gather.get("action") == f"{live_server.url}/webhooks/{ch}?gather=1"
    conv = await only_conversation(api, ch)

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "Your parcel is here")
    msg = await until_status(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [placed] = twilio.requests
    assert placed.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert (placed.one("To"), placed.one("From")) == (CUSTOMER, PARLEY_NUMBER)
    assert placed.one("Twiml") == (
        '<Response><Say language="en-US">Your parcel is here</Say></Response>'
    )
    assert msg["delivery"]["provider_message_id"] == placed.sid
