"""The Messenger connector: its signature check, handshake and parser against the provider
fixtures (replayed byte for byte), its Send API requests and error mapping against a fake
Graph API, and the whole path through the real app on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
    Watermark,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.messenger import MessengerConnector
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
from tests.fakes.messenger_api import HANG, Accept, Fail, FakeMessengerApi

FIXTURES = Path("/work/shared/fixtures/providers")
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="provider fixtures not present")
VECTORS: dict[str, Any] = (
    json.loads((FIXTURES / "messenger.signature_vectors.json").read_text())
    if FIXTURES.is_dir()
    else {"app_secret": "", "fixtures": []}
)
APP_SECRET = VECTORS["app_secret"]
VERIFY_TOKEN = "messenger-verify-token-0001"
PAGE_ID = "106378625516323"
PSID = "5275811702471834"
PAGE_TOKEN = "EAAG-test-page-access-token-0001"
TEXT_MID = (
    "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
)
SENT_MID = (
    "m_qr6GPBlzTU4jqP0PBqaIoIAcfn2p3T7uiO5jm0L_PMTKMJhEIUGFkEKQBhGkpCnPXVZNsYdkN7A2Sel0dOz_Iw"
)
CONFIG = {
    "page_id": PAGE_ID,
    "page_access_token": PAGE_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": VERIFY_TOKEN,
    "api_version": "v20.0",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed_header(name: str) -> str:
    [vector] = [v for v in VECTORS["fixtures"] if v["file"] == name]
    header: str = vector["X-Hub-Signature-256"]
    return header


def post_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("POST", "https://parley.test/webhooks/ch", headers, {}, body)


def connector(base: str = "https://graph.facebook.com", **config: Any) -> MessengerConnector:
    return MessengerConnector({**CONFIG, "api_base_url": base, **config}, httpx.AsyncClient())


def envelope(*events: dict[str, Any], key: str = "messaging") -> bytes:
    body = {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": 1733492700000, key: [event]} for event in events],
    }
    return json.dumps(body).encode()


def event(**part: Any) -> dict[str, Any]:
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1733492699512,
        **part,
    }


def parsed(body: bytes) -> list[Any]:
    fb = connector()
    request = post_request(body, {graph.SIGNATURE_HEADER: graph.signature(APP_SECRET, body)})
    fb.verify(request)
    return list(fb.parse(request))


# -- signatures and the handshake ------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["fixtures"], ids=lambda v: v["file"])
def test_every_fixture_passes_with_its_signature_and_fails_tampered_or_unsigned(
    vector: dict[str, str],
) -> None:
    fb = connector()
    body = fixture(vector["file"])
    good = {graph.SIGNATURE_HEADER: vector["X-Hub-Signature-256"]}
    fb.verify(post_request(body, good))
    tampered = body.replace(PSID.encode(), b"5275811702471835")
    assert tampered != body
    for request in (
        post_request(tampered, good),
        post_request(body, {}),
        post_request(body, {"x-hub-signature": vector["X-Hub-Signature"]}),  # legacy SHA-1
        post_request(body, {graph.SIGNATURE_HEADER: graph.signature(VERIFY_TOKEN, body)}),
    ):
        with pytest.raises(WebhookRejected) as refused:
            fb.verify(request)
        assert refused.value.status == 401


def handshake(token: str, mode: str = "subscribe") -> WebhookRequest:
    query = {"hub.mode": mode, "hub.challenge": "1158201444", "hub.verify_token": token}
    return WebhookRequest("GET", "https://parley.test/webhooks/ch", {}, query, b"")


def test_the_get_handshake_answers_the_challenge_only_with_the_verify_token() -> None:
    fb = connector()
    fb.verify(handshake(VERIFY_TOKEN))
    answer = fb.challenge(handshake(VERIFY_TOKEN))
    assert answer is not None and answer.body == b"1158201444"
    for bad in (handshake("guess"), handshake(VERIFY_TOKEN, mode="unsubscribe")):
        with pytest.raises(WebhookRejected) as refused:
            fb.verify(bad)
        assert refused.value.status == 403
    assert fb.challenge(post_request(b"{}", {})) is None


# -- parsing ---------------------------------------------------------------------------


def test_the_text_fixture_is_an_inbound_text_keyed_by_its_mid() -> None:
    [msg] = parsed(fixture("messenger.inbound_text.json"))
    assert msg == Inbound(
        provider_message_id=TEXT_MID,
        sender=PSID,
        content={"type": "text", "text": "hello, world!"},
        sent_at=datetime.fromtimestamp(1733492656.843, UTC),
    )


def test_a_quick_reply_is_the_text_the_customer_tapped() -> None:
    [msg] = parsed(fixture("messenger.inbound_quick_reply.json"))
    assert isinstance(msg, Inbound)
    assert msg.content == {"type": "text", "text": "Red"}
    assert msg.provider_message_id == "m_9d2l1kZCzYxv1JbYd2M0FhUqV3n6xQ_PICKRED_example"


def test_an_echo_of_the_pages_own_message_is_ignored() -> None:
    assert parsed(fixture("messenger.echo.json")) == []


def test_events_sent_by_the_page_itself_are_ignored_even_without_is_echo() -> None:
    from_page = {"sender": {"id": PAGE_ID}, "recipient": {"id": PSID}, "timestamp": 1}
    assert parsed(envelope({**from_page, "message": {"mid": "m_page", "text": "hi"}})) == []
    edit = {"mid": "m_page", "text": "hi!", "num_edit": 1}
    assert parsed(envelope({**from_page, "message_edit": edit})) == []
    assert parsed(envelope({"timestamp": 1, "message": {"mid": "m_x", "text": "who?"}})) == []


def test_a_delivery_is_a_delivered_status_for_each_mid_and_a_watermark() -> None:
    assert parsed(fixture("messenger.delivery.json")) == [
        StatusUpdate(SENT_MID, "delivered", at=datetime.fromtimestamp(1733492660.950, UTC)),
        Watermark(PSID, "delivered", datetime.fromtimestamp(1733492658, UTC)),
    ]
    two = envelope(event(delivery={"mids": ["m_1", "m_2"], "watermark": 1733492658000}))
    assert [(u.provider_message_id, u.status) for u in parsed(two)[:2]] == [
        ("m_1", "delivered"),
        ("m_2", "delivered"),
    ]


def test_a_read_and_a_delivery_without_mids_are_watermarks_of_the_sender() -> None:
    """They only say "everything sent to this customer before this time": Parley, which
    knows what it sent, finds the messages."""
    assert parsed(fixture("messenger.read.json")) == [
        Watermark(PSID, "read", datetime.fromtimestamp(1733492658, UTC))
    ]
    assert parsed(envelope(event(delivery={"watermark": 1733492658000}))) == [
        Watermark(PSID, "delivered", datetime.fromtimestamp(1733492658, UTC))
    ]
    assert parsed(envelope(event(read={"watermark": "soon"}))) == []
    assert parsed(envelope(event(delivery={"mids": []}))) == []


def test_a_postback_is_the_title_of_the_tapped_button() -> None:
    body = envelope(
        event(postback={"title": "Talk to an agent", "payload": "AGENT", "mid": "m_postback_1"})
    )
    [msg] = parsed(body)
    assert msg.provider_message_id == "m_postback_1"
    assert msg.content == {"type": "text", "text": "Talk to an agent"}
    [without_mid] = parsed(envelope(event(postback={"title": "Get Started", "payload": "GO"})))
    assert without_mid.provider_message_id == f"postback:{PSID}:1733492699512"


def test_attachments_are_media_location_or_text_one_message_each() -> None:
    attachments = [
        {"type": "image", "payload": {"url": "https://cdn.fbsbx.test/a.jpg"}},
        {"type": "image", "payload": {"url": "https://cdn.fbsbx.test/s.png", "sticker_id": 369239263222822}},
        {"type": "file", "payload": {"url": "https://cdn.fbsbx.test/f.pdf"}},
        {"type": "location", "title": "Pinned", "payload": {"coordinates": {"lat": 52.5, "long": 13.4}}},
        {"type": "fallback", "title": "A shared link", "url": "https://example.com/x", "payload": None},
    ]  # fmt: skip
    body = envelope(event(message={"mid": "m_att", "attachments": attachments}))
    msgs = parsed(body)
    assert [m.provider_message_id for m in msgs] == [
        "m_att",
        "m_att:2",
        "m_att:3",
        "m_att:4",
        "m_att:5",
    ]
    assert [m.content for m in msgs] == [
        {"type": "media", "url": "https://cdn.fbsbx.test/a.jpg"},
        {"type": "media", "url": "https://cdn.fbsbx.test/s.png"},
        {"type": "media", "url": "https://cdn.fbsbx.test/f.pdf"},
        {"type": "location", "latitude": 52.5, "longitude": 13.4, "name": "Pinned"},
        {"type": "text", "text": "A shared link\nhttps://example.com/x"},
    ]


def test_text_with_an_attachment_is_its_caption_and_a_reply_is_threaded() -> None:
    message = {
        "mid": "m_cap",
        "text": "look",
        "reply_to": {"mid": SENT_MID},
        "attachments": [{"type": "video", "payload": {"url": "https://cdn.fbsbx.test/v.mp4"}}],
    }
    [msg] = parsed(envelope(event(message=message)))
    assert msg.content == {
        "type": "media",
        "url": "https://cdn.fbsbx.test/v.mp4",
        "caption": "look",
    }
    assert msg.reply_to == SENT_MID


def test_reactions_and_their_removal_are_reactions_to_the_mid() -> None:
    react = {"reaction": "love", "emoji": "\u2764\ufe0f", "action": "react", "mid": SENT_MID}
    unreact = {"reaction": "love", "action": "unreact", "mid": SENT_MID}
    assert parsed(envelope(event(reaction=react), event(reaction=unreact))) == [
        Reaction(SENT_MID, PSID, "\u2764\ufe0f"),
        Reaction(SENT_MID, PSID, None),
    ]


def test_an_edit_is_a_new_message_replying_to_the_original() -> None:
    body = envelope(event(message_edit={"mid": TEXT_MID, "text": "hello, world?", "num_edit": 1}))
    [msg] = parsed(body)
    assert msg.provider_message_id == f"{TEXT_MID}:edited:1"
    assert msg.content == {"type": "text", "text": "hello, world?"}
    assert msg.reply_to == TEXT_MID


def test_other_objects_standby_events_and_bodies_that_are_not_json_give_nothing() -> None:
    text = json.loads(fixture("messenger.inbound_text.json"))
    assert parsed(json.dumps({**text, "object": "instagram"}).encode()) == []
    assert parsed(envelope(event(message={"mid": "m_sb", "text": "hi"}), key="standby")) == []
    assert parsed(envelope(event(optin={"ref": "x"}))) == []
    assert parsed(b"not json") == []


# -- sending: requests and errors, against the fake Graph API --------------------------


@pytest.fixture
async def graph_api() -> AsyncIterator[FakeMessengerApi]:
    fake = await FakeMessengerApi(PAGE_TOKEN, PAGE_ID).start()
    yield fake
    await fake.stop()


async def send(
    fake: FakeMessengerApi, content: dict[str, Any], timeout: float = 5.0, **outbound: Any
) -> str:
    async with httpx.AsyncClient(timeout=timeout) as http:
        fb = MessengerConnector({**CONFIG, "api_base_url": fake.url}, http)
        result = await fb.send(Outbound("msg_1", PSID, content, **outbound))
    return result.provider_message_id


def request_fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fixture(name))
    return body


async def test_a_text_is_the_documented_request_and_the_answer_names_the_mid(
    graph_api: FakeMessengerApi,
) -> None:
    graph_api.respond(Accept(json.loads(fixture("messenger.send_response.json"))["message_id"]))
    mid = await send(graph_api, {"type": "text", "text": "Hello! How can we help?"})
    assert mid == SENT_MID
    [sent] = graph_api.requests
    assert sent.version == "v20.0"
    assert sent.body == request_fixture("messenger.send_text.request.json")


async def test_a_message_tag_sends_outside_the_window_as_documented(
    graph_api: FakeMessengerApi,
) -> None:
    text = "Sorry for the wait - an agent has looked into your refund and it was approved."
    await send(graph_api, {"type": "text", "text": text}, options={"tag": "HUMAN_AGENT"})
    assert graph_api.requests[0].body == request_fixture("messenger.send_tagged.request.json")


async def test_buttons_are_quick_replies_as_documented(graph_api: FakeMessengerApi) -> None:
    buttons = [{"id": "PICK_RED", "title": "Red"}, {"id": "PICK_GREEN", "title": "Green"}]
    await send(graph_api, {"type": "buttons", "text": "Pick a color:", "buttons": buttons})
    assert graph_api.requests[0].body == request_fixture(
        "messenger.send_quick_replies.request.json"
    )
    long = [{"id": "LONG", "title": "A title longer than twenty characters"}]
    await send(graph_api, {"type": "buttons", "text": "Pick:", "buttons": long})
    [reply] = graph_api.requests[1].body["message"]["quick_replies"]
    assert reply == {"content_type": "text", "title": "A title longer than…", "payload": "LONG"}


async def test_media_is_an_attachment_by_url_and_its_caption_follows(
    graph_api: FakeMessengerApi,
) -> None:
    graph_api.respond(Accept("m_image"), Accept("m_caption"))
    mid = await send(
        graph_api,
        {"type": "media", "url": "https://files.test/cat.jpg", "caption": "our cat"},
    )
    assert mid == "m_image"
    image, caption = (s.body["message"] for s in graph_api.requests)
    assert image == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://files.test/cat.jpg", "is_reusable": True},
        }
    }
    assert caption == {"text": "our cat"}
    await send(graph_api, {"type": "media", "url": "https://files.test/r.pdf"})
    await send(
        graph_api, {"type": "media", "url": "https://files.test/x", "mime_type": "audio/ogg"}
    )
    kinds = [s.body["message"]["attachment"]["type"] for s in graph_api.requests[2:]]
    assert kinds == ["file", "audio"]


async def test_a_caption_that_fails_does_not_fail_the_sent_attachment(
    graph_api: FakeMessengerApi,
) -> None:
    graph_api.respond(Accept("m_image"), Fail(500, 2, "Service temporarily unavailable"))
    mid = await send(
        graph_api, {"type": "media", "url": "https://files.test/a.png", "caption": "c"}
    )
    assert mid == "m_image" and len(graph_api.requests) == 2


async def test_a_location_is_a_text_with_a_map_link(graph_api: FakeMessengerApi) -> None:
    await send(
        graph_api,
        {"type": "location", "latitude": 52.5, "longitude": 13.4, "name": "Office",
         "address": "Main St 1"},
    )  # fmt: skip
    assert graph_api.requests[0].body["message"] == {
        "text": "Office\nMain St 1\nhttps://maps.google.com/?q=52.5,13.4"
    }


async def test_a_template_is_refused_without_calling_the_api(graph_api: FakeMessengerApi) -> None:
    with pytest.raises(GiveUp) as gave_up:
        await send(graph_api, {"type": "template", "name": "hello_world"})
    assert gave_up.value.code == "unsupported_content"
    assert graph_api.requests == []


async def test_a_sender_action_is_the_documented_request(graph_api: FakeMessengerApi) -> None:
    async with httpx.AsyncClient() as http:
        fb = MessengerConnector({**CONFIG, "api_base_url": graph_api.url}, http)
        await fb.sender_action(PSID, "typing_on")
    assert graph_api.actions == [request_fixture("messenger.sender_action.request.json")]


@pytest.mark.parametrize(
    "answer",
    [
        Fail(429, 613, "(#613) Calls to this api have exceeded the rate limit.", retry_after=7),
        Fail(403, 4, "(#4) Application request limit reached"),
        Fail(400, 32, "(#32) Page request limit reached"),
        Fail(500, 1200, "(#1200) Temporary send message failure. Please try again later"),
        Fail(500, 2, "Service temporarily unavailable"),
    ],
    ids=lambda a: str(a.code),
)
async def test_throttling_and_server_errors_are_retried(
    graph_api: FakeMessengerApi, answer: Fail
) -> None:
    graph_api.respond(answer)
    with pytest.raises(RetryLater) as retry:
        await send(graph_api, {"type": "text", "text": "hi"})
    assert retry.value.code == str(answer.code)
    assert retry.value.status_code == answer.http_status
    assert retry.value.retry_after == answer.retry_after


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("messenger.error_outside_window.json", "10"),
        ("messenger.error_user_unavailable.json", "551"),
    ],
)
async def test_the_error_fixtures_give_up_with_the_graph_code_and_subcode(
    graph_api: FakeMessengerApi, name: str, code: str
) -> None:
    error = json.loads(fixture(name))["error"]
    graph_api.respond(Fail(400, error["code"], error["message"], subcode=error["error_subcode"]))
    with pytest.raises(GiveUp) as gave_up:
        await send(graph_api, {"type": "text", "text": "hi"})
    assert (gave_up.value.code, gave_up.value.status_code) == (code, 400)
    assert error["message"] in gave_up.value.message
    assert f"subcode {error['error_subcode']}" in gave_up.value.message
    response = httpx.Response(400, content=fixture(name))
    mapped = graph.error_from(response, response.json())
    assert type(mapped) is GiveUp and mapped.code == code


async def test_an_unknown_psid_a_bad_tag_and_a_bad_token_are_refused_and_given_up() -> None:
    fake = await FakeMessengerApi(PAGE_TOKEN, PAGE_ID, known_psids={PSID}).start()
    try:
        async with httpx.AsyncClient() as http:
            fb = MessengerConnector({**CONFIG, "api_base_url": fake.url}, http)
            text = {"type": "text", "text": "hi"}
            with pytest.raises(GiveUp) as no_user:
                await fb.send(Outbound("m", "1111", text))
            with pytest.raises(GiveUp) as bad_tag:
                await fb.send(Outbound("m", PSID, text, options={"tag": "SHIPPING_UPDATE"}))
            wrong = MessengerConnector(
                {**CONFIG, "api_base_url": fake.url, "page_access_token": "bad"}, http
            )
            with pytest.raises(GiveUp) as bad_token:
                await wrong.send(Outbound("m", PSID, text))
    finally:
        await fake.stop()
    assert no_user.value.code == "100" and "2018001" in no_user.value.message
    assert bad_tag.value.code == "100" and "2018108" in bad_tag.value.message
    assert (bad_token.value.code, bad_token.value.status_code) == ("190", 401)
    assert fake.requests == []


async def test_a_hanging_api_and_a_closed_port_are_retried(graph_api: FakeMessengerApi) -> None:
    graph_api.respond(HANG)
    with pytest.raises(RetryLater) as timed_out:
        await send(graph_api, {"type": "text", "text": "hi"}, timeout=0.2)
    assert timed_out.value.code == "timeout"
    url = graph_api.url
    await graph_api.stop()
    async with httpx.AsyncClient() as http:
        fb = MessengerConnector({**CONFIG, "api_base_url": url}, http)
        with pytest.raises(RetryLater) as refused:
            await fb.send(Outbound("m", PSID, {"type": "text", "text": "hi"}))
    assert refused.value.code == "connection_error"


# -- end to end: the production registry, the real app, both databases -----------------


def test_the_production_registry_sends_messenger_through_this_connector() -> None:
    # The end-to-end tests below run the app on the production registry (tests/conftest.py).
    assert REGISTRY.spec("messenger").connector is MessengerConnector


@pytest.fixture
async def channel(api: httpx.AsyncClient, graph_api: FakeMessengerApi) -> str:
    config = {**CONFIG, "api_base_url": graph_api.url}
    r = await api.post("/v1/channels", json={"type": "messenger", "name": "FB", "config": config})
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
    query = f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    r = await client.get(f"/webhooks/{channel}?{query}")
    assert (r.status_code, r.text) == (200, "1158201444")
    r = await client.get(f"/webhooks/{channel}?{query.replace(VERIFY_TOKEN, 'guess')}")
    assert r.status_code == 403


async def test_a_signed_message_opens_a_conversation_once_however_often_meta_repeats_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, channel: str
) -> None:
    for _ in range(2):
        r = await callback(client, channel, "messenger.inbound_text.json")
        assert r.status_code == 200, r.text
    [msg] = await messages_of(api, channel)
    assert msg["direction"] == "inbound"
    assert msg["content"] == {"type": "text", "text": "hello, world!"}


async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, api: httpx.AsyncClient, channel: str
) -> None:
    body = fixture("messenger.inbound_text.json")
    for headers in (
        {"x-hub-signature-256": graph.signature("not the app secret", body)},
        {"x-hub-signature-256": signed_header("messenger.inbound_quick_reply.json")},
        {"x-hub-signature": "sha1=1edd3df97943bd1fa33580fdf235eb22051b4b50"},  # SHA-1 alone
        {},
    ):
        r = await client.post(f"/webhooks/{channel}", content=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "webhook_rejected"
    assert await messages_of(api, channel) == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_an_agents_reply_is_sent_its_echo_is_not_stored_and_delivery_moves_it_forward(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "Hello! How can we help?")
    graph_api.respond(Accept(SENT_MID))
    msg = await settle(runtime, api, message_id)
    [sent] = graph_api.accepted
    assert sent.body == request_fixture("messenger.send_text.request.json")
    assert msg["status"] == "sent"
    assert msg["delivery"]["provider_message_id"] == SENT_MID

    # Meta echoes the Page's own message back: the echo guard keeps it out.
    assert (await callback(client, channel, "messenger.echo.json")).status_code == 200
    assert [m["id"] for m in await messages_of(api, channel)][-1] == message_id
    assert len(await messages_of(api, channel)) == 2

    for name in ("messenger.delivery.json", "messenger.read.json", "messenger.delivery.json"):
        assert (await callback(client, channel, name)).status_code == 200
    msg = (await api.get(f"/v1/messages/{message_id}")).json()
    assert msg["status"] == "delivered"  # the fixture's read watermark (2024) is before it
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "delivered"]


async def test_server_errors_are_retried_until_the_api_accepts(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "retry me")
    graph_api.respond(
        Fail(500, 2, "Service temporarily unavailable"),
        Fail(429, 613, "(#613) Calls to this api have exceeded the rate limit.", retry_after=0),
    )
    msg = await settle(runtime, api, message_id)
    assert msg["status"] == "sent"
    assert len(graph_api.requests) == 3
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["2", "613", None]
    assert msg["delivery"]["provider_message_id"] == graph_api.accepted[0].mid


async def test_outside_the_window_the_message_fails_with_metas_code(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "too late")
    error = json.loads(fixture("messenger.error_outside_window.json"))["error"]
    graph_api.respond(Fail(400, error["code"], error["message"], subcode=error["error_subcode"]))
    msg = await settle(runtime, api, message_id)
    assert msg["status"] == "failed"
    detail = msg["status_history"][-1]["detail"]
    assert (detail["code"], detail["status_code"]) == ("10", 400)
    assert "outside of allowed window" in detail["message"]
    assert len(graph_api.requests) == 1


async def test_after_the_window_a_reply_needs_a_tag_and_the_tag_reaches_the_send_api(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    conv = await only_conversation(api, channel)
    await customer_wrote(runtime, conv["id"], timedelta(days=2))
    text = {"type": "text", "text": "Sorry for the wait - an agent has looked into your refund and it was approved."}
    url = f"/v1/conversations/{conv['id']}/messages"
    r = await api.post(url, json={"content": text})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "template_required"
    assert len(await messages_of(api, channel)) == 1

    r = await api.post(url, json={"content": text, "message_tag": "HUMAN_AGENT"})
    assert r.status_code == 201, r.text
    msg = await settle(runtime, api, r.json()["id"])
    assert msg["status"] == "sent" and msg["message_tag"] == "HUMAN_AGENT"
    [sent] = graph_api.accepted
    assert sent.body == request_fixture("messenger.send_tagged.request.json")


async def test_a_reaction_to_a_sent_reply_is_answered_and_stored_as_no_message(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    message_id = await reply(api, channel, "glad to help")
    graph_api.respond(Accept(SENT_MID))
    await settle(runtime, api, message_id)
    body = envelope(event(reaction={"reaction": "like", "emoji": "\U0001f44d", "action": "react",
                                    "mid": SENT_MID}))  # fmt: skip
    r = await client.post(
        f"/webhooks/{channel}",
        content=body,
        headers={"x-hub-signature-256": graph.signature(APP_SECRET, body)},
    )
    assert r.status_code == 200, r.text
    assert [m["id"] for m in await messages_of(api, channel)][-1] == message_id


async def signed_event(client: httpx.AsyncClient, channel_id: str, **part: Any) -> None:
    body = envelope(event(**part))
    r = await client.post(
        f"/webhooks/{channel_id}",
        content=body,
        headers={"x-hub-signature-256": graph.signature(APP_SECRET, body)},
    )
    assert r.status_code == 200, r.text


def watermark_now() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def test_read_and_delivery_watermarks_move_every_reply_sent_before_them(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    runtime: Any,
    graph_api: FakeMessengerApi,
    channel: str,
) -> None:
    assert (await callback(client, channel, "messenger.inbound_text.json")).status_code == 200
    conv = await only_conversation(api, channel)
    first = await agent_reply(api, conv["id"], "first")
    second = await agent_reply(api, conv["id"], "second")
    for message_id in (first, second):
        await settle(runtime, api, message_id)
    delivered_up_to = watermark_now()
    third = await agent_reply(api, conv["id"], "third, after the watermark")
    await settle(runtime, api, third)

    await signed_event(client, channel, delivery={"watermark": delivered_up_to})
    statuses = [(await api.get(f"/v1/messages/{i}")).json()["status"] for i in (first, second, third)]
    assert statuses == ["delivered", "delivered", "sent"]

    await signed_event(client, channel, read={"watermark": watermark_now()})
    await signed_event(client, channel, delivery={"watermark": watermark_now()})  # late: stale
    for message_id in (first, second, third):
        msg = (await api.get(f"/v1/messages/{message_id}")).json()
        assert msg["status"] == "read"
        assert msg["status_history"][-1]["status"] == "read"
    history = (await api.get(f"/v1/messages/{third}")).json()["status_history"]
    assert [h["status"] for h in history] == ["queued", "sent", "read"]


async def test_an_agents_reply_on_the_agent_socket_reaches_the_send_api_and_a_note_does_not(
    live_server: LiveServer, graph_api: FakeMessengerApi
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    config = {**CONFIG, "api_base_url": graph_api.url}
    r = await api.post("/v1/channels", json={"type": "messenger", "name": "FB", "config": config})
    assert r.status_code == 201, r.text
    assert (await callback(api, r.json()["id"], "messenger.inbound_text.json")).status_code == 200
    conv = await only_conversation(api, r.json()["id"])

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "On its way!")
    msg = await until_status(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [sent] = graph_api.requests
    assert (sent.body["recipient"], sent.body["message"]) == ({"id": PSID}, {"text": "On its way!"})
    assert msg["delivery"]["provider_message_id"] == graph_api.accepted[0].mid
