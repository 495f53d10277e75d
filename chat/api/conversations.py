"""``/v1/conversations``: the inbox over REST, and posting into a conversation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictBool

from chat.api.common import PageQuery, Patch, Strict
from chat.api.responses import ConversationOut, MessageOut
from chat.api.routing import Ctx, Reply, Router
from chat.domain.channels import MessageTagName
from chat.domain.content import Content
from chat.domain.enums import ConversationStatus, Direction
from chat.services.conversations import NewMessage
from chat.services.inbox import UNSET, ConversationFilter
from chat.services.paging import ActivityCursor

router = Router("conversations")


class ConversationQuery(PageQuery):
    cursor: str | None = Field(
        default=None, max_length=80, pattern=ActivityCursor.PATTERN,
        description="next_cursor of the previous page",
    )
    status: ConversationStatus | None = None
    assignee: str | None = Field(default=None, max_length=80)
    channel: str | None = Field(default=None, max_length=80)
    contact_id: str | None = Field(default=None, max_length=80)
    team: str | None = Field(
        default=None, max_length=80, description="a team's name, or none for no team"
    )


class Assignee(Strict):
    type: Literal["agent", "bot"]
    id: str = Field(min_length=1, max_length=80)


class ConversationPatch(Patch):
    nullable = frozenset({"assignee", "expected_assignee", "team"})

    status: ConversationStatus | None = None
    assignee: Assignee | None = Field(
        default=None,
        description="null unassigns; a bot ({type: bot, id}) answers the customer's next message",
    )
    team: str | None = Field(
        default=None, min_length=1, max_length=80,
        description="the agents' team it is queued for; null: no team",
    )
    snoozed_until: AwareDatetime | None = Field(
        default=None,
        description="with status snoozed: when the conversation opens again (any later status "
        "change cancels it)",
    )
    expected_assignee: Assignee | None = Field(
        default=None,
        description="the assignee you saw (null: nobody); given, the change happens only if "
        "it is still the assignee, else 409 assignee_changed with the conversation as it is",
    )


class HistoryQuery(Strict):
    after_seq: int = Field(default=0, ge=0, description="only messages after this seq")
    before_seq: int | None = Field(
        default=None, ge=1, description="page backwards: the latest messages before this seq"
    )
    limit: int = Field(default=100, ge=1, le=500)


class Author(Strict):
    type: Literal["agent", "bot", "system"]
    id: str | None = Field(default=None, max_length=80)


class PostBody(Strict):
    content: Content
    author: Author | None = None
    private: StrictBool = False
    client_message_id: str | None = Field(default=None, min_length=1, max_length=200)
    message_tag: MessageTagName | None = Field(
        default=None,
        description="a provider message tag (Messenger) for a free-form reply outside the "
        "24-hour window: HUMAN_AGENT (up to 7 days), CONFIRMED_EVENT_UPDATE, "
        "POST_PURCHASE_UPDATE, ACCOUNT_UPDATE",
    )


class MessagePreview(BaseModel):
    id: str
    seq: int
    author_type: str = Field(description="contact, agent, bot or system")
    content_type: str | None
    text: str | None = Field(
        description="the text, caption or place name, at most 200 characters; null for a template"
    )
    private: bool = Field(description="a private note (agents only ever see these)")
    at: str


class InboxConversation(ConversationOut):
    contact_name: str | None
    last_message: MessagePreview | None = Field(
        description="the latest message that is not scheduled or cancelled"
    )
    unread_count: int | None = Field(
        description="the contact's messages after the asking agent's read horizon; "
        "null for an API key, which is no reader"
    )


class ConversationPage(BaseModel):
    data: list[InboxConversation]
    next_cursor: str | None


class HistoryPage(BaseModel):
    data: list[MessageOut]
    has_more: bool = Field(
        description="more messages after the last one (forwards) or before the first "
        "one (with before_seq)"
    )


@router.route(
    "GET", "/v1/conversations", summary="List conversations, latest activity first",
    query=ConversationQuery, response=ConversationPage,
)
async def list_conversations(ctx: Ctx) -> Any:
    """Sorted by last activity (the last message, or the opening), newest first. Each
    conversation carries its contact's name, a preview of its last message (private notes
    included, flagged) and, for an agent's token, how many of the contact's messages that
    agent has not read (``unread_count``; null for an API key)."""
    q: ConversationQuery = ctx.query
    flt = ConversationFilter(
        status=q.status.value if q.status else None,
        assignee=q.assignee,
        channel=q.channel,
        contact_id=q.contact_id,
        team=q.team,
    )
    return await ctx.services.inbox.list(ctx.workspace_id, flt, q.cursor, q.limit, _agent(ctx))


@router.route(
    "GET", "/v1/conversations/{conversation_id}", summary="Read a conversation",
    response=InboxConversation,
)
async def get_conversation(ctx: Ctx) -> Any:
    return await ctx.services.inbox.get(
        ctx.workspace_id, ctx.path["conversation_id"], _agent(ctx)
    )


def _agent(ctx: Ctx) -> str | None:
    return ctx.principal.agent_id if ctx.principal else None


@router.route(
    "PATCH", "/v1/conversations/{conversation_id}", summary="Change status or assignee",
    body=ConversationPatch, response=ConversationOut, errors=(409,),
)
async def patch_conversation(ctx: Ctx) -> Any:
    body: ConversationPatch = ctx.body
    fields = body.model_fields_set
    return await ctx.services.inbox.update(
        ctx.workspace_id,
        ctx.path["conversation_id"],
        status=body.status.value if body.status else None,
        snoozed_until=body.snoozed_until,
        assignee=(body.assignee.model_dump() if body.assignee else None)
        if "assignee" in fields
        else UNSET,
        expected_assignee=(body.expected_assignee.model_dump() if body.expected_assignee else None)
        if "expected_assignee" in fields
        else UNSET,
        team=body.team if "team" in fields else UNSET,
    )


@router.route(
    "GET", "/v1/conversations/{conversation_id}/messages", summary="History in seq order",
    query=HistoryQuery, response=HistoryPage,
)
async def conversation_history(ctx: Ctx) -> Any:
    """Forwards: ``?after_seq=N`` gives the first ``limit`` messages after N. Backwards:
    ``?before_seq=N`` gives the latest ``limit`` messages before N, still in seq order;
    start with ``last_seq + 1`` and continue with the first seq of each page."""
    q: HistoryQuery = ctx.query
    return await ctx.services.inbox.history(
        ctx.workspace_id, ctx.path["conversation_id"],
        after_seq=q.after_seq, before_seq=q.before_seq, limit=q.limit,
    )


@router.route(
    "POST", "/v1/conversations/{conversation_id}/messages",
    summary="Post into a conversation as an agent, a bot or the system", body=PostBody,
    response=MessageOut, status=201, also=(200,),
)
async def post_to_conversation(ctx: Ctx) -> Any:
    """201 with the new message; 200 with the first one when ``client_message_id``
    repeats an earlier post."""
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
            message_tag=body.message_tag,
        )
    )
    return Reply(posted.message, 201 if posted.created else 200)
