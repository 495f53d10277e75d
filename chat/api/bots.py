"""``/v1/bots``: a workspace's bots, where they answer, and the record of their turns."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, StrictBool

from chat.api.common import PageQuery, Patch, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.services.bots import CONFIGS, UNSET, BotKind

router = Router("bots")

_CONFIG_HELP = (
    "python: {path} (module:attr, or a file path whose 'bot' is used); rasa: {url, "
    "action_server_url?}; http: {url, secret} (secret write-only: reads show it masked, and "
    "the masked value sent back keeps it)."
)
_CHANNELS_HELP = "the channels it answers on; empty: every channel of the workspace"


def _config_per_kind(schema: dict[str, Any]) -> None:
    """``config`` is checked by the bot kind's config model: the schema says which."""
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"config": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
        for kind, model in CONFIGS.items()
    ]


class BotBody(Strict):
    openapi_extra: ClassVar[Any] = staticmethod(_config_per_kind)
    schema_refs: ClassVar[tuple[type[BaseModel], ...]] = tuple(CONFIGS.values())

    name: str = Field(min_length=1, max_length=200)
    kind: BotKind
    config: dict[str, Any] = Field(description=_CONFIG_HELP)
    channel_ids: list[str] = Field(default_factory=list, max_length=100, description=_CHANNELS_HELP)
    active: StrictBool = True
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=120,
        description="how long a turn may take (null: the server's bot_timeout_seconds, 5 s)",
    )


class BotPatch(Patch):
    nullable = frozenset({"timeout_seconds"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = Field(
        default=None, description="Merged into the stored config; null removes a key."
    )
    channel_ids: list[str] | None = Field(default=None, max_length=100, description=_CHANNELS_HELP)
    active: StrictBool | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=120)


class BotOut(BaseModel):
    id: str
    name: str
    kind: BotKind
    config: dict[str, Any] = Field(description="the stored keys, the secret masked")
    channel_ids: list[str] = Field(description=_CHANNELS_HELP)
    active: bool
    timeout_seconds: float | None
    created_at: str
    updated_at: str


class BotList(BaseModel):
    data: list[BotOut]


class BotTurnOut(BaseModel):
    id: str
    bot_id: str
    conversation_id: str
    message_id: str = Field(description="the customer's message the turn answered")
    intent: str | None
    score: float | None
    handler: str | None
    latency_ms: int = Field(description="how long the bot took to answer")
    outcome: str = Field(description="replied | handed_off | failed | timed_out")
    error: str | None = Field(description="why a failed or timed-out turn did")
    replies: int = Field(description="messages the turn posted")
    created_at: str


class BotTurnPage(BaseModel):
    data: list[BotTurnOut]
    next_cursor: str | None


@router.route("GET", "/v1/bots", summary="List bots", response=BotList, access="admin")
async def list_bots(ctx: Ctx) -> Any:
    return {"data": await ctx.services.bots.list(ctx.workspace_id)}


@router.route(
    "POST", "/v1/bots", summary="Add a bot", body=BotBody, response=BotOut, status=201,
    access="admin",
)
async def create_bot(ctx: Ctx) -> Any:
    """A python bot is loaded at once: one that does not load is 422 ``invalid_bot``,
    saying why."""
    body: BotBody = ctx.body
    view = await ctx.services.bots.create(
        ctx.workspace_id, body.name, body.kind, body.config, body.channel_ids, body.active,
        body.timeout_seconds,
    )
    return Reply(view, 201)


@router.route("GET", "/v1/bots/{bot_id}", summary="Read a bot", response=BotOut, access="admin")
async def get_bot(ctx: Ctx) -> Any:
    return await ctx.services.bots.get(ctx.workspace_id, ctx.path["bot_id"])


@router.route(
    "PATCH", "/v1/bots/{bot_id}", summary="Change a bot", body=BotPatch, response=BotOut,
    access="admin",
)
async def patch_bot(ctx: Ctx) -> Any:
    body: BotPatch = ctx.body
    fields = body.model_fields_set
    return await ctx.services.bots.update(
        ctx.workspace_id,
        ctx.path["bot_id"],
        name=body.name,
        config=body.config,
        channel_ids=body.channel_ids,
        active=body.active,
        timeout_seconds=body.timeout_seconds if "timeout_seconds" in fields else UNSET,
    )


@router.route(
    "DELETE", "/v1/bots/{bot_id}",
    summary="Remove a bot (its conversations go to the agents' queue)", status=204,
    access="admin",
)
async def delete_bot(ctx: Ctx) -> Any:
    await ctx.services.bots.delete(ctx.workspace_id, ctx.path["bot_id"])
    return None


@router.route(
    "GET", "/v1/bots/{bot_id}/turns", summary="A bot's turns, newest first", query=PageQuery,
    response=BotTurnPage, access="admin",
)
async def bot_turns(ctx: Ctx) -> Any:
    q: PageQuery = ctx.query
    return await ctx.services.bots.turns(
        ctx.workspace_id, q.cursor, q.limit, bot_id=ctx.path["bot_id"]
    )


@router.route(
    "GET", "/v1/conversations/{conversation_id}/bot-turns",
    summary="The bot turns of a conversation, newest first", query=PageQuery,
    response=BotTurnPage,
)
async def conversation_bot_turns(ctx: Ctx) -> Any:
    q: PageQuery = ctx.query
    return await ctx.services.bots.turns(
        ctx.workspace_id, q.cursor, q.limit, conversation_id=ctx.path["conversation_id"]
    )
