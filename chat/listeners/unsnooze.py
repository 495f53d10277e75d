"""Outbox handler: a snoozed conversation's time is up, so it opens again."""

from __future__ import annotations

from chat.db import models as m
from chat.domain.errors import NotFound
from chat.services.inbox import Inbox


class Unsnooze:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def __call__(self, entry: m.OutboxEntry) -> None:
        # Nothing to do when it was reopened, resolved or deleted meanwhile.
        try:
            await self.inbox.wake(entry.workspace_id, entry.payload["conversation_id"])
        except NotFound:
            return
