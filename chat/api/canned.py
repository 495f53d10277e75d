"""``/v1/canned-responses``: saved replies agents insert in the inbox with ``/shortcut``.

Every agent of the workspace reads them; admins (and API keys) create, change and
delete them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from chat.api.common import Patch, Strict
from chat.api.routing import Ctx, Reply, Router

router = Router("canned-responses")


def _lower(value: str) -> str:
    return value.lower()


Shortcut = Annotated[
    str,
    Field(
        min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="letters, digits, _ and -; stored lower-case; typed as /<shortcut>",
    ),
    AfterValidator(_lower),
]
Text = Annotated[str, Field(min_length=1, max_length=5000)]


class CannedCreate(Strict):
    shortcut: Shortcut
    text: Text


class CannedPatch(Patch):
    shortcut: Shortcut | None = None
    text: Text | None = None


class CannedQuery(Strict):
    prefix: str | None = Field(
        default=None, max_length=50, description="only shortcuts starting with this"
    )
    limit: int = Field(default=500, ge=1, le=1000)


class CannedOut(BaseModel):
    id: str
    shortcut: str
    text: str
    created_at: str
    updated_at: str


class CannedList(BaseModel):
    data: list[CannedOut] = Field(description="by shortcut")
    next_cursor: str | None = Field(description="always null: the list is not paged")


@router.route(
    "GET", "/v1/canned-responses", summary="List canned responses, by shortcut",
    query=CannedQuery, response=CannedList,
)
async def list_canned(ctx: Ctx) -> Any:
    q: CannedQuery = ctx.query
    prefix = q.prefix.lower() if q.prefix else None
    data = await ctx.services.canned.list(ctx.workspace_id, prefix, q.limit)
    return {"data": data, "next_cursor": None}


@router.route(
    "POST", "/v1/canned-responses", summary="Save a canned response", access="admin",
    body=CannedCreate, response=CannedOut, status=201, errors=(409,),
)
async def create_canned(ctx: Ctx) -> Any:
    """409 ``shortcut_taken`` when the workspace has that shortcut already."""
    body: CannedCreate = ctx.body
    return Reply(await ctx.services.canned.create(ctx.workspace_id, body.shortcut, body.text), 201)


@router.route(
    "PATCH", "/v1/canned-responses/{canned_id}", summary="Change a canned response",
    access="admin", body=CannedPatch, response=CannedOut, errors=(409,),
)
async def patch_canned(ctx: Ctx) -> Any:
    body: CannedPatch = ctx.body
    return await ctx.services.canned.update(
        ctx.workspace_id, ctx.path["canned_id"], body.shortcut, body.text
    )


@router.route(
    "DELETE", "/v1/canned-responses/{canned_id}", summary="Delete a canned response",
    access="admin", status=204,
)
async def delete_canned(ctx: Ctx) -> Any:
    await ctx.services.canned.delete(ctx.workspace_id, ctx.path["canned_id"])
    return None
