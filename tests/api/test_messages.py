from __future__ import annotations

from typing import Any

import httpx


async def send_text(api: httpx.AsyncClient, text: str = "hello", **extra: Any) -> httpx.Response:
    body = {"channel": "inapp", "to": {"address": "user-1"}, "content": {"type": "text", "text": text}}
    body.update(extra)
    return await api.post("/v1/messages", json=body)


async def test_send_inapp_then_read_conversation_back(api: httpx.AsyncClient) -> None:
    r = await send_text(api, "hi there", client_message_id="c1")
    assert r.status_code == 202, r.text
    [sent] = r.json()["messages"]
    assert sent["status"] == "sent"

    convs = (await api.get("/v1/conversations")).json()["data"]
    assert [c["id"] for c in convs] == [sent["conversation_id"]]

    history = (await api.get(f"/v1/conversations/{sent['conversation_id']}/messages")).json()["data"]
    assert [(m["seq"], m["content"]["text"]) for m in history] == [(1, "hi there")]

    msg = (await api.get(f"/v1/messages/{sent['message_id']}")).json()
    assert [h["status"] for h in msg["status_history"]] == ["sent"]
