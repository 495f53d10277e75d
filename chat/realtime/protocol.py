"""What crosses the socket: payload models of client events, and the ack shapes.

Every ack is ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``.
Payload fields are strict (a ``"5"`` is not a seq, a ``1`` is not a bool) and unknown
keys are ignored, so a newer SDK still talks to an older server. No string anywhere in a
payload or in connect credentials may hold a NUL character (``chat.domain.text``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from chat.domain.channels import REGISTRY, MessageTagName
from chat.domain.content import Content
from chat.domain.enums import ConversationStatus
from chat.domain.text import NUL_MESSAGE, nul_at

Id = Field(min_length=1, max_length=80)
ClientMessageId = Field(min_length=1, max_length=200)
Seq = Field(ge=0, le=2**53)


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = nul_at(data)
        if where is not None:
            at = ".".join(str(p) for p in where)
            raise ValueError(f"{at}: {NUL_MESSAGE}" if at else NUL_MESSAGE)
        return data


# -- /client -------------------------------------------------------------------------


class UserAuth(Payload):
    external_id: StrictStr = Field(min_length=1, max_length=200)
    hmac: StrictStr | None = Field(default=None, max_length=128)
    name: StrictStr | None = Field(default=None, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=320)


class ClientAuth(Payload):
    widget_key: StrictStr = Field(min_length=1, max_length=200)
    session: StrictStr | None = Field(default=None, max_length=4096)
    user: UserAuth | None = None
    user_token: StrictStr | None = Field(default=None, max_length=8192)


class ClientMessage(Payload):
    conversation_id: StrictStr | None = Field(default=None, min_length=1, max_length=80)
    client_message_id: StrictStr = ClientMessageId
    content: Content


class Profile(Payload):
    """The widget's pre-chat form (an addition to the contract)."""

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    email: StrictStr | None = Field(default=None, min_length=3, max_length=320)


class Typing(Payload):
    conversation_id: StrictStr = Id
    typing: StrictBool


class Receipt(Payload):
    """``read`` and ``delivered``: everything up to ``seq`` reached the reader."""

    conversation_id: StrictStr = Id
    seq: StrictInt = Seq


class Resync(Payload):
    conversation_id: StrictStr = Id
    after_seq: StrictInt = Seq
    limit: StrictInt = Field(default=500, ge=1, le=1000)


class RegisterPush(Payload):
    """A device token, or a browser's PushSubscription JSON for ``webpush``."""

    channel_type: StrictStr = Field(max_length=16)
    token: StrictStr = Field(min_length=1, max_length=512)

    @field_validator("channel_type")
    @classmethod
    def _push_type(cls, value: str) -> str:
        if value not in REGISTRY.push_types:
            raise ValueError(f"one of {', '.join(sorted(REGISTRY.push_types))}")
        return value


# -- /agent --------------------------------------------------------------------------


class AgentAuth(Payload):
    token: StrictStr = Field(min_length=1, max_length=4096)


class AgentMessage(Payload):
    conversation_id: StrictStr = Id
    client_message_id: StrictStr = ClientMessageId
    content: Content
    private: StrictBool = False
    # Messenger's message tags let a reply out after the 24-hour window.
    message_tag: MessageTagName | None = None


class Assignee(Payload):
    type: Literal["agent", "bot"]
    id: StrictStr = Id


class Assign(Payload):
    conversation_id: StrictStr = Id
    assignee: Assignee | None  # required; null unassigns
    # The assignee the agent saw (null: nobody). Given, the change is a compare-and-set.
    expected_assignee: Assignee | None = None


class SetStatus(Payload):
    conversation_id: StrictStr = Id
    status: ConversationStatus
    # With status snoozed: when it opens again (ISO-8601 with a time zone).
    snoozed_until: AwareDatetime | None = None


class Empty(Payload):
    pass


# -- acks ----------------------------------------------------------------------------


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def fail(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def refusal(code: str, message: str) -> dict[str, Any]:
    """The CONNECT_ERROR payload: ``message`` as socket.io clients read it, plus the code
    (top-level for simple clients, under ``data`` as socket.io-client exposes ``err.data``)."""
    return {"message": message, "code": code, "data": {"code": code, "message": message}}


def describe(exc: ValidationError) -> str:
    """One line naming each bad field, without echoing the (possibly large) input."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
