"""One message through the whole pipeline: a customer writes in on a provider channel,
an agent replies, the worker hands the reply to the connector (a real local fake of the
provider), and the provider's status callbacks move it forward, never back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from chat.app import create_app
from chat.domain.channels import REGISTRY
from chat.settings import Settings
from connectors.base import Outbound, SendResult
from tests import conftest
from tests.api.test_channels import VALID
from tests.api.test_inbound import WA_SECRET, callback, post
from tests.fakes.connector import FakeWhatsApp
from tests.fakes.provider import TOKEN, Fail, FakeConnector, FakeProvider


class SendingWhatsApp(FakeWhatsApp):
    """The signed test connector, sending through the fake provider's HTTP API."""

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        super().__init__(config, http)
        self.sender = FakeConnector({"api_base_url": config["api_base_url"], "bot_token": TOKEN}, http)

    async def send(self, message: Outbound) -> SendResult:
        return await self.sender.send(message)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    fake = await FakeProvider().start()
    yield fake
    await fake.stop()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return conftest.test_settings(db_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings, registry=REGISTRY.with_connector(SendingWhatsApp))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_reply_goes_out_through_the_connector_and_provider_statuses_move_it_forward(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, provider: FakeProvider
) -> None:
    config = {**VALID["whatsapp"], "api_base_url": provider.url}
    r = await api.post("/v1/channels", json={"type": "whatsapp", "name": "WA", "config": config})
    assert r.status_code == 201, r.text
    wa = r.json()["id"]
    body, headers = callback(WA_SECRET, [{"id": "wamid.in1", "from": "14155550100", "text": "hi"}])
    assert (await post(client, wa, body, headers)).status_code == 200
    [conv] = (await api.get(f"/v1/conversations?channel={wa}")).json()["data"]

    reply = await api.post(f"/v1/conversations/{conv['id']}/messages", json={"content": {"type": "text", "text": "hello Ann"}})
    assert reply.status_code == 201, reply.text
    assert reply.json()["status"] == "queued" and reply.json()["seq"] == 2
    await runtime.worker.drain()

    [sent] = provider.accepted
    assert (sent.to, sent.text, sent.idempotency_key) == ("+14155550100", "hello Ann", reply.json()["id"])
    msg = (await api.get(f"/v1/messages/{reply.json()['id']}")).json()
    assert msg["status"] == "sent"
    assert msg["delivery"]["provider_message_id"] == sent.provider_message_id
    assert msg["delivery"]["address"] == "+14155550100"

    for status in ("read", "delivered", "sent"):  # a late delivered or sent never moves it back
        body, headers = callback(WA_SECRET, [], [{"id": sent.provider_message_id, "status": status}])
        assert (await post(client, wa, body, headers)).status_code == 200
    msg = (await api.get(f"/v1/messages/{reply.json()['id']}")).json()
    assert msg["status"] == "read"
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "read"]


async def test_a_permanent_provider_error_fails_the_reply_with_the_providers_reason(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, provider: FakeProvider
) -> None:
    config = {**VALID["whatsapp"], "api_base_url": provider.url}
    wa = (await api.post("/v1/channels", json={"type": "whatsapp", "name": "WA", "config": config})).json()["id"]
    # The business writes first, so outside the customer-service window: a template.
    template = {"type": "template", "name": "order_update", "language": "en"}
    sent = await api.post("/v1/messages", json={
        "channel": "whatsapp", "to": {"address": "+14155550123"}, "content": template,
    })
    assert sent.status_code == 202, sent.text
    assert wa
    provider.respond(Fail(400, "131026", "Message undeliverable"))
    await runtime.worker.drain()
    msg = (await api.get(f"/v1/messages/{sent.json()['messages'][0]['message_id']}")).json()
    assert msg["status"] == "failed"
    assert msg["status_history"][-1]["detail"]["code"] == "131026"
    assert msg["delivery_attempts"][-1]["error_code"] == "131026"
