"""Provider callbacks on ``/webhooks/{channel_id}``, through a test connector in a registry
of the test's own (tests/fakes/connector.py), against the real app on both databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chat.app import create_app
from chat.domain.channels import REGISTRY, Registry
from chat.settings import Settings
from tests import conftest
from tests.api.test_channels import VALID
from tests.fakes.connector import FakeVoice, FakeWhatsApp, sign

MAX_BODY = 64 * 1024
WA_SECRET = VALID["whatsapp"]["app_secret"]
VOICE_SECRET = VALID["voice"]["auth_token"]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return conftest.test_settings(db_url, max_body_bytes=MAX_BODY)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    registry = REGISTRY.with_connector(FakeWhatsApp).with_connector(FakeVoice)
    application = create_app(settings, registry=registry)
    async with application.router.lifespan_context(application):
        yield application


async def channel(api: httpx.AsyncClient, type_: str) -> str:
    r = await api.post("/v1/channels", json={"type": type_, "name": type_, "config": VALID[type_]})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


def callback(
    secret: str, messages: list[dict[str, Any]], statuses: list[dict[str, Any]] | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"messages": messages, "statuses": statuses or []}).encode()
    return body, {"content-type": "application/json", "x-test-signature": sign(secret, body)}


async def post(
    client: httpx.AsyncClient, channel_id: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)


async def history(api: httpx.AsyncClient, channel_id: str) -> list[dict[str, Any]]:
    """Every message of every conversation on the channel, oldest conversation first."""
    convs = (await api.get(f"/v1/conversations?channel={channel_id}")).json()["data"]
    found = []
    for conv in sorted(convs, key=lambda c: c["id"]):
        r = await api.get(f"/v1/conversations/{conv['id']}/messages")
        found += r.json()["data"]
    return found


async def test_a_signed_message_is_stored_and_is_in_the_history(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    body, headers = callback(
        WA_SECRET, [{"id": "wamid.1", "from": "14155550100", "text": "hello", "name": "Ann"}]
    )
    r = await post(client, wa, body, headers)
    assert r.status_code == 200, r.text

    [message] = await history(api, wa)
    assert message["direction"] == "inbound"
    assert message["content"] == {"type": "text", "text": "hello"}
    assert message["author"]["type"] == "contact"
    assert message["client_message_id"] == f"{wa}:wamid.1"
    # The Cloud API's wa_id has no "+": stored in E.164, and it is the new contact's phone.
    [contact] = (await api.get("/v1/contacts?phone=%2B14155550100")).json()["data"]
    assert contact["id"] == message["author"]["id"]
    assert contact["name"] == "Ann"
    assert [(i["channel_type"], i["address"]) for i in contact["identities"]] == [
        ("whatsapp", "+14155550100")
    ]


async def test_a_second_message_from_the_same_sender_joins_the_same_contact_and_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    for n, sender in enumerate(["14155550100", "whatsapp:+1 415 555 0100"]):
        body, headers = callback(WA_SECRET, [{"id": f"wamid.{n}", "from": sender, "text": "hi"}])
        assert (await post(client, wa, body, headers)).status_code == 200
    messages = await history(api, wa)
    assert [m["seq"] for m in messages] == [1, 2]
    assert len({m["conversation_id"] for m in messages}) == 1
    assert len({m["author"]["id"] for m in messages}) == 1


async def test_a_voice_caller_becomes_a_contact_with_that_phone(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    voice = await channel(api, "voice")
    body, headers = callback(VOICE_SECRET, [{"id": "CA1", "from": "+44 20 7946 0958", "text": "1"}])
    assert (await post(client, voice, body, headers)).status_code == 200
    [contact] = (await api.get("/v1/contacts?phone=%2B442079460958")).json()["data"]
    assert contact["identities"][0]["address"] == "+442079460958"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-test-signature": sign("not-the-app-secret", b"x")},
        {},
    ],
    ids=["bad signature", "unsigned"],
)
async def test_a_callback_that_fails_verification_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    wa = await channel(api, "whatsapp")
    body, _ = callback(WA_SECRET, [{"id": "wamid.1", "from": "14155550100", "text": "hello"}])
    r = await post(client, wa, body, {"content-type": "application/json", **headers})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "webhook_rejected"
    assert await history(api, wa) == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_a_provider_retry_is_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    body, headers = callback(WA_SECRET, [{"id": "wamid.1", "from": "14155550100", "text": "hi"}])
    for _ in range(3):
        assert (await post(client, wa, body, headers)).status_code == 200
    # and repeats arriving at the same moment
    answers = await asyncio.gather(*(post(client, wa, body, headers) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    [message] = await history(api, wa)
    assert message["client_message_id"] == f"{wa}:wamid.1"


async def test_the_same_provider_id_on_two_channels_is_two_messages(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    first, second = await channel(api, "whatsapp"), await channel(api, "whatsapp")
    body, headers = callback(WA_SECRET, [{"id": "wamid.1", "from": "14155550100", "text": "hi"}])
    for wa in (first, second):
        assert (await post(client, wa, body, headers)).status_code == 200
        assert len(await history(api, wa)) == 1


async def test_a_verification_handshake_is_answered(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    r = await client.get(f"/webhooks/{wa}", params={"challenge": "1158201444", "token": WA_SECRET})
    assert r.status_code == 200
    assert r.text == "1158201444"
    r = await client.get(f"/webhooks/{wa}", params={"challenge": "1158201444", "token": "guess"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "webhook_rejected"


async def test_an_unknown_channel_is_404(client: httpx.AsyncClient) -> None:
    for r in (
        await client.post("/webhooks/ch_nope", content=b"{}"),
        await client.get("/webhooks/ch_nope"),
    ):
        assert r.status_code == 404
        assert r.json() == {
            "error": {"code": "not_found", "message": "channel not found", "details": None}
        }


# A valid recipient address on the types that may be unserved.
SAMPLE_ADDRESS = {"email": "ada@example.com"}


def unserved_provider_type(registry: Registry) -> str:
    """A provider type that no connector serves in ``registry``."""
    unserved = [s.type for s in registry if s.connector is None and s.receives_webhooks]
    if not unserved:
        pytest.skip("every provider type has a connector")
    return unserved[0]


@pytest.mark.parametrize("kind", ["inapp", "provider"])
async def test_a_channel_type_without_a_connector_is_not_supported(
    client: httpx.AsyncClient, api: httpx.AsyncClient, services: Any, kind: str
) -> None:
    type_ = "inapp" if kind == "inapp" else unserved_provider_type(services.registry)
    ch = await channel(api, type_)
    body, headers = callback("x", [{"id": "SM1", "from": "+14155550100", "text": "hi"}])
    r = await post(client, ch, body, headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "channel_not_supported"
    assert f"'{type_}' channels do not take provider callbacks" in error["message"]
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_a_body_over_the_limit_is_413(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    text = "x" * MAX_BODY
    body, headers = callback(WA_SECRET, [{"id": "wamid.1", "from": "14155550100", "text": text}])
    r = await post(client, wa, body, headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert await history(api, wa) == []


async def test_a_sender_that_is_not_an_address_of_the_type_stores_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    body, headers = callback(
        WA_SECRET,
        [
            {"id": "wamid.1", "from": "14155550100", "text": "fine"},
            {"id": "wamid.2", "from": "not a number", "text": "broken"},
        ],
    )
    r = await post(client, wa, body, headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_address"
    assert await history(api, wa) == []


async def test_a_status_for_an_unknown_provider_message_is_answered_and_messages_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    """Statuses are applied (tests/test_pipeline.py follows one end to end); one about a
    message Parley never sent changes nothing, and the callback's messages are stored once."""
    wa = await channel(api, "whatsapp")
    body, headers = callback(
        WA_SECRET,
        [{"id": "wamid.1", "from": "14155550100", "text": "hi"}],
        [{"id": "wamid.out", "status": "delivered"}],
    )
    for _ in range(2):
        r = await post(client, wa, body, headers)
        assert r.status_code == 200, r.text
    assert len(await history(api, wa)) == 1


async def test_a_type_is_sendable_once_the_registry_gives_it_a_connector(
    api: httpx.AsyncClient,
) -> None:
    await channel(api, "whatsapp")
    r = await api.post(
        "/v1/messages",
        json={
            "channel": "whatsapp",
            "to": {"address": "+14155550100"},
            # A first message is outside the customer-service window: a template.
            "content": {"type": "template", "name": "hello_world", "language": "en_US"},
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["messages"][0]["status"] == "queued"


async def test_without_a_connector_a_send_is_refused_and_nothing_queued(db_url: str) -> None:
    """The production registry, on a type no connector serves yet."""
    type_ = unserved_provider_type(REGISTRY)
    application = create_app(conftest.test_settings(db_url))
    async with application.router.lifespan_context(application):
        services = application.state.services
        keys = await services.workspaces.create("Plain")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://parley.test",
            headers={"Authorization": f"Bearer {keys['api_key']}"},
        ) as api:
            unserved = await channel(api, type_)
            r = await api.post(
                "/v1/messages",
                json={
                    "channel": type_,
                    "to": {"address": SAMPLE_ADDRESS.get(type_, "+14155550100")},
                    "content": {"type": "text", "text": "hi"},
                },
            )
            assert r.status_code == 422
            assert r.json()["error"]["code"] == "channel_not_supported"
            assert await history(api, unserved) == []


async def test_the_callback_route_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    route = spec["paths"]["/webhooks/{channel_id}"]
    assert {"get", "post"} <= set(route)
    assert {"401", "404", "413", "422"} <= set(route["post"]["responses"])
    assert "security" not in route["post"]


async def test_a_verified_callback_that_cannot_be_parsed_is_answered_200_and_kept(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    """The provider would retry a 500 forever; the body is kept as an event to inspect."""
    wa = await channel(api, "whatsapp")
    body = b"{not json"
    headers = {"content-type": "application/json", "x-test-signature": sign(WA_SECRET, body)}
    r = await post(client, wa, body, headers)
    assert r.status_code == 200, r.text
    assert await history(api, wa) == []
    events = (await api.get("/v1/events")).json()["data"]
    [kept] = [e for e in events if e["name"] == "webhook.unparsed"]
    assert kept["payload"]["channel_id"] == wa and kept["payload"]["body"] == "{not json"
