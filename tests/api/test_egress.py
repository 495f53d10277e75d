"""Webhooks go to public addresses only, unless PARLEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from chat.services import egress
from chat.settings import Settings
from tests.api.test_webhooks import deliveries, eventually, send_hi, subscribe


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_networks": False})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost:8000/hook",
        "http://LOCALHOST./hook",
        "http://bot.localhost/hook",
    ],
)
def test_addresses_of_the_servers_own_networks_are_refused(url: str) -> None:
    assert egress.written_problem(url) is not None


@pytest.mark.parametrize("url", ["https://hooks.acme.com/parley", "http://8.8.8.8/x"])
def test_public_receivers_are_fine(url: str) -> None:
    assert egress.written_problem(url) is None


def resolving_to(address: str) -> Any:
    async def fake(host: str, port: int, **_kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return fake


async def test_a_name_that_resolves_inside_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", resolving_to("10.0.0.7"))
    problem = await egress.resolved_problem("https://hooks.acme.com/parley")
    assert problem is not None and "10.0.0.7" in problem
    monkeypatch.setattr(loop, "getaddrinfo", resolving_to("93.184.216.34"))
    assert await egress.resolved_problem("https://hooks.acme.com/parley") is None


async def test_subscribing_an_internal_url_is_422(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:6379/"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "url_not_allowed"
    assert (await api.get("/v1/webhooks")).json()["data"] == []


async def test_an_internal_notify_url_is_422_and_sends_nothing(api: httpx.AsyncClient) -> None:
    body = {
        "channel": "inapp",
        "to": {"address": "u1"},
        "content": {"type": "text", "text": "hi"},
        "notify_url": "http://169.254.169.254/latest",
    }
    r = await api.post("/v1/messages", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "url_not_allowed"
    assert (await api.get("/v1/conversations")).json()["data"] == []


async def test_a_delivery_to_a_name_resolving_inside_is_blocked_not_retried(
    api: httpx.AsyncClient, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolving_to("10.0.0.7"))
    sub = await subscribe(api, "https://hooks.acme.com/parley", events=["message.created"])
    await send_hi(api)
    page = await eventually(lambda: deliveries(api, sub), lambda p: len(p["data"]) == 1)
    [attempt] = page["data"]
    assert attempt["ok"] is False and attempt["status_code"] is None
    assert attempt["error"].startswith("blocked:") and "10.0.0.7" in attempt["error"]
    await runtime.worker.drain()
    final = await deliveries(api, sub)
    assert len(final["data"]) == 1 and final["data"][0]["delivery"]["state"] == "failed"
