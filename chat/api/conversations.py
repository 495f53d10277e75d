"""``/v1/conversations``: the inbox over REST, and posting into a conversation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chat.api.common import PageQuery, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.domain.content import Content
from chat.domain.enums import ConversationStatus, Direction
from chat.domain.errors import Unprocessable
from chat.services.conversations import NewMessage
from chat.services.inbox import UNSET, ConversationFilter

router = Router("conversations")


class ConversationQuery(PageQuery):
    status: ConversationStatus | None = None
    assignee: str | None = Field(default=None, max_length=80)
    channel: str | None = Field(default=None, max_length=80)
    contact_id: str | None = Field(default=None, max_length=80)


class Assignee(Strict):
    type: Literal["agent", "bot"]
    id: str = Field(min_length=1, max_length=80)


class ConversationPatch(Strict):
    status: ConversationStatus | None = None
    assignee: Assignee | None = None


class HistoryQuery(Strict):
    after_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=500)


class Author(Strict):
    type: Literal["agent", "bot", "system"]
    id: str | None = Field(default=None, max_length=80)


class PostBody(Strict):
    content: Content
    author: Author | None = None
    private: bool = False
    client_message_id: str | None = Field(default=None, min_length=1, max_length=200)


@router.route("GET", "/v1/conversations", summary="List conversations", query=ConversationQuery)
async def list_conversations(ctx: Ctx) -> Any:
    q: ConversationQuery = ctx.query
    flt = ConversationFilter(
        status=q.status.value if q.status else None,
        assignee=q.assignee,
        channel=q.channel,
        contact_id=q.contact_id,
    )
    return await ctx.services.inbox.list(ctx.workspace_id, flt, q.cursor, q.limit)


@router.route("GET", "/v1/conversations/{conversation_id}", summary="Read a conversation")
async def get_conversation(ctx: Ctx) -> Any:
    return await ctx.services.inbox.get(ctx.workspace_id, ctx.path["conversation_id"])


@router.route(
    "PATCH", "/v1/conversations/{conversation_id}", summary="Change status or assignee",
    body=ConversationPatch,
)
async def patch_conversation(ctx: Ctx) -> Any:
    body: ConversationPatch = ctx.body
    fields = body.model_fields_set
    if not fields:
        raise Unprocessable("nothing to change: give status and/or assignee")
    return await ctx.services.inbox.update(
        ctx.workspace_id,
        ctx.path["conversation_id"],
        status=body.status.value if body.status else None,
        assignee=(body.assignee.model_dump() if body.assignee else None)
        if "assignee" in fields
        else UNSET,
    )


@router.route(
    "GET", "/v1/conversations/{conversation_id}/messages", summary="History in seq order",
    query=HistoryQuery,
)
async def conversation_history(ctx: Ctx) -> Any:
    q: HistoryQuery = ctx.query
    messages = await ctx.services.messages.history(
        ctx.workspace_id, ctx.path["conversation_id"], q.after_seq, q.limit
    )
    return {"data": messages, "has_more": len(messages) == q.limit}


@router.route(
    "POST", "/v1/conversations/{conversation_id}/messages",
    summary="Post into a conversation as an agent, a bot or the system", body=PostBody, status=201,
)
async def post_to_conversation(ctx: Ctx) -> Any:
    body: PostBody = ctx.body
    principal = ctx.principal
    assert principal is not None
    author = body.author or Author(type="agent" if principal.agent_id else "system")
    author_id = author.id
    if principal.agent_id:
        # An agent token speaks as that agent, whatever the body claims.
        author = Author(type="agent")
        author_id = principal.agent_id
    posted = await ctx.services.conversations.post_message(
        NewMessage(
            workspace_id=ctx.workspace_id,
            conversation_id=ctx.path["conversation_id"],
            content=body.content.model_dump(mode="json", exclude_none=True),
            direction=Direction.OUTBOUND,
            author_type=author.type,
            author_id=author_id,
            private=body.private,
            client_message_id=body.client_message_id,
        )
    )
    return Reply(posted.message, 201 if posted.created else 200)
