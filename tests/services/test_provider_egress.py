"""A connector's HTTP client reaches its provider, and nothing private beyond it."""

from __future__ import annotations

import httpx
import pytest

from chat.services.provider_egress import GuardedTransport, provider_origins
from connectors.errors import GiveUp


def answered() -> tuple[GuardedTransport, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text="ok")

    return GuardedTransport(httpx.MockTransport(handler)), seen


async def test_the_channels_own_provider_is_reached_even_on_a_private_address() -> None:
    guard, seen = answered()
    async with httpx.AsyncClient(transport=guard) as http:
        with provider_origins({"api_base_url": "http://127.0.0.1:8123/v1", "token_url": "http://10.0.0.5/token"}):
            assert (await http.get("http://127.0.0.1:8123/v1/send")).status_code == 200
            assert (await http.post("http://10.0.0.5:80/token")).status_code == 200
    assert seen == ["http://127.0.0.1:8123/v1/send", "http://10.0.0.5/token"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9999/secret.png",  # same host as the provider, another port
        "http://localhost/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8123/v1/send",
        "http://192.168.1.10/x.jpg",
    ],
)
async def test_anything_else_private_is_refused_for_good_and_never_requested(url: str) -> None:
    guard, seen = answered()
    async with httpx.AsyncClient(transport=guard) as http:
        with provider_origins({"api_base_url": "http://127.0.0.1:8123/v1"}), pytest.raises(
            GiveUp
        ) as refused:
            await http.get(url)
    assert refused.value.code == "url_not_allowed"
    assert seen == []


async def test_public_addresses_pass_and_the_allowance_ends_with_the_send() -> None:
    guard, seen = answered()
    async with httpx.AsyncClient(transport=guard) as http:
        assert (await http.get("http://93.184.216.34/cat.png")).status_code == 200
        with provider_origins({"api_base_url": "http://127.0.0.1:8123"}):
            await http.get("http://127.0.0.1:8123/ok")
        with pytest.raises(GiveUp):
            await http.get("http://127.0.0.1:8123/ok")
    assert seen == ["http://93.184.216.34/cat.png", "http://127.0.0.1:8123/ok"]


async def test_a_redirect_into_the_private_network_is_refused_at_that_hop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/creds"})
        return httpx.Response(200, text="leaked")

    async with httpx.AsyncClient(transport=GuardedTransport(httpx.MockTransport(handler))) as http:
        with pytest.raises(GiveUp, match="169.254.169.254"):
            await http.get("http://93.184.216.34/cat.png", follow_redirects=True)
