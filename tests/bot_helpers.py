"""What the bot runtime's tests do through the real app: attach a bot, speak as a customer,
run the worker, read the conversation and the bot's turns."""

from __future__ import annotations

from typing import Any

import httpx

from chat.domain.enums import Direction
from chat.services.conversations import NewMessage, Posted

BRAIN = "tests.fakes.brains:brain"


async def attach_bot(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A python bot running ``tests.fakes.brains:brain``, on every channel by default."""
    body = {"name": "Helper", "kind": "python", "config": {"path": BRAIN}, **fields}
    r = await api.post("/v1/bots", json=body)
    assert r.status_code == 201, r.text
    bot: dict[str, Any] = r.json()
    return bot


async def customer_says(
    services: Any, workspace_id: str, text: str, who: str = "visitor-1", channel_type: str = "inapp"
) -> Posted:
    """A customer's message, stored as the /client socket stores it."""
    posted: Posted = await services.conversations.post_message(
        NewMessage(
            workspace_id=workspace_id,
            content={"type": "text", "text": text},
            direction=Direction.INBOUND,
            author_type="contact",
            channel_type=channel_type,
            address=who,
        )
    )
    return posted


async def history(api: httpx.AsyncClient, conversation_id: str) -> list[tuple[str, str]]:
    """(author type, text) of each message, in seq order."""
    r = await api.get(f"/v1/conversations/{conversation_id}/messages")
    assert r.status_code == 200, r.text
    return [(m["author"]["type"], m["content"].get("text", "")) for m in r.json()["data"]]


async def turns(api: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/conversations/{conversation_id}/bot-turns")
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def conversation(api: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    conv: dict[str, Any] = r.json()
    return conv
