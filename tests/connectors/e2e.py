"""What the connectors' end-to-end tests do through the real app: find the customer's
conversation, read it, reply as an agent, and run the worker until a message settles."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from chat.db import models as m
from chat.db.types import utcnow


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
