"""Who a conversation belongs to: workspace, contact and channel type.

These never change once a conversation exists, so a bounded in-process cache answers
the hot paths (routing a status change to the contact's devices, checking that a
typing customer owns the conversation) without a query each time.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class ConversationRef:
    id: str
    workspace_id: str
    contact_id: str
    channel_type: str


class Directory:
    def __init__(self, db: Database, capacity: int = 50_000) -> None:
        self.db = db
        self.capacity = capacity
        self._refs: dict[str, ConversationRef] = {}

    async def conversation(
        self, workspace_id: str, conversation_id: str, *, contact_id: str | None = None
    ) -> ConversationRef:
        """The conversation's ref; NotFound if it is another workspace's (or, given
        ``contact_id``, another contact's)."""
        ref = self._refs.get(conversation_id)
        if ref is None:
            async with self.db.read() as session:
                row = await session.get(m.Conversation, conversation_id)
            if row is None:
                raise NotFound("conversation not found")
            ref = ConversationRef(row.id, row.workspace_id, row.contact_id, row.channel_type)
            self.remember(ref)
        if ref.workspace_id != workspace_id or (
            contact_id is not None and ref.contact_id != contact_id
        ):
            raise NotFound("conversation not found")
        return ref

    def remember(self, ref: ConversationRef) -> None:
        if len(self._refs) >= self.capacity:
            self._refs.pop(next(iter(self._refs)))  # the oldest entry
        self._refs[ref.id] = ref
