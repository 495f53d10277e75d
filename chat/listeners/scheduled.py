"""Outbox handler: a scheduled message whose time has come goes out."""

from __future__ import annotations

from chat.db import models as m
from chat.services.conversations import Conversations
from connectors.errors import GiveUp


class ReleaseScheduled:
    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    async def __call__(self, entry: m.OutboxEntry) -> None:
        if not await self.conversations.release(entry.payload["message_id"], entry.payload.get("address")):
            raise GiveUp("message removed")
