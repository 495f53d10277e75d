"""``AgentClient``: an agent inbox on the ``/agent`` namespace.

token = await AgentClient.login(url, "ada@example.com", password)
agent = AgentClient(url, token)
await agent.connect()
event = await agent.wait_for("message")            # every message of the workspace
await agent.send(event["conversation_id"], "Hi, how can I help?")
"""

from __future__ import annotations

from typing import Any

import aiohttp

from parley_client.client import Content, new_client_message_id, text
from parley_client.connection import Connection
from parley_client.errors import ParleyError


class AgentClient(Connection):
    namespace = "/agent"

    def __init__(self, url: str, token: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.token = token
        self.agent: dict[str, Any] | None = None
        self.workspace_id: str | None = None

    @staticmethod
    async def login(url: str, email: str, password: str, workspace_id: str | None = None) -> str:
        """An agent token from ``POST /v1/auth/login``."""
        body: dict[str, Any] = {"email": email, "password": password}
        if workspace_id:
            body["workspace_id"] = workspace_id
        login = url.rstrip("/") + "/v1/auth/login"
        async with aiohttp.ClientSession() as http, http.post(login, json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise ParleyError(f"login failed ({resp.status}): {data}")
            return str(data["token"])

    def auth(self) -> dict[str, Any]:
        return {"token": self.token}

    def greeted(self, session: dict[str, Any]) -> None:
        self.agent = session.get("agent")
        self.workspace_id = session.get("workspace_id")

    async def send(
        self,
        conversation_id: str,
        content: Content,
        *,
        private: bool = False,
        client_message_id: str | None = None,
        message_tag: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Replies in a conversation (``private`` makes it a note only agents see;
        ``message_tag``, on Messenger, lets a reply out after the 24-hour window)."""
        data: dict[str, Any] = {
            "conversation_id": conversation_id,
            "client_message_id": client_message_id or new_client_message_id(),
            "content": text(content) if isinstance(content, str) else content,
            "private": private,
        }
        if message_tag is not None:
            data["message_tag"] = message_tag
        ack = await self.call_retrying("message", data, timeout)
        message: dict[str, Any] = ack["message"]
        return message

    async def typing(self, conversation_id: str, typing: bool = True) -> dict[str, Any]:
        return await self.call("typing", {"conversation_id": conversation_id, "typing": typing})

    async def read(self, conversation_id: str, seq: int) -> int:
        ack = await self.call("read", {"conversation_id": conversation_id, "seq": seq})
        return int(ack["seq"])

    async def assign(self, conversation_id: str, assignee: dict[str, str] | None) -> dict[str, Any]:
        """``assignee`` ``{"type": "agent"|"bot", "id"}``, or None to unassign."""
        ack = await self.call("assign", {"conversation_id": conversation_id, "assignee": assignee})
        conversation: dict[str, Any] = ack["conversation"]
        return conversation

    async def set_status(self, conversation_id: str, status: str) -> dict[str, Any]:
        ack = await self.call("status", {"conversation_id": conversation_id, "status": status})
        conversation: dict[str, Any] = ack["conversation"]
        return conversation

    async def presence(self) -> list[dict[str, Any]]:
        ack = await self.call("presence", {})
        online: list[dict[str, Any]] = ack["online"]
        return online
