"""Twilio SMS/MMS (connectors/twilio_sms.py): the signature scheme against Twilio's own
vector and every fixture's, parsing of every fixture, sending to a fake Twilio
(tests/fakes/twilio_api.py), and the whole path through the real app on both databases."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from connectors.base import Inbound, Outbound, StatusUpdate, WebhookRejected, WebhookRequest
from connectors.errors import GiveUp, RetryLater
from connectors.twilio_sms import TwilioSms, compute_signature, validate
from tests.conftest import LiveServer
from tests.connectors.e2e import note_stayed_inside, socket_reply_and_note, until_status
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, HANG, Fail, FakeTwilio

FIXTURES = Path("/work/shared/fixtures/providers")
VECTORS = json.loads((FIXTURES / "twilio.signature_vectors.json").read_text())
OFFICIAL = VECTORS["official_vector"]
SMS_VECTORS = [v for v in VECTORS["fixtures"] if "call_status" not in v["file"]]
FIXTURE_TOKEN = SMS_VECTORS[0]["auth_token"]
T = TypeVar("T")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def twilio_signature(token: str, url: str, body: bytes) -> str:
    """Written out as Twilio's docs describe it: URL, then each sorted name + value."""
    payload = url + "".join(k + v for k, v in sorted(parse_qsl(body.decode())))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def connector(token: str = FIXTURE_TOKEN, **config: Any) -> TwilioSms:
    base = {"account_sid": ACCOUNT_SID, "auth_token": token, "from_number": "+15017122661"}
    return TwilioSms({**base, **config}, httpx.AsyncClient())


def posted(url: str, body: bytes, signature: str | None, **headers: str) -> WebhookRequest:
    all_headers = {"content-type": "application/x-www-form-urlencoded", **headers}
    if signature is not None:
        all_headers["x-twilio-signature"] = signature
    return WebhookRequest("POST", url, all_headers, {}, body)


# -- the signature --------------------------------------------------------------


def test_the_official_vector_signs_and_validates() -> None:
    params = {k: [v] for k, v in OFFICIAL["params"].items()}
    token, url = OFFICIAL["auth_token"], OFFICIAL["url"]
    assert compute_signature(token, url, params) == OFFICIAL["expected_signature"]
    assert validate(token, url, params, OFFICIAL["expected_signature"])
    assert not validate(token, url, {**params, "Digits": ["1235"]}, OFFICIAL["expected_signature"])
    assert not validate("54321", url, params, OFFICIAL["expected_signature"])


def test_the_url_is_tried_with_and_without_its_default_port() -> None:
    params = {k: [v] for k, v in OFFICIAL["params"].items()}
    token = OFFICIAL["auth_token"]
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert (
        compute_signature(token, with_port, params)
        == OFFICIAL["expected_signature_if_url_has_explicit_443"]
    )
    # Signed without the port, received with it, and the other way round.
    assert validate(token, with_port, params, OFFICIAL["expected_signature"])
    assert validate(
        token, OFFICIAL["url"], params, OFFICIAL["expected_signature_if_url_has_explicit_443"]
    )


def test_a_repeated_parameter_signs_all_its_values_sorted() -> None:
    token, url = "12345", "https://mycompany.com/myapp.php"
    expected = base64.b64encode(
        hmac.new(token.encode(), (url + "MediaUrlaMediaUrlbTo+1").encode(), hashlib.sha1).digest()
    ).decode()
    assert compute_signature(token, url, {"To": ["+1"], "MediaUrl": ["b", "a", "b"]}) == expected


def test_a_json_bodied_webhook_is_checked_by_its_body_hash() -> None:
    example = OFFICIAL["json_body_example"]
    sms = connector(OFFICIAL["auth_token"])
    body = example["body"].encode()
    sms.verify(posted(example["url_with_bodySHA256"], body, example["expected_signature"]))
    with pytest.raises(WebhookRejected):
        sms.verify(
            posted(example["url_with_bodySHA256"], body + b" ", example["expected_signature"])
        )


@pytest.mark.parametrize("vector", SMS_VECTORS, ids=lambda v: v["file"])
def test_every_fixture_verifies_byte_for_byte(vector: dict[str, str]) -> None:
    body = fixture(vector["file"])
    connector(vector["auth_token"]).verify(
        posted(vector["url"], body, vector["expected_signature"])
    )


@pytest.mark.parametrize("vector", SMS_VECTORS, ids=lambda v: v["file"])
def test_a_tampered_fixture_is_rejected(vector: dict[str, str]) -> None:
    body = fixture(vector["file"]).replace(b"To=%2B1", b"To=%2B4")
    assert body != fixture(vector["file"])
    with pytest.raises(WebhookRejected) as exc:
        connector(vector["auth_token"]).verify(
            posted(vector["url"], body, vector["expected_signature"])
        )
    assert exc.value.status == 401


@pytest.mark.parametrize("vector", SMS_VECTORS, ids=lambda v: v["file"])
def test_a_fixture_with_no_signature_or_another_token_or_url_is_rejected(
    vector: dict[str, str],
) -> None:
    body = fixture(vector["file"])
    with pytest.raises(WebhookRejected):
        connector(vector["auth_token"]).verify(posted(vector["url"], body, None))
    with pytest.raises(WebhookRejected):
        connector("another-token").verify(posted(vector["url"], body, vector["expected_signature"]))
    with pytest.raises(WebhookRejected):
        connector(vector["auth_token"]).verify(
            posted(vector["url"] + "/other", body, vector["expected_signature"])
        )


def test_behind_a_proxy_the_forwarded_scheme_and_host_give_the_signed_url() -> None:
    [vector] = [v for v in SMS_VECTORS if v["file"] == "twilio.inbound_sms.form"]
    body = fixture(vector["file"])
    # Twilio posted to https://example.com/webhooks/twilio/sms; the proxy passed it on.
    seen = posted("http://10.0.0.7:8000/webhooks/twilio/sms", body, vector["expected_signature"])
    with pytest.raises(WebhookRejected):
        connector().verify(seen)
    proxied = posted(
        "http://10.0.0.7:8000/webhooks/twilio/sms",
        body,
        vector["expected_signature"],
        **{"x-forwarded-proto": "https", "x-forwarded-host": "example.com"},
    )
    connector().verify(proxied)
    # The forwarded host does not let a request signed for another path through.
    elsewhere = posted(
        "http://10.0.0.7:8000/webhooks/other",
        body,
        vector["expected_signature"],
        **{"x-forwarded-proto": "https", "x-forwarded-host": "example.com"},
    )
    with pytest.raises(WebhookRejected):
        connector().verify(elsewhere)


def test_the_configured_public_url_is_the_signed_url() -> None:
    [vector] = [v for v in SMS_VECTORS if v["file"] == "twilio.status_callback_delivered.form"]
    body = fixture(vector["file"])
    seen = posted("http://127.0.0.1:8000/webhooks/ch_1", body, vector["expected_signature"])
    connector(status_callback_url=vector["url"]).verify(seen)


# -- parsing ----------------------------------------------------------------------


def parse(body: bytes) -> list[Any]:
    return list(connector().parse(posted("https://example.com/x", body, None)))


def test_an_inbound_sms_is_a_text_message() -> None:
    assert parse(fixture("twilio.inbound_sms.form")) == [
        Inbound(
            "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "+15558675310",
            {"type": "text", "text": "Hello, is my order ready?"},
        )
    ]


MMS = urlencode(
    {
        "ToCountry": "US",
        "MediaContentType0": "image/jpeg",
        "MediaContentType1": "application/pdf",
        "SmsMessageSid": "MMcccccccccccccccccccccccccccccccc",
        "NumMedia": "2",
        "SmsSid": "MMcccccccccccccccccccccccccccccccc",
        "SmsStatus": "received",
        "Body": "Here is the receipt",
        "To": "+15017122661",
        "NumSegments": "1",
        "MessageSid": "MMcccccccccccccccccccccccccccccccc",
        "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "From": "+15558675310",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/MMcccccccccccccccccccccccccccccccc/Media/ME00000000000000000000000000000000",
        "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/MMcccccccccccccccccccccccccccccccc/Media/ME11111111111111111111111111111111",
        "ApiVersion": "2010-04-01",
    }
).encode()


def test_an_inbound_mms_keeps_each_media_url_the_text_as_the_first_caption() -> None:
    first, second = parse(MMS)
    sid = "MMcccccccccccccccccccccccccccccccc"
    assert first == Inbound(
        sid,
        "+15558675310",
        {
            "type": "media",
            "url": f"https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/{sid}/Media/ME00000000000000000000000000000000",
            "mime_type": "image/jpeg",
            "caption": "Here is the receipt",
        },
    )
    assert second.provider_message_id == f"{sid}/media/1"
    assert second.content["mime_type"] == "application/pdf"
    assert "caption" not in second.content


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "twilio.status_callback_sent.form",
            StatusUpdate("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sent"),
        ),
        (
            "twilio.status_callback_delivered.form",
            StatusUpdate("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "delivered"),
        ),
        (
            "twilio.status_callback_undelivered.form",
            StatusUpdate(
                "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "failed",
                error_code="30003",
                error_message="Unreachable destination handset",
            ),
        ),
    ],
)
def test_a_status_callback_is_a_status_update(name: str, expected: StatusUpdate) -> None:
    assert parse(fixture(name)) == [expected]


@pytest.mark.parametrize("status", ["queued", "accepted", "sending", "scheduled"])
def test_a_status_parley_already_knows_is_no_news(status: str) -> None:
    body = fixture("twilio.status_callback_sent.form").replace(
        b"MessageStatus=sent", f"MessageStatus={status}".encode()
    )
    assert parse(body) == []


def test_a_failed_message_without_an_error_code_still_says_why() -> None:
    body = fixture("twilio.status_callback_sent.form").replace(
        b"MessageStatus=sent", b"MessageStatus=failed"
    )
    [update] = parse(body)
    assert (
        update.status == "failed" and update.error_code is None and "failed" in update.error_message
    )


def test_a_voice_callback_holds_no_message() -> None:
    assert parse(fixture("twilio.call_status_callback_completed.form")) == []


# -- sending to the fake Twilio --------------------------------------------------------


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def sender(twilio: FakeTwilio, http: httpx.AsyncClient, **config: Any) -> TwilioSms:
    base = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15017122661",
        "api_base_url": twilio.url,
    }
    return TwilioSms({k: v for k, v in {**base, **config}.items() if v is not None}, http)


def out(content: dict[str, Any], to: str = "+15558675310") -> Outbound:
    return Outbound("msg_1", to, content)


async def test_a_text_is_the_fixtures_form_with_basic_auth(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    sms = sender(twilio, http, status_callback_url="https://example.com/webhooks/twilio/status")
    result = await sms.send(
        out({"type": "text", "text": "Hi there! Your order #12345 has shipped."})
    )
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    expected: dict[str, list[str]] = {}
    for k, v in parse_qsl(fixture("twilio.send_sms.request.form").decode()):
        expected.setdefault(k, []).append(v)
    assert request.form == expected
    assert result.provider_message_id == request.sid and result.status == "sent"


async def test_media_goes_as_media_url_with_its_caption(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    sms = sender(twilio, http, from_number=None, messaging_service_sid="MG" + "0c" * 16)
    content = {
        "type": "media",
        "url": "https://acme.com/r.jpg",
        "mime_type": "image/jpeg",
        "caption": "receipt",
    }
    result = await sms.send(out(content))
    [request] = twilio.requests
    assert request.form == {
        "To": ["+15558675310"],
        "MessagingServiceSid": ["MG" + "0c" * 16],
        "Body": ["receipt"],
        "MediaUrl": ["https://acme.com/r.jpg"],
    }
    assert result.provider_message_id.startswith("MM")


async def test_buttons_and_a_location_go_as_text(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    sms = sender(twilio, http)
    await sms.send(
        out(
            {
                "type": "buttons",
                "text": "Pick",
                "buttons": [{"id": "a", "title": "Yes"}, {"id": "b", "title": "No"}],
            }
        )
    )
    await sms.send(out({"type": "location", "latitude": 1.5, "longitude": -2.25, "name": "Shop"}))
    assert [r.one("Body") for r in twilio.requests] == [
        "Pick\n1. Yes\n2. No",
        "Shop\nhttps://maps.google.com/?q=1.5,-2.25",
    ]


async def test_a_content_template_goes_as_content_sid_and_variables(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    sms = sender(twilio, http)
    sid = "HX" + "ab" * 16
    await sms.send(out({"type": "template", "name": sid, "parameters": {"1": "Ann"}}))
    [request] = twilio.requests
    assert (request.one("ContentSid"), request.one("ContentVariables")) == (sid, '{"1":"Ann"}')
    with pytest.raises(GiveUp) as exc:
        await sms.send(out({"type": "template", "name": "order_shipped"}))
    assert exc.value.code == "unsupported_content" and len(twilio.requests) == 1


@pytest.mark.parametrize(
    ("to", "answer", "code"),
    [
        ("+1555", None, "21211"),  # the fake refuses it as Twilio does
        ("+15558675310", Fail(400, 21610, "Attempt to send to unsubscribed recipient"), "21610"),
        ("+15558675310", Fail(400, 21614, "'To' number is not a valid mobile number"), "21614"),
    ],
)
async def test_a_permanent_error_gives_up_with_twilios_code_and_message(
    twilio: FakeTwilio, http: httpx.AsyncClient, to: str, answer: Fail | None, code: str
) -> None:
    if answer is not None:
        twilio.respond(answer)
    with pytest.raises(GiveUp) as exc:
        await sender(twilio, http).send(out({"type": "text", "text": "hi"}, to=to))
    assert (exc.value.code, exc.value.status_code) == (code, 400)
    expected = (
        answer.message if answer else json.loads(fixture("twilio.error_response.json"))["message"]
    )
    assert exc.value.message == expected


async def test_wrong_credentials_give_up_with_20003(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    with pytest.raises(GiveUp) as exc:
        await sender(twilio, http, auth_token="wrong").send(out({"type": "text", "text": "hi"}))
    assert (exc.value.code, exc.value.status_code, exc.value.message) == (
        "20003",
        401,
        "Authenticate",
    )


async def test_a_429_is_retried_after_its_retry_after(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    twilio.respond(Fail(429, 20429, "Too Many Requests", retry_after=3))
    with pytest.raises(RetryLater) as exc:
        await sender(twilio, http).send(out({"type": "text", "text": "hi"}))
    assert (exc.value.code, exc.value.status_code, exc.value.retry_after) == ("20429", 429, 3.0)


async def test_a_5xx_a_timeout_and_a_refused_connection_are_retried(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    twilio.respond(Fail(503, 20500, "Service Unavailable"), HANG)
    sms = sender(twilio, http)
    with pytest.raises(RetryLater) as exc:
        await sms.send(out({"type": "text", "text": "hi"}))
    assert (exc.value.code, exc.value.status_code) == ("20500", 503)
    with pytest.raises(RetryLater) as exc:
        await sms.send(out({"type": "text", "text": "hi"}))
    assert exc.value.code == "timeout"
    await twilio.stop()
    with pytest.raises(RetryLater) as exc:
        await sms.send(out({"type": "text", "text": "hi"}))
    assert exc.value.code == "connection_error"


# -- end to end through the app, on both databases -----------------------------------


# The end-to-end tests below run the app on the production registry (tests/conftest.py).


async def eventually(
    read: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 10
) -> T:
    async with asyncio.timeout(timeout):
        while not check(value := await read()):
            await asyncio.sleep(0.02)
    return value


async def sms_channel(api: httpx.AsyncClient, twilio: FakeTwilio, **config: Any) -> str:
    body = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15017122661",
        "api_base_url": twilio.url,
        **config,
    }
    r = await api.post("/v1/channels", json={"type": "sms", "name": "Twilio", "config": body})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def twilio_posts(
    client: httpx.AsyncClient, channel_id: str, body: bytes, signature: str | None = None
) -> httpx.Response:
    url = f"{str(client.base_url).rstrip('/')}/webhooks/{channel_id}"  # the URL Twilio signs
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature or twilio_signature(AUTH_TOKEN, url, body),
    }
    return await client.post(url, content=body, headers=headers)


# The fixtures' customer, +1 555-867-5310, is a placeholder Parley's phone rule refuses.
CUSTOMER = "+14155550123"
INBOUND_SMS = fixture("twilio.inbound_sms.form").replace(
    b"From=%2B15558675310", b"From=%2B14155550123"
)
INBOUND_MMS = MMS.replace(b"From=%2B15558675310", b"From=%2B14155550123")
assert INBOUND_SMS != fixture("twilio.inbound_sms.form") and INBOUND_MMS != MMS


def status_form(sid: str, status: str, error_code: str | None = None) -> bytes:
    fields = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+15017122661",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": CUSTOMER,
    }
    if error_code:
        fields["ErrorCode"] = error_code
    return urlencode(fields).encode()


async def message(api: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/messages/{message_id}")).json()
    return body


async def test_an_sms_in_a_reply_out_and_statuses_forward_never_back(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await sms_channel(
        api, twilio, status_callback_url="https://parley.example.com/webhooks/sms"
    )
    r = await twilio_posts(client, ch, INBOUND_SMS)
    assert r.status_code == 200, r.text
    # Twilio reads the answer as TwiML: an empty <Response> sends nothing back by itself.
    assert r.headers["content-type"].startswith("text/xml")
    assert r.content.endswith(b"<Response></Response>")
    [conv] = (await api.get(f"/v1/conversations?channel={ch}")).json()["data"]
    [first] = (await api.get(f"/v1/conversations/{conv['id']}/messages")).json()["data"]
    assert first["content"] == {"type": "text", "text": "Hello, is my order ready?"}

    reply = await api.post(
        f"/v1/conversations/{conv['id']}/messages",
        json={"content": {"type": "text", "text": "Yes, it shipped"}},
    )
    assert reply.status_code == 201, reply.text
    await twilio.wait_for(lambda t: len(t.accepted) == 1)
    [sent] = twilio.accepted
    assert sent.form == {
        "To": [CUSTOMER],
        "From": ["+15017122661"],
        "Body": ["Yes, it shipped"],
        "StatusCallback": ["https://parley.example.com/webhooks/sms"],
    }
    msg = await eventually(
        lambda: message(api, reply.json()["id"]), lambda m: m["status"] == "sent"
    )
    assert msg["delivery"]["provider_message_id"] == sent.sid

    assert sent.sid is not None
    for status in ("delivered", "sent"):  # a late "sent" never moves it back
        assert (await twilio_posts(client, ch, status_form(sent.sid, status))).status_code == 200
    msg = await message(api, reply.json()["id"])
    assert msg["status"] == "delivered"
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "delivered"]


async def test_an_undelivered_callback_fails_the_message_with_twilios_code(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await sms_channel(api, twilio)
    r = await api.post(
        "/v1/messages",
        json={
            "channel": "sms",
            "to": {"address": CUSTOMER},
            "content": {"type": "text", "text": "x"},
        },
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["messages"][0]["message_id"]
    await eventually(lambda: message(api, message_id), lambda m: m["status"] == "sent")
    [sent] = twilio.accepted
    assert sent.sid is not None
    assert (
        await twilio_posts(client, ch, status_form(sent.sid, "undelivered", "30003"))
    ).status_code == 200
    msg = await message(api, message_id)
    assert msg["status"] == "failed"
    assert msg["status_history"][-1]["detail"]["code"] == "30003"


async def test_an_mms_is_stored_with_its_media(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await sms_channel(api, twilio)
    assert (await twilio_posts(client, ch, INBOUND_MMS)).status_code == 200
    [conv] = (await api.get(f"/v1/conversations?channel={ch}")).json()["data"]
    history = (await api.get(f"/v1/conversations/{conv['id']}/messages")).json()["data"]
    assert [
        (m["content"]["type"], m["content"].get("mime_type"), m["content"].get("caption"))
        for m in history
    ] == [
        ("media", "image/jpeg", "Here is the receipt"),
        ("media", "application/pdf", None),
    ]


async def test_a_repeated_callback_is_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await sms_channel(api, twilio)
    for _ in range(2):
        assert (await twilio_posts(client, ch, INBOUND_SMS)).status_code == 200
    [conv] = (await api.get(f"/v1/conversations?channel={ch}")).json()["data"]
    history = (await api.get(f"/v1/conversations/{conv['id']}/messages")).json()["data"]
    assert [m["content"]["text"] for m in history] == ["Hello, is my order ready?"]


async def test_a_bad_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    ch = await sms_channel(api, twilio)
    body = INBOUND_SMS
    wrong = twilio_signature("not-the-token", f"http://parley.test/webhooks/{ch}", body)
    r = await twilio_posts(client, ch, body, signature=wrong)
    assert r.status_code == 401 and r.json()["error"]["code"] == "webhook_rejected"
    unsigned = await client.post(
        f"/webhooks/{ch}",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    assert (await api.get(f"/v1/conversations?channel={ch}")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_a_5xx_is_retried_then_sent(api: httpx.AsyncClient, twilio: FakeTwilio) -> None:
    await sms_channel(api, twilio)
    twilio.respond(Fail(500, 20500, "Internal Server Error"))
    r = await api.post(
        "/v1/messages",
        json={
            "channel": "sms",
            "to": {"address": CUSTOMER},
            "content": {"type": "text", "text": "x"},
        },
    )
    message_id = r.json()["messages"][0]["message_id"]
    msg = await eventually(lambda: message(api, message_id), lambda m: m["status"] == "sent")
    assert [r.status for r in twilio.requests] == [500, 201]
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["20500", None]


async def test_a_permanent_error_fails_the_message_with_twilios_code(
    api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    await sms_channel(api, twilio)
    twilio.respond(Fail(400, 21610, "Attempt to send to unsubscribed recipient"))
    r = await api.post(
        "/v1/messages",
        json={
            "channel": "sms",
            "to": {"address": CUSTOMER},
            "content": {"type": "text", "text": "x"},
        },
    )
    message_id = r.json()["messages"][0]["message_id"]
    msg = await eventually(lambda: message(api, message_id), lambda m: m["status"] == "failed")
    assert len(twilio.requests) == 1
    assert msg["status_history"][-1]["detail"]["code"] == "21610"
    assert msg["delivery_attempts"][-1]["error_code"] == "21610"


def test_a_get_webhook_is_signed_over_its_url_alone_and_parsed_from_its_query() -> None:
    url = "https://example.com/webhooks/twilio/sms?" + fixture("twilio.inbound_sms.form").decode()
    signature = compute_signature(FIXTURE_TOKEN, url, {})
    request = WebhookRequest("GET", url, {"x-twilio-signature": signature}, {}, b"")
    sms = connector()
    sms.verify(request)
    [inbound] = sms.parse(request)
    assert isinstance(inbound, Inbound)
    assert inbound.content == {"type": "text", "text": "Hello, is my order ready?"}
    tampered = WebhookRequest("GET", url.replace("order", "ordre"), request.headers, {}, b"")
    with pytest.raises(WebhookRejected):
        sms.verify(tampered)


async def test_an_agents_reply_on_the_agent_socket_reaches_twilio_and_a_note_does_not(
    live_server: LiveServer, twilio: FakeTwilio
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    channel = await sms_channel(api, twilio)
    assert (await twilio_posts(api, channel, INBOUND_SMS)).status_code == 200
    [conv] = (await api.get(f"/v1/conversations?channel={channel}")).json()["data"]

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "It ships today.")
    msg = await until_status(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [sent] = twilio.requests
    assert (sent.form["To"], sent.form["Body"]) == ([CUSTOMER], ["It ships today."])
    assert msg["delivery"]["provider_message_id"] == sent.sid
