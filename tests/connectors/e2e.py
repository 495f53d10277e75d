"""What the connectors' end-to-end tests do through the real app: find the customer's
conversation, read it, reply as an agent (over REST, or over the ``/agent`` socket of a
live server), and run the worker until a message settles."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from chat.db import models as m
from chat.db.types import utcnow
from parley_client import AgentClient
from tests.conftest import LiveServer


async def only_conversation(api: httpx.AsyncClient, channel_id: str) -> dict[str, Any]:
    [conv] = (await api.get(f"/v1/conversations?channel={channel_id}")).json()["data"]
    return dict(conv)


async def messages_in(api: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (
        await api.get(f"/v1/conversations/{conversation_id}/messages")
    ).json()["data"]
    return data


async def messages_on(api: httpx.AsyncClient, channel_id: str) -> list[dict[str, Any]]:
    """Every message of every conversation on the channel."""
    convs = (await api.get(f"/v1/conversations?channel={channel_id}")).json()["data"]
    found: list[dict[str, Any]] = []
    for conv in convs:
        found += await messages_in(api, conv["id"])
    return found


async def agent_reply(
    api: httpx.AsyncClient, conversation_id: str, content: dict[str, Any] | str
) -> str:
    """An agent replies over REST; a string is a text message. The new message's id."""
    if isinstance(content, str):
        content = {"type": "text", "text": content}
    r = await api.post(f"/v1/conversations/{conversation_id}/messages", json={"content": content})
    assert r.status_code == 201, r.text
    message_id: str = r.json()["id"]
    return message_id


async def until_status(
    api: httpx.AsyncClient, runtime: Any, message_id: str, status: str | None = None
) -> dict[str, Any]:
    """Run the worker until the message reaches ``status`` (None: until it leaves
    ``queued``); retries wait their backoff."""
    async with asyncio.timeout(10):
        while True:
            await runtime.worker.drain()
            msg: dict[str, Any] = (await api.get(f"/v1/messages/{message_id}")).json()
            if msg["status"] == status or (status is None and msg["status"] != "queued"):
                return msg
            await asyncio.sleep(0.02)


async def customer_wrote(runtime: Any, conversation_id: str, ago: timedelta) -> None:
    """Set the conversation's customer-service clock: the customer's last message was ``ago``."""
    async with runtime.services.db.write() as session:
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conversation_id)
            .values(last_inbound_at=utcnow() - ago)
        )


@asynccontextmanager
async def agent_socket(server: LiveServer) -> AsyncIterator[AgentClient]:
    """A new agent of the live server's workspace, logged in and connected to ``/agent``."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    workspace_id = server.workspace["workspace_id"]
    _, password = await server.services.agents.create(workspace_id, email, "Ada")
    token = await AgentClient.login(server.url, email, password)
    agent = AgentClient(server.url, token, reconnection_delay=0.1, ack_timeout=10.0)
    await agent.connect()
    try:
        yield agent
    finally:
        await agent.close()


async def socket_reply_and_note(
    server: LiveServer, conversation_id: str, text: str
) -> tuple[str, str]:
    """An agent on ``/agent`` writes a private note, then replies ``text``. Each ack comes
    once the message is stored: REST reads it back at once. The ids (reply, note)."""
    async with agent_socket(server) as agent:
        note = await agent.send(conversation_id, "Internal: customer asked twice", private=True)
        reply = await agent.send(conversation_id, text)
    for sent in (note, reply):
        stored = (await server.http.get(f"/v1/messages/{sent['id']}")).json()
        assert (stored["conversation_id"], stored["seq"]) == (conversation_id, sent["seq"])
        assert stored["direction"] == "outbound" and stored["author"]["type"] == "agent"
    return reply["id"], note["id"]


async def note_stayed_inside(api: httpx.AsyncClient, runtime: Any, note_id: str) -> None:
    """A private note is never handed to a provider: no delivery, no attempt, even once
    the worker has run everything due."""
    await runtime.worker.drain()
    note: dict[str, Any] = (await api.get(f"/v1/messages/{note_id}")).json()
    assert note["private"] is True
    assert note["delivery"] is None and note["delivery_attempts"] == []
