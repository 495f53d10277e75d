"""Fixtures for real-time tests: customers and agents on the Python client against ``live_server``.

``customer(...)`` and ``agent(...)`` return connected clients and close them after the
test; ``make_agent_token()`` creates an agent of the live workspace and logs it in
over REST. ``custom_server(**settings)`` starts a second live server with other
settings (rate limits, ...), sharing the test's database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from parley_client import AgentClient, ParleyClient, user_hmac
from tests.conftest import LiveServer, start_server, test_settings

# Waits are bounded by this, never fixed sleeps.
TIMEOUT = 5.0


def fast(**options: Any) -> dict[str, Any]:
    """Client options for tests: quick reconnects and acks."""
    return {
        "reconnection_delay": 0.1,
        "reconnection_delay_max": 0.5,
        "ack_timeout": 10.0,
        **options,
    }


@pytest.fixture
async def clients(live_server: LiveServer, custom_server: Any) -> AsyncIterator[list[Any]]:
    """Clients to close after the test (before any server stops)."""
    opened: list[Any] = []
    yield opened
    for client in reversed(opened):
        await client.close()


CustomerFactory = Callable[..., Awaitable[ParleyClient]]
AgentFactory = Callable[..., Awaitable[AgentClient]]


@pytest.fixture
def customer(live_server: LiveServer, clients: list[Any]) -> CustomerFactory:
    """``await customer(external_id=..., server=..., connect=True, **options)``."""

    async def make(
        external_id: str | None = None,
        *,
        server: LiveServer | None = None,
        connect: bool = True,
        **options: Any,
    ) -> ParleyClient:
        srv = server or live_server
        if external_id is not None and "user" not in options and "user_token" not in options:
            options["user"] = {
                "external_id": external_id,
                "hmac": user_hmac(srv.workspace["identity_secret"], external_id),
            }
        client = ParleyClient(
            srv.url, options.pop("widget_key", srv.workspace["widget_key"]), **fast(**options)
        )
        clients.append(client)
        if connect:
            await client.connect()
        return client

    return make


@pytest.fixture
def make_agent_token(live_server: LiveServer) -> Callable[..., Awaitable[str]]:
    async def make(server: LiveServer | None = None, name: str = "Ada") -> str:
        srv = server or live_server
        email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
        _, password = await srv.services.agents.create(srv.workspace["workspace_id"], email, name)
        return await AgentClient.login(srv.url, email, password)

    return make


@pytest.fixture
def agent(live_server: LiveServer, clients: list[Any], make_agent_token: Any) -> AgentFactory:
    """``await agent(token=None, server=None, **options)``: a connected agent client."""

    async def make(
        token: str | None = None, *, server: LiveServer | None = None, **options: Any
    ) -> AgentClient:
        srv = server or live_server
        client = AgentClient(srv.url, token or await make_agent_token(srv), **fast(**options))
        clients.append(client)
        await client.connect()
        return client

    return make


@pytest.fixture
async def custom_server(db_url: str) -> AsyncIterator[Callable[..., Awaitable[LiveServer]]]:
    """Starts live servers with setting overrides; stops them after the test."""
    running: list[tuple[Any, Any, httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> LiveServer:
        server, task, inner, port = await start_server(test_settings(db_url, **overrides))
        url = f"http://127.0.0.1:{port}"
        keys = await inner.state.services.workspaces.create("Custom")
        http = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {keys['api_key']}"}, timeout=10
        )
        running.append((server, task, http))
        return LiveServer(url, port, inner, keys, http)

    yield start
    for server, task, http in running:
        await http.aclose()
        server.should_exit = True
        await task


async def post_reply(
    live: LiveServer, conversation_id: str, text: str, **extra: Any
) -> dict[str, Any]:
    """An agent reply over REST (``POST /v1/conversations/{id}/messages``)."""
    resp = await live.http.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"content": {"type": "text", "text": text}, "author": {"type": "agent"}, **extra},
    )
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


def text_of(event: dict[str, Any]) -> str | None:
    content = event["message"].get("content") or {}
    value = content.get("text")
    return value if isinstance(value, str) else None


def has_text(text: str) -> Callable[[dict[str, Any]], bool]:
    """Matches a ``message`` event whose text is ``text``."""
    return lambda event: text_of(event) == text
