"""The columns of rows the Core write paths insert many at a time (one statement per table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class WorkRow(TypedDict):
    """An ``outbox`` row (``work.work_row``)."""

    id: str
    workspace_id: str
    kind: str
    ref_id: str | None
    lane: str | None
    payload: dict[str, Any]  # the work's own JSON: each kind reads its own keys
    state: str
    attempts: int
    due_at: datetime
    lease_until: datetime | None
    claim: str | None
    last_error: str | None
    created_at: datetime


class StatusRow(TypedDict):
    """A ``message_status_events`` row (``statuses.status_row``)."""

    id: str
    message_id: str
    status: str
    detail: Any  # whatever the move was told: who acknowledged, the provider's error
    created_at: datetime


class MessageValues(TypedDict):
    """A new ``messages`` row (``message_store.message_values``)."""

    id: str
    workspace_id: str
    conversation_id: str
    seq: int | None
    direction: str
    author_type: str
    author_id: str | None
    content: dict[str, Any]
    status: str
    private: bool
    client_message_id: str | None
    correlation_id: str | None
    callback_data: Any
    notify_url: str | None
    send_at: datetime | None
    segments: int | None
    message_tag: str | None
    created_at: datetime
    updated_at: datetime
