"""Response shapes shared by several endpoints, and the one error shape.

They document what the views in ``chat.services.views`` produce; a response may carry
more fields than these name (the schemas allow additional properties), never fewer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chat.domain.enums import ConversationStatus, MessageStatus


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable, e.g. validation_error")
    message: str = Field(description="for people")
    details: Any = Field(default=None, description="more about the error, or null")


class ErrorBody(BaseModel):
    """Every error, whatever the status."""

    error: ErrorDetail


class Party(BaseModel):
    type: str = Field(description="contact, agent, bot or system")
    id: str | None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int | None = Field(description="null while scheduled: the seq comes at release")
    direction: str = Field(description="inbound or outbound")
    author: Party
    content: dict[str, Any] = Field(description="text, media, template, buttons or location")
    status: MessageStatus
    private: bool
    client_message_id: str | None
    correlation_id: str | None
    callback_data: Any = None
    segments: int | None = Field(
        default=None,
        description="SMS parts the text takes on an sms channel (GSM-7: 160, or 153 per part "
        "when longer; UCS-2: 70, or 67 per part); null on other channels and for non-text content",
    )
    message_tag: str | None = Field(
        default=None, description="the provider message tag it was sent with (Messenger), or null"
    )
    send_at: str | None
    created_at: str


class Assignment(BaseModel):
    type: str = Field(description="agent or bot")
    id: str


class ConversationOut(BaseModel):
    id: str
    contact_id: str
    channel_id: str
    channel_type: str
    status: ConversationStatus
    assignee: Assignment | None
    team: str | None = Field(description="the agents' team it is queued for; null: everyone's")
    last_seq: int
    last_message_at: str | None
    created_at: str
    updated_at: str


class StatusChange(BaseModel):
    status: MessageStatus
    detail: Any = None
    at: str


class Attempt(BaseModel):
    """One try at handing something to the outside (a provider or a webhook receiver)."""

    id: str
    target: str
    attempt: int
    ok: bool
    status_code: int | None
    error_code: str | None = Field(default=None, description="the provider's own error code")
    error: str | None
    duration_ms: int
    at: str
