"""``/v1/channels``: a workspace's connector instances. Secrets in ``config`` are write-only."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from chat.api.common import Patch, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.domain.channels import REGISTRY, ChannelTypeName
from chat.services.views import ChannelView

router = Router("channels")

_CONFIG_HELP = (
    "Provider keys for this channel type (see the contract's 'Channel config keys'); "
    "every type also takes api_base_url. Secrets are write-only: reads show them masked, "
    "and a masked value sent back unchanged keeps the stored secret."
)


class ChannelQuery(Strict):
    type: ChannelTypeName | None = None


def _config_per_type(schema: dict[str, Any]) -> None:
    """``config`` is checked by the channel type's config model: the schema says which."""
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"const": spec.type}}, "required": ["type"]},
            "then": {
                "properties": {"config": {"$ref": f"#/components/schemas/{spec.config.__name__}"}}
            },
        }
        for spec in REGISTRY
    ]


class ChannelBody(Strict):
    # For chat.api.openapi: what to add to the generated schema, and the models it names.
    openapi_extra: ClassVar[Any] = staticmethod(_config_per_type)
    schema_refs: ClassVar[tuple[type[BaseModel], ...]] = tuple(spec.config for spec in REGISTRY)

    type: ChannelTypeName
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, description=_CONFIG_HELP)


class ChannelPatch(Patch):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = Field(
        default=None, description="Merged into the stored config; null removes a key."
    )


class ChannelOut(BaseModel):
    id: str
    type: ChannelTypeName
    name: str
    config: dict[str, Any] = Field(description="the stored keys, secrets masked")
    webhook_url: str | None = Field(
        description="where the provider calls back (a full URL); null for a type that does not"
    )
    created_at: str
    updated_at: str


class ChannelList(BaseModel):
    data: list[ChannelOut]


def _public(ctx: Ctx, view: ChannelView) -> ChannelView:
    """The provider callback as a full URL on the host the caller reached us at."""
    path = view["webhook_url"]
    if path:
        view["webhook_url"] = str(ctx.request.base_url).rstrip("/") + path
    return view


@router.route(
    "GET", "/v1/channels", summary="List channels", query=ChannelQuery, response=ChannelList
)
async def list_channels(ctx: Ctx) -> Any:
    q: ChannelQuery = ctx.query
    rows = await ctx.services.channels.list(ctx.workspace_id, q.type)
    return {"data": [_public(ctx, v) for v in rows]}


@router.route(
    "POST", "/v1/channels", summary="Add a channel", body=ChannelBody, response=ChannelOut,
    status=201, access="admin",
)
async def create_channel(ctx: Ctx) -> Any:
    body: ChannelBody = ctx.body
    view = await ctx.services.channels.create(
        ctx.workspace_id, body.type, body.name, body.config
    )
    return Reply(_public(ctx, view), 201)


@router.route(
    "GET", "/v1/channels/{channel_id}", summary="Read a channel", response=ChannelOut
)
async def get_channel(ctx: Ctx) -> Any:
    return _public(ctx, await ctx.services.channels.get(ctx.workspace_id, ctx.path["channel_id"]))


@router.route(
    "PATCH",
    "/v1/channels/{channel_id}",
    summary="Rename a channel or change config keys",
    body=ChannelPatch,
    response=ChannelOut,
    access="admin",
)
async def patch_channel(ctx: Ctx) -> Any:
    body: ChannelPatch = ctx.body
    view = await ctx.services.channels.update(
        ctx.workspace_id, ctx.path["channel_id"], name=body.name, config=body.config
    )
    return _public(ctx, view)


@router.route(
    "DELETE",
    "/v1/channels/{channel_id}",
    summary="Remove a channel that has no conversations",
    status=204,
    access="admin",
)
async def delete_channel(ctx: Ctx) -> Any:
    await ctx.services.channels.delete(ctx.workspace_id, ctx.path["channel_id"])
    return None
