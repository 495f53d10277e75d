"""The send-time rules through REST and the /agent socket, on SQLite and PostgreSQL: SMS
and voice go only to the workspace's countries, WhatsApp and Messenger free-form messages
only inside the customer-service window (or as templates, or with a Messenger tag), and
SMS messages carry their segment count. A refusal stores nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from chat.app import create_app
from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.channels import REGISTRY
from chat.domain.countries import DEFAULT_SEND_COUNTRIES
from chat.settings import Settings
from parley_client import AckError, AgentClient
from tests import conftest
from tests.api.test_channels import VALID
from tests.api.test_inbound import WA_SECRET, callback, post
from tests.fakes.connector import FakeVoice, FakeWhatsApp

TEXT = {"type": "text", "text": "Your order has shipped"}
TEMPLATE = {"type": "template", "name": "order_shipped", "language": "en_US"}
US, CANADA, PUERTO_RICO = "+14155550123", "+14165550123", "+17875550123"
BRAZIL, VIRGIN_ISLANDS, GERMANY = "+5511912345678", "+13405550123", "+4915112345678"
PSID = "5275811702471834"


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Nothing is delivered here: these tests are about what is stored, or refused.
    return conftest.test_settings(db_url, worker_enabled=False)


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


async def send(
    api: httpx.AsyncClient, channel_type: str, to: Any, content: dict[str, Any] = TEXT, **extra: Any
) -> httpx.Response:
    if isinstance(to, str):
        to = {"address": to}
    elif isinstance(to, list):
        to = [{"address": a} for a in to]
    body = {"channel": channel_type, "to": to, "content": content, **extra}
    return await api.post("/v1/messages", json=body)


async def reply(
    api: httpx.AsyncClient, conversation_id: str, content: dict[str, Any] = TEXT, **extra: Any
) -> httpx.Response:
    return await api.post(
        f"/v1/conversations/{conversation_id}/messages", json={"content": content, **extra}
    )


async def rows(services: Any) -> dict[str, int]:
    """How many rows each table the write path touches holds."""
    counts = {}
    async with services.db.read() as session:
        for model in (m.Contact, m.ContactIdentity, m.Conversation, m.Message, m.OutboxEntry):
            counts[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    return counts


async def customer_wrote(services: Any, conversation_id: str, ago: timedelta) -> None:
    """The customer's last message in the conversation was ``ago``."""
    async with services.db.write() as session:
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conversation_id)
            .values(last_inbound_at=utcnow() - ago)
        )


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


# -- countries --------------------------------------------------------------------------


async def test_a_workspace_starts_with_the_default_countries(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/workspace/countries")
    assert r.status_code == 200
    assert r.json() == {"countries": sorted(DEFAULT_SEND_COUNTRIES), "default": True}


async def test_sms_to_a_country_off_the_list_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, services: Any
) -> None:
    await channel(api, "sms")
    before = await rows(services)
    for number, country in ((BRAZIL, "BR"), (VIRGIN_ISLANDS, "VI")):
        error = error_of(await send(api, "sms", number))
        assert error["code"] == "country_not_allowed"
        assert error["details"] == [
            {"recipient": 0, "code": "country_not_allowed", "address": number, "country": country}
        ]
        assert country in error["message"]
    assert await rows(services) == before
    assert (await api.get("/v1/conversations")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_plus_one_numbers_go_by_their_own_country(api: httpx.AsyncClient) -> None:
    await channel(api, "sms")
    for number in (US, CANADA, PUERTO_RICO):
        r = await send(api, "sms", number)
        assert r.status_code == 202, (number, r.text)
    r = await api.put("/v1/workspace/countries", json={"countries": ["US"]})
    assert r.status_code == 200
    assert error_of(await send(api, "sms", CANADA))["code"] == "country_not_allowed"
    assert error_of(await send(api, "sms", PUERTO_RICO))["code"] == "country_not_allowed"
    assert (await send(api, "sms", US)).status_code == 202


async def test_voice_is_restricted_like_sms(api: httpx.AsyncClient) -> None:
    await channel(api, "voice")
    assert error_of(await send(api, "voice", BRAZIL))["code"] == "country_not_allowed"
    assert (await send(api, "voice", GERMANY)).status_code == 202


async def test_a_batch_with_one_refused_country_is_refused_whole_naming_it(
    api: httpx.AsyncClient, services: Any
) -> None:
    await channel(api, "sms")
    before = await rows(services)
    error = error_of(await send(api, "sms", [US, BRAZIL, GERMANY, VIRGIN_ISLANDS]))
    assert error["code"] == "invalid_recipients"
    assert error["details"] == [
        {"recipient": 1, "code": "country_not_allowed", "address": BRAZIL, "country": "BR"},
        {"recipient": 3, "code": "country_not_allowed", "address": VIRGIN_ISLANDS, "country": "VI"},
    ]
    assert await rows(services) == before


async def test_the_list_is_edited_validated_and_reset(api: httpx.AsyncClient) -> None:
    await channel(api, "sms")
    r = await api.put("/v1/workspace/countries", json={"countries": ["br", "US", "us"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"countries": ["BR", "US"], "default": False}
    assert (await api.get("/v1/workspace/countries")).json() == r.json()
    assert (await send(api, "sms", BRAZIL)).status_code == 202
    assert error_of(await send(api, "sms", GERMANY))["code"] == "country_not_allowed"

    r = await api.put("/v1/workspace/countries", json={"countries": ["US", "XX", "UK"]})
    error = error_of(r)
    assert error["code"] == "validation_error"
    named = {(tuple(d["loc"]), d["msg"]) for d in error["details"]}
    assert {loc for loc, _ in named} == {("countries", 1), ("countries", 2)}
    assert any("'XX'" in msg for _, msg in named) and any("'UK'" in msg for _, msg in named)
    assert (await api.get("/v1/workspace/countries")).json()["countries"] == ["BR", "US"]

    r = await api.put("/v1/workspace/countries", json={"countries": []})
    assert r.json() == {"countries": [], "default": False}
    assert error_of(await send(api, "sms", US))["code"] == "country_not_allowed"

    r = await api.delete("/v1/workspace/countries")
    assert r.status_code == 200
    assert r.json() == {"countries": sorted(DEFAULT_SEND_COUNTRIES), "default": True}
    assert (await send(api, "sms", GERMANY)).status_code == 202


async def test_each_workspace_has_its_own_list(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await api.put("/v1/workspace/countries", json={"countries": ["US"]})
    assert (await other_api.get("/v1/workspace/countries")).json()["default"] is True


async def test_only_admins_and_api_keys_change_the_list(
    app: Any, api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    _, password = await services.agents.create(workspace["workspace_id"], email, "Walker")
    login = await api.post("/v1/auth/login", json={"email": email, "password": password})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    r = await api.get("/v1/workspace/countries", headers=headers)
    assert r.status_code == 200
    r = await api.put("/v1/workspace/countries", json={"countries": ["US"]}, headers=headers)
    assert r.status_code == 403
    assert (await api.delete("/v1/workspace/countries", headers=headers)).status_code == 403
    assert (await api.get("/v1/workspace/countries")).json()["default"] is True


async def test_a_reply_in_a_conversation_goes_by_the_contacts_number(
    api: httpx.AsyncClient, services: Any
) -> None:
    await channel(api, "sms")
    conv = (await send(api, "sms", CANADA)).json()["messages"][0]["conversation_id"]
    assert (await reply(api, conv)).status_code == 201
    await api.put("/v1/workspace/countries", json={"countries": ["US"]})
    before = await rows(services)
    error = error_of(await reply(api, conv))
    assert error["code"] == "country_not_allowed"
    assert error["details"][0]["country"] == "CA"
    assert await rows(services) == before
    # A private note never leaves: no country applies.
    assert (await reply(api, conv, private=True)).status_code == 201


# -- the customer-service window --------------------------------------------------------


async def test_a_first_whatsapp_message_must_be_a_template(
    api: httpx.AsyncClient, services: Any
) -> None:
    await channel(api, "whatsapp")
    before = await rows(services)
    error = error_of(await send(api, "whatsapp", US))
    assert error["code"] == "template_required"
    assert error["details"][0]["last_inbound_at"] is None
    assert await rows(services) == before
    r = await send(api, "whatsapp", US, TEMPLATE)
    assert r.status_code == 202, r.text
    conv = r.json()["messages"][0]["conversation_id"]
    assert error_of(await reply(api, conv))["code"] == "template_required"
    assert (await reply(api, conv, TEMPLATE)).status_code == 201


async def test_the_customers_message_opens_the_window_for_24_hours(
    client: httpx.AsyncClient, api: httpx.AsyncClient, services: Any
) -> None:
    wa = await channel(api, "whatsapp")
    body, headers = callback(WA_SECRET, [{"id": "wamid.in1", "from": "14155550123", "text": "hi"}])
    assert (await post(client, wa, body, headers)).status_code == 200
    [conv] = (await api.get(f"/v1/conversations?channel={wa}")).json()["data"]
    r = await reply(api, conv["id"])
    assert r.status_code == 201, r.text
    assert (await send(api, "whatsapp", US)).status_code == 202  # the unified send too

    await customer_wrote(services, conv["id"], timedelta(hours=23, minutes=59))
    assert (await reply(api, conv["id"])).status_code == 201
    await customer_wrote(services, conv["id"], timedelta(hours=24, minutes=1))
    before = await rows(services)
    error = error_of(await reply(api, conv["id"]))
    assert error["code"] == "template_required"
    assert error["details"][0]["window_hours"] == 24
    assert await rows(services) == before
    assert (await reply(api, conv["id"], private=True)).status_code == 201  # a note is no send

    # The customer writes again: the window is open again.
    body, headers = callback(WA_SECRET, [{"id": "wamid.in2", "from": "14155550123", "text": "?"}])
    assert (await post(client, wa, body, headers)).status_code == 200
    assert (await reply(api, conv["id"])).status_code == 201


async def test_a_scheduled_message_must_fall_inside_the_window(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa = await channel(api, "whatsapp")
    body, headers = callback(WA_SECRET, [{"id": "wamid.in1", "from": "14155550123", "text": "hi"}])
    assert (await post(client, wa, body, headers)).status_code == 200
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    late = (utcnow() + timedelta(hours=25)).isoformat()
    assert (await send(api, "whatsapp", US, send_at=soon)).status_code == 202
    assert error_of(await send(api, "whatsapp", US, send_at=late))["code"] == "template_required"
    assert (await send(api, "whatsapp", US, TEMPLATE, send_at=late)).status_code == 202


async def test_messenger_takes_a_message_tag_outside_the_window(
    api: httpx.AsyncClient, services: Any
) -> None:
    await channel(api, "messenger")
    before = await rows(services)
    error = error_of(await send(api, "messenger", PSID))
    assert error["code"] == "template_required"
    assert "HUMAN_AGENT" in error["message"]
    # HUMAN_AGENT answers a customer who wrote within 7 days: this one never did.
    error = error_of(await send(api, "messenger", PSID, message_tag="HUMAN_AGENT"))
    assert error["code"] == "template_required" and error["details"][0]["window_hours"] == 168
    assert await rows(services) == before

    r = await send(api, "messenger", PSID, message_tag="ACCOUNT_UPDATE")
    assert r.status_code == 202, r.text
    sent = r.json()["messages"][0]
    assert (await api.get(f"/v1/messages/{sent['message_id']}")).json()["message_tag"] == "ACCOUNT_UPDATE"

    conv = sent["conversation_id"]
    await customer_wrote(services, conv, timedelta(days=3))
    assert error_of(await reply(api, conv))["code"] == "template_required"
    r = await reply(api, conv, message_tag="HUMAN_AGENT")
    assert r.status_code == 201, r.text
    assert r.json()["message_tag"] == "HUMAN_AGENT"
    await customer_wrote(services, conv, timedelta(days=7, hours=1))
    assert error_of(await reply(api, conv, message_tag="HUMAN_AGENT"))["code"] == "template_required"
    assert (await reply(api, conv, message_tag="POST_PURCHASE_UPDATE")).status_code == 201


async def test_a_message_tag_is_checked_against_the_channel_type(api: httpx.AsyncClient) -> None:
    await channel(api, "whatsapp")
    error = error_of(await send(api, "whatsapp", US, TEMPLATE, message_tag="HUMAN_AGENT"))
    assert error["code"] == "message_tag_not_supported"
    assert error["details"][0]["channel_type"] == "whatsapp"
    error = error_of(await send(api, "whatsapp", US, TEMPLATE, message_tag="SHIPPING_UPDATE"))
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == ["message_tag"]


async def test_inapp_has_no_window_and_no_segments(api: httpx.AsyncClient) -> None:
    r = await send(api, "inapp", "user-1")
    assert r.status_code == 202
    msg = (await api.get(f"/v1/messages/{r.json()['messages'][0]['message_id']}")).json()
    assert msg["segments"] is None and msg["message_tag"] is None


async def test_an_agent_on_the_socket_gets_the_same_refusal_as_an_ack_error(
    live_server: conftest.LiveServer,
) -> None:
    api, services = live_server.http, live_server.services
    await channel(api, "whatsapp")
    conv = (await send(api, "whatsapp", US, TEMPLATE)).json()["messages"][0]["conversation_id"]
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    _, password = await services.agents.create(live_server.workspace["workspace_id"], email, "Ada")
    inbox = AgentClient(live_server.url, await AgentClient.login(live_server.url, email, password))
    await inbox.connect()
    try:
        before = await rows(services)
        ack = await inbox.request(
            "message", {"conversation_id": conv, "client_message_id": "a1", "content": TEXT}
        )
        assert ack["ok"] is False
        assert ack["error"]["code"] == "template_required"
        assert await rows(services) == before
        with pytest.raises(AckError) as refused:
            await inbox.send(conv, TEMPLATE, message_tag="HUMAN_AGENT")
        assert refused.value.code == "message_tag_not_supported"
        assert await rows(services) == before
        sent = await inbox.send(conv, TEMPLATE)
        assert sent["content"]["name"] == "order_shipped" and sent["segments"] is None
    finally:
        await inbox.close()


# -- SMS segments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("{" * 80, 1), ("€" * 81, 2), ("ж" * 70, 1), ("😀" * 36, 2)],
)
async def test_an_sms_carries_its_segment_count(
    api: httpx.AsyncClient, text: str, segments: int
) -> None:
    await channel(api, "sms")
    r = await send(api, "sms", US, {"type": "text", "text": text})
    assert r.status_code == 202, r.text
    sent = r.json()["messages"][0]
    msg = (await api.get(f"/v1/messages/{sent['message_id']}")).json()
    assert msg["segments"] == segments
    history = (await api.get(f"/v1/conversations/{sent['conversation_id']}/messages")).json()
    assert history["data"][-1]["segments"] == segments
