"""``/v1/messages``: the unified send, read one message, cancel a scheduled one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from chat.api.common import Strict
from chat.api.responses import Attempt, MessageOut, StatusChange
from chat.api.routing import Ctx, Reply, Router
from chat.api.webhooks import check_target
from chat.domain.channels import ChannelTypeName, MessageTagName
from chat.domain.content import Content
from chat.services.sending import Recipient, SendRequest

router = Router("messages")


def _one_of(*fields: str) -> dict[str, Any]:
    """The schema of "exactly one of these fields, as a string"."""
    return {
        "oneOf": [
            {"required": [f], "properties": {f: {"type": "string"}}} for f in fields
        ]
    }


class To(Strict):
    """One recipient: exactly one of ``contact_id`` or ``address``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of("contact_id", "address"))

    contact_id: str | None = Field(default=None, min_length=1, max_length=80)
    address: str | None = Field(default=None, min_length=1, max_length=512)
    substitutions: dict[str, str | int | float | bool] | None = None
    correlation_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> To:
        if bool(self.contact_id) == bool(self.address):
            raise ValueError("give exactly one of contact_id or address")
        return self


class SendBody(Strict):
    channel: ChannelTypeName
    channel_id: str | None = Field(
        default=None, max_length=80,
        description="which channel of that type, when the workspace has several (default: the oldest)",
    )
    to: To | Annotated[list[To], Field(min_length=1, max_length=1000)]
    content: Content
    send_at: datetime | None = None
    client_message_id: str | None = Field(default=None, min_length=1, max_length=200)
    callback_data: Any = None
    notify_url: AnyHttpUrl | None = None
    message_tag: MessageTagName | None = Field(
        default=None,
        description="a provider message tag (Messenger: HUMAN_AGENT up to 7 days after the "
        "customer's last message, the update tags at any time) for a free-form message "
        "outside the 24-hour window; 422 message_tag_not_supported on other channel types",
    )

    @field_validator("send_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("send_at is an ISO-8601 date-time string")
        return value

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class SentMessage(BaseModel):
    message_id: str
    conversation_id: str
    status: str
    correlation_id: str | None


class SendResult(BaseModel):
    messages: list[SentMessage]


class Delivery(BaseModel):
    """Where a message was handed to a provider: the channel, the address used, the
    provider's message id (status callbacks find the message by it)."""

    channel_id: str
    channel_type: str
    address: str
    provider_message_id: str | None
    created_at: str
    updated_at: str


class MessageDetail(MessageOut):
    status_history: list[StatusChange]
    delivery: Delivery | None = Field(description="null until the message is handed to a provider")
    delivery_attempts: list[Attempt]


@router.route(
    "POST", "/v1/messages", summary="Send on any channel to one or many recipients",
    body=SendBody, response=SendResult, status=202,
)
async def send_message(ctx: Ctx) -> Any:
    body: SendBody = ctx.body
    if body.notify_url:
        check_target(ctx, str(body.notify_url))
    targets = body.to if isinstance(body.to, list) else [body.to]
    req = SendRequest(
        channel_type=body.channel,
        channel_id=body.channel_id,
        recipients=[
            Recipient(t.contact_id, t.address, t.substitutions, t.correlation_id) for t in targets
        ],
        content=body.content.model_dump(mode="json", exclude_none=True),
        send_at=body.send_at,
        client_message_id=body.client_message_id,
        callback_data=body.callback_data,
        notify_url=str(body.notify_url) if body.notify_url else None,
        message_tag=body.message_tag,
        author_type="agent" if ctx.principal and ctx.principal.agent_id else "system",
        author_id=ctx.principal.agent_id if ctx.principal else None,
    )
    posted = await ctx.services.sender.send(ctx.workspace_id, req)
    return Reply(
        {
            "messages": [
                {
                    "message_id": p.message["id"],
                    "conversation_id": p.message["conversation_id"],
                    "status": p.message["status"],
                    "correlation_id": p.message["correlation_id"],
                }
                for p in posted
            ]
        },
        202,
    )


@router.route(
    "GET", "/v1/messages/{message_id}",
    summary="A message with its status history and delivery attempts", response=MessageDetail,
)
async def get_message(ctx: Ctx) -> Any:
    return await ctx.services.messages.get(ctx.workspace_id, ctx.path["message_id"])


@router.route(
    "DELETE", "/v1/messages/{message_id}", summary="Cancel a message that is still scheduled",
    response=MessageOut, errors=(409,),
)
async def cancel_message(ctx: Ctx) -> Any:
    return await ctx.services.messages.cancel(ctx.workspace_id, ctx.path["message_id"])
