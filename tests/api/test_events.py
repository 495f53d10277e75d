"""Trigger events over REST: recording, reading, filtering, webhooks, isolation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from chat.bus import DomainEvent
from chat.db import models as m
from chat.domain.ids import new_id
from chat.security import verify_webhook_signature
from tests.conftest import free_port


async def record(api: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/events", json={"name": name, **body})
    assert r.status_code == 201, r.text
    event: dict[str, Any] = r.json()
    return event


async def new_contact(api: httpx.AsyncClient) -> str:
    r = await api.post("/v1/contacts", json={"name": "Ada"})
    contact_id: str = r.json()["id"]
    return contact_id


def assert_invalid(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert any(field in d["loc"] for d in error["details"]), error["details"]


async def test_record_then_read_an_event(api: httpx.AsyncClient) -> None:
    contact_id = await new_contact(api)
    event = await record(
        api, "order.shipped", contact_id=contact_id, payload={"order": "A-17", "items": [1, 2]}
    )
    assert event["id"].startswith("ev_")
    assert (event["name"], event["contact_id"]) == ("order.shipped", contact_id)
    assert event["payload"] == {"order": "A-17", "items": [1, 2]}
    assert event["created_at"].endswith("Z")

    assert (await api.get(f"/v1/events/{event['id']}")).json() == event
    assert (await api.get("/v1/events")).json() == {"data": [event], "next_cursor": None}


async def test_an_event_needs_no_contact_nor_payload(api: httpx.AsyncClient) -> None:
    event = await record(api, "deploy.finished")
    assert (event["contact_id"], event["payload"]) == (None, {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Order.Shipped"}, "name"),
        ({"name": "order shipped"}, "name"),
        ({"name": "order..shipped"}, "name"),
        ({"name": ".order"}, "name"),
        ({"name": "order.shipped."}, "name"),
        ({"name": "a" * 201}, "name"),
        ({"name": ""}, "name"),
        ({}, "name"),
        ({"name": "order.shipped", "payload": [1, 2]}, "payload"),
        ({"name": "order.shipped", "contact_id": 5}, "contact_id"),
        ({"name": "order.shipped", "when": "now"}, "when"),
    ],
)
async def test_invalid_events_are_422(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_invalid(await api.post("/v1/events", json=body), field)


async def test_a_contact_outside_the_workspace_is_422_unknown_contact(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    foreign = await new_contact(other_api)
    for contact_id in ("ct_nope", foreign):
        r = await api.post("/v1/events", json={"name": "order.shipped", "contact_id": contact_id})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "unknown_contact"
    assert (await api.get("/v1/events")).json()["data"] == []


async def test_filters_by_name_prefix_and_contact(api: httpx.AsyncClient) -> None:
    ada, bob = await new_contact(api), await new_contact(api)
    shipped = await record(api, "order.shipped", contact_id=ada)
    paid = await record(api, "order.paid", contact_id=bob)
    signup = await record(api, "signup", contact_id=ada)
    underscore = await record(api, "orders_x.created")  # "_" is no wildcard for order.*

    async def names(query: str) -> set[str]:
        r = await api.get(f"/v1/events?{query}")
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["data"]}

    assert await names("name=order.shipped") == {shipped["id"]}
    assert await names("name=order.*") == {shipped["id"], paid["id"]}
    assert await names(f"contact_id={ada}") == {shipped["id"], signup["id"]}
    assert await names(f"name=order.*&contact_id={bob}") == {paid["id"]}
    assert await names("name=order") == set()
    assert await names("") == {shipped["id"], paid["id"], signup["id"], underscore["id"]}
    assert_invalid(await api.get("/v1/events?name=Order.*"), "name")
    assert_invalid(await api.get("/v1/events?name=%25"), "name")


async def test_cursor_pagination_walks_every_event_exactly_once(api: httpx.AsyncClient) -> None:
    created = [(await record(api, f"tick.n{i}"))["id"] for i in range(8)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await api.get("/v1/events", params=params)).json()
        seen += [e["id"] for e in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(created, reverse=True)  # each once, newest first


async def test_delete_an_event(api: httpx.AsyncClient) -> None:
    event = await record(api, "order.shipped")
    r = await api.delete(f"/v1/events/{event['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await api.get(f"/v1/events/{event['id']}")).status_code == 404
    assert (await api.delete(f"/v1/events/{event['id']}")).status_code == 404


async def test_another_workspace_sees_none_of_these_events(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    contact_id = await new_contact(api)
    event = await record(api, "order.shipped", contact_id=contact_id)
    for r in [
        await other_api.get(f"/v1/events/{event['id']}"),
        await other_api.delete(f"/v1/events/{event['id']}"),
    ]:
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for query in ("", "name=order.shipped", f"contact_id={contact_id}"):
        assert (await other_api.get(f"/v1/events?{query}")).json() == {
            "data": [],
            "next_cursor": None,
        }
    assert (await api.get(f"/v1/events/{event['id']}")).json() == event


async def test_events_need_a_key(client: httpx.AsyncClient) -> None:
    for r in [await client.get("/v1/events"), await client.post("/v1/events", json={"name": "a"})]:
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_recording_publishes_event_created_on_the_bus(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    seen: list[DomainEvent] = []

    async def listener(event: DomainEvent) -> None:
        seen.append(event)

    services.bus.subscribe(listener)
    event = await record(api, "order.shipped", payload={"order": "A-17"})
    assert [(e.type, e.workspace_id, e.data) for e in seen if e.type == "event.created"] == [
        ("event.created", workspace["workspace_id"], event)
    ]


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rcv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rcv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rcv.url = f"http://127.0.0.1:{port}/hook"
    yield rcv
    await runner.cleanup()


async def test_recording_sends_a_signed_event_created_webhook(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str], receiver: Receiver
) -> None:
    async with services.db.write() as session:
        session.add(
            m.WebhookSubscription(
                id=new_id("wh"),
                workspace_id=workspace["workspace_id"],
                url=receiver.url,
                secret="whsec-test",
                events=["event.*"],
                active=True,
            )
        )
    event = await record(api, "order.shipped", payload={"order": "A-17"})

    await asyncio.wait_for(receiver.arrived.wait(), timeout=10)
    [(headers, raw)] = receiver.calls
    assert verify_webhook_signature("whsec-test", raw, headers["X-Parley-Signature"])
    body = json.loads(raw)
    assert (body["type"], body["workspace_id"]) == ("event.created", workspace["workspace_id"])
    assert body["data"] == {"event": event}
