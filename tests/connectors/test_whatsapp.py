"""The WhatsApp Cloud API connector: its signature check, handshake and parser against the
provider fixtures (replayed byte for byte), its requests and error mapping against a fake
Graph API, and the whole path through the real app on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.domain.channels import REGISTRY
from connectors import graph
from connectors.base import (
    Inbound,
    Outbound,
    Reaction,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.whatsapp import WhatsAppCloud
from tests.conftest import LiveServer
from tests.connectors.e2e import (
    agent_reply,
    customer_wrote,
    note_stayed_inside,
    only_conversation,
    socket_reply_and_note,
    until_status,
)
from tests.connectors.e2e import messages_on as messages_of
from tests.fakes.whatsapp_api import HANG, Accept, Fail, FakeWhatsAppApi

FIXTURES = Path("/work/shared/fixtures/providers")
VECTORS = json.loads((FIXTURES / "whatsapp.signature_vectors.json").read_text())
APP_SECRET = VECTORS["app_secret"]
VERIFY_TOKEN = "meatyhamhock"  # the token in whatsapp.verify_request.http
PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "EAAG-test-access-token-0001"
FIXTURE_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"  # the statuses'
CONFIG = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": ACCESS_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": VERIFY_TOKEN,
    "api_version": "v23.0",
}

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="provider fixtures not present")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed_header(name: str) -> str:
    [vector] = [v for v in VECTORS["fixtures"] if v["file"] == name]
    header: str = vector["X-Hub-Signature-256"]
    return header


def post_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("POST", "https://parley.test/webhooks/ch", headers, {}, body)


def connector(base: str = "https://graph.facebook.com", **config: Any) -> WhatsAppCloud:
    return WhatsAppCloud({**CONFIG, "api_base_url": base, **config}, httpx.AsyncClient())


def envelope(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
        "messages": list(messages),
    }
    if statuses is not None:
        value["statuses"] = statuses
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(body).encode()


def parsed(body: bytes) -> list[Any]:
    wa = connector()
    request = post_request(body, {graph.SIGNATURE_HEADER: graph.signature(APP_SECRET, body)})
    wa.verify(request)
    return list(wa.parse(request))


def message(type_: str, part: Any, **extra: Any) -> dict[str, Any]:
    return {
        "from": "16505551234",
        "id": f"wamid.{type_}",
        "timestamp": "1749416383",
        "type": type_,
        type_: part,
        **extra,
    }


# -- signatures and the handshake ------------------------------------------------------


def test_the_known_vector_is_reproduced() -> None:
    known = VECTORS["_known_vector"]
    assert graph.signature(known["app_secret"], known["payload"].encode()) == (
        "sha256=" + known["hex"]
    )


@pytest.mark.parametrize("vector", VECTORS["fixtures"], ids=lambda v: v["file"])
def test_every_fixture_passes_with_its_signature_and_fails_tampered_or_unsigned(
    vector: dict[str, str],
) -> None:
    wa = connector()
    body = fixture(vector["file"])
    good = {graph.SIGNATURE_HEADER: vector["X-Hub-Signature-256"]}
    wa.verify(post_request(body, good))
    tampered = body.replace(b"whatsapp_business_account", b"whatsapp_business_acc0unt")
    for request in (
        post_request(tampered, good),
        post_request(body, {}),
        post_request(body, {"x-hub-signature": vector["X-Hub-Signature"]}),  # legacy SHA-1
        post_request(body, {graph.SIGNATURE_HEADER: graph.signature("another secret", body)}),
    ):
        with pytest.raises(WebhookRejected) as refused:
            wa.verify(request)
        assert refused.value.status == 401


def verify_request(line: str | None = None) -> WebhookRequest:
    line = line or fixture("whatsapp.verify_request.http").decode().splitlines()[0]
    target = line.split()[1]
    query = httpx.URL(target).params
    return WebhookRequest("GET", target, {}, dict(query), b"")


def test_the_get_handshake_answers_the_challenge_when_the_verify_token_matches() -> None:
    wa = connector()
    request = verify_request()
    wa.verify(request)
    answer = wa.challenge(request)
    assert answer is not None and answer.status == 200
    assert answer.body == fixture("whatsapp.verify_response.txt").strip()
    assert answer.content_type == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
        "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
        "hub.mode=subscribe&hub.challenge=1158201444",
    ],
)
def test_a_handshake_with_a_wrong_token_or_mode_is_forbidden(query: str) -> None:
    with pytest.raises(WebhookRejected) as refused:
        connector().verify(verify_request(f"GET /webhooks/whatsapp?{query} HTTP/1.1"))
    assert refused.value.status == 403


def test_a_post_is_not_a_handshake() -> None:
    body = fixture("whatsapp.inbound_text.json")
    request = post_request(
        body, {graph.SIGNATURE_HEADER: signed_header("whatsapp.inbound_text.json")}
    )
    assert connector().challenge(request) is None


# -- parsing every fixture and every documented message type ---------------------------


def test_the_text_fixture_is_an_inbound_text_with_the_profile_name_and_time() -> None:
    [msg] = parsed(fixture("whatsapp.inbound_text.json"))
    assert isinstance(msg, Inbound)
    assert (
        msg.provider_message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    )
    assert msg.sender == "16505551234"
    assert msg.content == {"type": "text", "text": "Does it come in another color?"}
    assert msg.profile == {"name": "Sheena Nelson"}
    assert msg.sent_at is not None and int(msg.sent_at.timestamp()) == 1749416383


def test_the_unsupported_fixture_is_kept_as_text_naming_its_type_and_error() -> None:
    [msg] = parsed(fixture("whatsapp.inbound_unsupported.json"))
    assert isinstance(msg, Inbound) and msg.sender == "16315555555"
    assert msg.profile == {"name": "Kerry Fisher"}
    text = msg.content["text"]
    assert "'unknown'" in text and "130501" in text and "not currently supported" in text


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("whatsapp.status_sent.json", "sent"),
        ("whatsapp.status_delivered.json", "delivered"),
        ("whatsapp.status_read.json", "read"),
    ],
)
def test_status_fixtures_are_status_updates(name: str, status: str) -> None:
    [update] = parsed(fixture(name))
    assert update == StatusUpdate(FIXTURE_WAMID, status, at=update.at)  # type: ignore[arg-type]
    assert update.at is not None


def test_the_failed_status_carries_the_error_code_and_reason() -> None:
    [update] = parsed(fixture("whatsapp.status_failed.json"))
    assert isinstance(update, StatusUpdate)
    assert (update.status, update.error_code) == ("failed", "131047")
    assert update.error_message is not None
    assert update.error_message.startswith("Re-engagement message: Message failed to send")


def test_a_played_voice_message_counts_as_read_and_unknown_statuses_are_skipped() -> None:
    body = envelope(
        statuses=[
            {"id": "wamid.a", "status": "played", "timestamp": "1", "recipient_id": "1"},
            {"id": "wamid.b", "status": "deleted", "timestamp": "1", "recipient_id": "1"},
        ]
    )
    assert [(u.provider_message_id, u.status) for u in parsed(body)] == [("wamid.a", "read")]


MEDIA = [
    (
        "image",
        {"caption": "Blue?", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256"},
        {"mime_type": "image/jpeg", "caption": "Blue?"},
    ),
    (
        "audio",
        {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "id": "1003383421387257", "voice": True},
        {"mime_type": "audio/ogg; codecs=opus"},
    ),
    (
        "video",
        {"caption": "unboxing", "mime_type": "video/mp4", "sha256": "abc", "id": "1003383421387258"},
        {"mime_type": "video/mp4", "caption": "unboxing"},
    ),
    (
        "document",
        {"caption": "invoice", "filename": "invoice.pdf", "mime_type": "application/pdf",
         "sha256": "abc", "id": "1003383421387259"},
        {"mime_type": "application/pdf", "caption": "invoice", "filename": "invoice.pdf"},
    ),
    (
        "sticker",
        {"mime_type": "image/webp", "sha256": "abc", "id": "1003383421387260", "animated": False},
        {"mime_type": "image/webp"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "part", "expected"), MEDIA, ids=[m[0] for m in MEDIA])
def test_media_messages_point_at_the_media_node_with_the_media_id(
    kind: str, part: dict[str, Any], expected: dict[str, Any]
) -> None:
    [msg] = parsed(envelope(message(kind, part)))
    assert msg.content == {
        "type": "media",
        "url": f"https://graph.facebook.com/v23.0/{part['id']}",
        **expected,
    }


@pytest.mark.parametrize(
    ("kind", "part", "text"),
    [
        ("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}, "Yes"),
        (
            "interactive",
            {"type": "list_reply", "list_reply": {"id": "r2", "title": "Blue", "description": "Navy blue"}},
            "Blue\nNavy blue",
        ),
        (
            "interactive",
            {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent",
                                                "response_json": '{"rating": 5}'}},
            '{"rating": 5}',
        ),
        ("button", {"text": "No", "payload": "No-Button-Payload"}, "No"),
        ("system", {"body": "Sheena changed from 1 to 2", "type": "user_changed_number"},
         "Sheena changed from 1 to 2"),
    ],
)  # fmt: skip
def test_replies_and_notices_are_the_text_the_customer_saw(
    kind: str, part: dict[str, Any], text: str
) -> None:
    [msg] = parsed(
        envelope(message(kind, part, context={"from": "15550783881", "id": "wamid.out"}))
    )
    assert msg.content == {"type": "text", "text": text}
    assert msg.reply_to == "wamid.out"


def test_a_location_is_location_content() -> None:
    part = {"latitude": 37.48, "longitude": -122.15, "name": "Philz", "address": "1 Hacker Way",
            "url": "https://philz.example"}  # fmt: skip
    [msg] = parsed(envelope(message("location", part)))
    assert msg.content == {
        "type": "location", "latitude": 37.48, "longitude": -122.15,
        "name": "Philz", "address": "1 Hacker Way",
    }  # fmt: skip


def test_shared_contacts_are_a_readable_card() -> None:
    card = {
        "name": {"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson"},
        "org": {"company": "Social Tsunami"},
        "phones": [{"phone": "+1 (415) 555-0829", "wa_id": "14125550829", "type": "MOBILE"}],
        "emails": [{"email": "bj@example.com", "type": "WORK"}],
    }  # fmt: skip
    msg = message("contacts", None)
    msg["contacts"] = [card]
    [found] = parsed(envelope(msg))
    assert found.content == {
        "type": "text",
        "text": "Contact: Barbara J. Johnson, Social Tsunami, +1 (415) 555-0829, bj@example.com",
    }


def test_an_order_lists_its_items() -> None:
    order = {"catalog_id": "cat1", "text": "gift wrap please", "product_items": [
        {"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 12.5, "currency": "USD"}]}  # fmt: skip
    [msg] = parsed(envelope(message("order", order)))
    assert msg.content["text"] == "Order (catalog cat1)\n2 x SKU-1 at 12.5 USD\ngift wrap please"


def test_a_reaction_and_its_removal_are_reactions_to_the_business_message() -> None:
    added = message("reaction", {"message_id": "wamid.out", "emoji": "\U0001f600"})
    removed = message("reaction", {"message_id": "wamid.out"})
    assert parsed(envelope(added, removed)) == [
        Reaction("wamid.out", "16505551234", "\U0001f600"),
        Reaction("wamid.out", "16505551234", None),
    ]


def test_an_unsupported_type_is_kept_with_its_type() -> None:
    msg = message("unsupported", {"type": "edit"})
    msg["errors"] = [{"code": 131051, "title": "Message type unknown",
                      "error_data": {"details": "Message type is currently not supported."}}]  # fmt: skip
    [found] = parsed(envelope(msg))
    assert "'unsupported'" in found.content["text"] and "131051" in found.content["text"]


def test_other_webhook_fields_and_bodies_that_are_not_json_give_nothing() -> None:
    other = json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "account_update", "value": {"event": "X"}}]}]}).encode()  # fmt: skip
    assert parsed(other) == []
    assert parsed(b"not json") == []


# -- sending: requests and errors, against the fake Graph API --------------------------


@pytest.fixture
async def graph_api() -> AsyncIterator[FakeWhatsAppApi]:
    fake = await FakeWhatsAppApi(ACCESS_TOKEN, PHONE_NUMBER_ID).start()
    yield fake
    await fake.stop()


async def send(
    fake: FakeWhatsAppApi, content: dict[str, Any], timeout: float = 5.0, **outbound: Any
) -> str:
    async with httpx.AsyncClient(timeout=timeout) as http:
        wa = WhatsAppCloud({**CONFIG, "api_base_url": fake.url}, http)
        result = await wa.send(Outbound("msg_1", "+16505551234", content, **outbound))
    return result.provider_message_id


def request_fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fixture(name))
    body.setdefault("recipient_type", "individual")
    return body


async def test_a_text_is_the_documented_request_and_the_answer_names_the_wamid(
    graph_api: FakeWhatsAppApi,
) -> None:
    graph_api.respond(Accept(FIXTURE_WAMID))
    text = "Hi Sheena, your order #12345 has shipped."
    assert await send(graph_api, {"type": "text", "text": text}) == FIXTURE_WAMID
    [sent] = graph_api.accepted
    assert sent.version == "v23.0"
    assert sent.body == request_fixture("whatsapp.send_text.request.json")


async def test_templates_are_the_documented_requests(graph_api: FakeWhatsAppApi) -> None:
    await send(graph_api, {"type": "template", "name": "hello_world", "language": "en_US"})
    await send(graph_api, {"type": "template", "name": "order_shipped", "language": "en_US",
                           "parameters": ["Sheena", "12345"]})  # fmt: skip
    await send(
        graph_api, {"type": "template", "name": "greet", "parameters": {"first_name": "Ann"}}
    )
    hello, shipped, named = (s.body for s in graph_api.accepted)
    assert hello == request_fixture("whatsapp.send_template_hello_world.request.json")
    assert shipped == request_fixture("whatsapp.send_template.request.json")
    assert named["template"] == {
        "name": "greet",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ann"}],
            }
        ],
    }


async def test_a_quoted_reply_carries_the_context(graph_api: FakeWhatsAppApi) -> None:
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    content = {"type": "text", "text": "Yes, it also comes in blue."}
    await send(graph_api, content, reply_to=wamid, options={"quote": True})
    await send(graph_api, content, reply_to=wamid)  # not asked to quote
    quoted, plain = (s.body for s in graph_api.accepted)
    assert quoted == request_fixture("whatsapp.send_reply_text.request.json")
    assert "context" not in plain


async def test_media_buttons_and_locations_map_to_their_message_types(
    graph_api: FakeWhatsAppApi,
) -> None:
    buttons = [{"id": f"b{n}", "title": f"Option {n}"} for n in range(1, 6)]
    contents: list[dict[str, Any]] = [
        {"type": "media", "url": "https://cdn.example/p.jpg", "caption": "look"},
        {"type": "media", "url": "https://cdn.example/a.pdf", "mime_type": "application/pdf"},
        {"type": "media", "url": "https://cdn.example/v.ogg", "mime_type": "audio/ogg"},
        {"type": "buttons", "text": "Pick", "buttons": buttons[:3]},
        {"type": "buttons", "text": "Pick", "buttons": buttons},
        {"type": "location", "latitude": 1.5, "longitude": 2.5, "name": "Shop"},
    ]
    for content in contents:
        await send(graph_api, content)
    image, doc, audio, three, five, place = (s.body for s in graph_api.accepted)
    assert (image["type"], image["image"]) == (
        "image",
        {"link": "https://cdn.example/p.jpg", "caption": "look"},
    )
    assert doc["document"] == {"link": "https://cdn.example/a.pdf", "filename": "a.pdf"}
    assert audio["audio"] == {"link": "https://cdn.example/v.ogg"}
    assert three["interactive"]["type"] == "button"
    assert [b["reply"] for b in three["interactive"]["action"]["buttons"]] == [
        {"id": "b1", "title": "Option 1"}, {"id": "b2", "title": "Option 2"}, {"id": "b3", "title": "Option 3"},
    ]  # fmt: skip
    assert five["interactive"]["type"] == "list"
    assert [r["id"] for r in five["interactive"]["action"]["sections"][0]["rows"]] == [
        "b1", "b2", "b3", "b4", "b5",
    ]  # fmt: skip
    assert place["location"] == {"latitude": 1.5, "longitude": 2.5, "name": "Shop"}


async def test_buttons_the_api_cannot_show_as_reply_buttons_become_a_list_or_text(
    graph_api: FakeWhatsAppApi,
) -> None:
    long_title = [{"id": "a", "title": "A title longer than twenty"}, {"id": "b", "title": "B"}]
    await send(graph_api, {"type": "buttons", "text": "Pick", "buttons": long_title})
    await send(graph_api, {"type": "buttons", "text": "x" * 1025, "buttons": long_title})
    as_list, as_text = (s.body for s in graph_api.accepted)
    [row_a, row_b] = as_list["interactive"]["action"]["sections"][0]["rows"]
    assert row_a == {
        "id": "a",
        "title": "A title longer than twe…",
        "description": "A title longer than twenty",
    }
    assert row_b == {"id": "b", "title": "B"}
    assert as_text["type"] == "text"
    assert as_text["text"]["body"].endswith("\n\n1. A title longer than twenty\n2. B")


async def test_mark_read_is_the_documented_request(graph_api: FakeWhatsAppApi) -> None:
    expected = json.loads(fixture("whatsapp.mark_read.request.json"))
    async with httpx.AsyncClient() as http:
        wa = WhatsAppCloud({**CONFIG, "api_base_url": graph_api.url}, http)
        await wa.mark_read(expected["message_id"], typing=True)
    assert graph_api.read_receipts == [expected]


@pytest.mark.parametrize(
    "answer",
    [
        Fail(429, 130429, "(#130429) Rate limit hit", retry_after=7),
        Fail(400, 80007, "(#80007) Rate limit issues"),
        Fail(403, 4, "(#4) Application request limit reached"),
        Fail(400, 131056, "(#131056) Pair rate limit hit"),
        Fail(500, 2, "Service temporarily unavailable"),
        Fail(503, 131000, "Something went wrong"),
    ],
    ids=lambda a: str(a.code),
)
async def test_throttling_and_server_errors_are_retried(
    graph_api: FakeWhatsAppApi, answer: Fail
) -> None:
    graph_api.respond(answer)
    with pytest.raises(RetryLater) as retry:
        await send(graph_api, {"type": "text", "text": "hi"})
    assert retry.value.code == str(answer.code)
    assert retry.value.status_code == answer.http_status
    assert retry.value.retry_after == answer.retry_after


@pytest.mark.parametrize(
    "answer",
    [
        Fail(400, 131026, "Message Undeliverable"),
        Fail(400, 131047, "Re-engagement message"),
        Fail(400, 131030, "(#131030) Recipient phone number not in allowed list", subcode=2655007),
        Fail(401, 190, "Error validating access token", subcode=463),
        Fail(400, 132001, "(#132001) Template name does not exist in the translation"),
    ],
    ids=lambda a: str(a.code),
)
async def test_permanent_errors_give_up_with_the_graph_code(
    graph_api: FakeWhatsAppApi, answer: Fail
) -> None:
    graph_api.respond(answer)
    with pytest.raises(GiveUp) as gave_up:
        await send(graph_api, {"type": "text", "text": "hi"})
    assert gave_up.value.code == str(answer.code)
    assert answer.message in gave_up.value.message


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("whatsapp.error_rate_limit_response.json", RetryLater, "130429"),
        ("whatsapp.error_response.json", GiveUp, "131030"),
        ("whatsapp.error_auth_response.json", GiveUp, "190"),
    ],
)
def test_the_error_fixtures_map_to_retry_or_give_up(name: str, error: type, code: str) -> None:
    response = httpx.Response(400, content=fixture(name))
    mapped = graph.error_from(response, response.json())
    assert type(mapped) is error and mapped.code == code


async def test_a_wrong_access_token_is_refused_by_the_fake_and_given_up(
    graph_api: FakeWhatsAppApi,
) -> None:
    async with httpx.AsyncClient() as http:
        wa = WhatsAppCloud({**CONFIG, "api_base_url": graph_api.url, "access_token": "bad"}, http)
        with pytest.raises(GiveUp) as gave_up:
            await wa.send(Outbound("m", "+16505551234", {"type": "text", "text": "hi"}))
    assert (gave_up.value.code, gave_up.value.status_code) == ("190", 401)
    assert graph_api.requests == []


async def test_a_hanging_api_and_a_closed_port_are_retried(graph_api: FakeWhatsAppApi) -> None:
    graph_api.respond(HANG)
    with pytest.raises(RetryLater) as timed_out:
        await send(graph_api, {"type": "text", "text": "hi"}, timeout=0.2)
    assert timed_out.value.code == "timeout"
    url = graph_api.url
    await graph_api.stop()
    async with httpx.AsyncClient() as http:
        wa = WhatsAppCloud({**CONFIG, "api_base_url": url}, http)
        with pytest.raises(RetryLater) as refused:
            await wa.send(Outbound("m", "+16505551234", {"type": "text", "text": "hi"}))
    assert refused.value.code == "connection_error"


# -- end to end: the production registry, the real app, both databases -----------------


def test_the_production_registry_sends_whatsapp_through_this_connector() -> None:
    # The end-to-end tests below run the app on the production registry (tests/conftest.py).
    assert REGISTRY.spec("whatsapp").connector is WhatsAppCloud


@pytest.fixture
async def channel(api: httpx.AsyncClient, graph_api: FakeWhatsAppApi) -> str:
    config = {**CONFIG, "api_base_url": graph_api.url}
    r = await api.post("/v1/channels", json={"type": "whatsapp", "name": "WA", "config": config})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def callback(client: httpx.AsyncClient, channel_id: str, name: str) -> httpx.Response:
    """A fixture replayed byte for byte with its signature vector."""
    return await client.post(
        f"/webhooks/{channel_id}",
        content=fixture(name),
        headers={"content-type": "application/json", "x-hub-signature-256": signed_header(name)},
    )


async def settle(runtime: Any, api: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    return await until_status(api, runtime, message_id)


async def reply(api: httpx.AsyncClient, channel_id: str, text: str) -> str:
    """An agent replies over REST in the customer's conversation."""
    return await agent_reply(api, (await only_conversation(api, channel_id))["id"], text)


async def test_meta_handshake_is_answered_through_the_app(
    client: httpx.AsyncClient, channel: str
) -> None:
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock"
    r = await client.get(f"/webhooks/{channel}?{query}")
    assert (r.status_code, r.text) == (200, "1158201444")
    assert r.headers["content-type"].startswith("text/plain")
    r = await client.get(f"/webhooks/{channel}?{query.replace('meatyhamhock', 'guess')}")
    assert r.status_code == 403


async def test_a_signed_message_opens_a_conversation_once_however_often_meta_repeats_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, channel: str
) -> None:
    for _ in range(2):
        r = await callback(client, channel, "whatsapp.inbound_text.json")
        assert r.status_code == 200, r.text
    [msg] = await messages_of(api, channel)
    assert msg["direction"] == "inbound"
    assert msg["content"] == {"type": "text", "text": "Does it come in another color?"}
    [contact] = (await api.get("/v1/contacts?phone=%2B16505551234")).json()["data"]
    assert contact["name"] == "Sheena Nelson" and contact["id"] == msg["author"]["id"]


async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, api: httpx.AsyncClient, channel: str
) -> None:
    body = fixture("whatsapp.inbound_text.json")
    for headers in (
        {"x-hub-signature-256": graph.signature("not the app secret", body)},
        {"x-hub-signature-256": signed_header("whatsapp.inbound_unsupported.json")},
        {},
    ):
        r = await client.post(f"/webhooks/{channel}", content=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "webhook_rejected"
    assert await messages_of(api, channel) == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_an_agents_reply_reaches_the_api_and_meta_statuses_move_it_forward_only(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeWhatsAppApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "whatsapp.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "Yes, it also comes in blue.")
    graph_api.respond(Accept(FIXTURE_WAMID))
    msg = await settle(runtime, api, message_id)
    [sent] = graph_api.accepted
    assert sent.body["to"] == "16505551234"
    assert sent.body["text"] == {"preview_url": False, "body": "Yes, it also comes in blue."}
    assert msg["status"] == "sent"
    assert msg["delivery"]["provider_message_id"] == FIXTURE_WAMID

    for name in ("whatsapp.status_read.json", "whatsapp.status_delivered.json",
                 "whatsapp.status_sent.json"):  # fmt: skip
        assert (await callback(client, channel, name)).status_code == 200
    msg = (await api.get(f"/v1/messages/{message_id}")).json()
    assert msg["status"] == "read"
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "read"]


async def test_a_failed_status_fails_the_message_with_metas_code(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeWhatsAppApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "whatsapp.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "hello again")
    graph_api.respond(Accept(FIXTURE_WAMID))
    await settle(runtime, api, message_id)
    assert (await callback(client, channel, "whatsapp.status_failed.json")).status_code == 200
    msg = (await api.get(f"/v1/messages/{message_id}")).json()
    assert msg["status"] == "failed"
    assert msg["status_history"][-1]["detail"]["code"] == "131047"


async def test_server_errors_are_retried_until_the_api_accepts(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeWhatsAppApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "whatsapp.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "retry me")
    graph_api.respond(
        Fail(500, 2, "Service temporarily unavailable"),
        Fail(429, 130429, "(#130429) Rate limit hit", retry_after=0),
    )
    msg = await settle(runtime, api, message_id)
    assert msg["status"] == "sent"
    assert len(graph_api.requests) == 3
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["2", "130429", None]
    assert msg["delivery"]["provider_message_id"] == graph_api.accepted[0].wamid


async def test_a_permanent_error_fails_the_message_with_metas_code_and_reason(
    api: httpx.AsyncClient, runtime: Any, graph_api: FakeWhatsAppApi, channel: str
) -> None:
    # A first message to a new number is outside the customer-service window: a template.
    r = await api.post("/v1/messages", json={
        "channel": "whatsapp", "to": {"address": "+16505551234"},
        "content": {"type": "template", "name": "hello_world", "language": "en_US"},
    })  # fmt: skip
    assert r.status_code == 202, r.text
    graph_api.respond(Fail(400, 131026, "Message Undeliverable"))
    msg = await settle(runtime, api, r.json()["messages"][0]["message_id"])
    assert msg["status"] == "failed"
    detail = msg["status_history"][-1]["detail"]
    assert (detail["code"], detail["status_code"]) == ("131026", 400)
    assert "Message Undeliverable" in detail["message"]
    assert len(graph_api.requests) == 1


async def test_after_24_hours_only_a_template_goes_out(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeWhatsAppApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "whatsapp.inbound_text.json")).status_code == 200
    conv = await only_conversation(api, channel)
    await customer_wrote(runtime, conv["id"], timedelta(hours=25))
    url = f"/v1/conversations/{conv['id']}/messages"
    r = await api.post(url, json={"content": {"type": "text", "text": "still there?"}})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "template_required"
    assert len(await messages_of(api, channel)) == 1

    template = {"type": "template", "name": "hello_world", "language": "en_US"}
    r = await api.post(url, json={"content": template})
    assert r.status_code == 201, r.text
    msg = await settle(runtime, api, r.json()["id"])
    assert msg["status"] == "sent"
    [sent] = graph_api.requests
    assert sent.body == request_fixture("whatsapp.send_template_hello_world.request.json")


async def test_a_reaction_to_a_sent_reply_is_answered_and_stored_as_no_message(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeWhatsAppApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "whatsapp.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "blue it is")
    graph_api.respond(Accept(FIXTURE_WAMID))
    await settle(runtime, api, message_id)
    body = envelope(message("reaction", {"message_id": FIXTURE_WAMID, "emoji": "\U0001f44d"}))
    r = await client.post(
        f"/webhooks/{channel}",
        content=body,
        headers={"x-hub-signature-256": graph.signature(APP_SECRET, body)},
    )
    assert r.status_code == 200, r.text
    assert [m["id"] for m in await messages_of(api, channel)][-1] == message_id


async def test_an_agents_reply_on_the_agent_socket_reaches_the_cloud_api_and_a_note_does_not(
    live_server: LiveServer, graph_api: FakeWhatsAppApi
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    config = {**CONFIG, "api_base_url": graph_api.url}
    r = await api.post("/v1/channels", json={"type": "whatsapp", "name": "WA", "config": config})
    assert r.status_code == 201, r.text
    assert (await callback(api, r.json()["id"], "whatsapp.inbound_text.json")).status_code == 200
    conv = await only_conversation(api, r.json()["id"])

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "Blue is in stock.")
    msg = await until_status(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [sent] = graph_api.requests
    assert (sent.body["to"], sent.body["text"]["body"]) == ("16505551234", "Blue is in stock.")
    assert msg["delivery"]["provider_message_id"] == graph_api.accepted[0].wamid
