"""``GET /v1/workspace``: the caller's workspace and its public widget key (for the inbox's
widget snippet); ``GET /v1/workspace/agents``: who can be assigned, for every agent (the
full agent list, ``GET /v1/agents``, is for admins)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chat.api.routing import Ctx, Router
from chat.domain.errors import NotFound
from chat.services.views import iso

router = Router("workspace")


class WorkspaceOut(BaseModel):
    workspace_id: str
    name: str
    widget_key: str = Field(description="public: the web widget and mobile SDKs connect with it")
    created_at: str


@router.route(
    "GET", "/v1/workspace", summary="The caller's workspace and its widget key",
    response=WorkspaceOut,
)
async def current_workspace(ctx: Ctx) -> Any:
    ws = await ctx.services.workspaces.get(ctx.workspace_id)
    if ws is None:  # deleted since the token was issued
        raise NotFound("workspace not found")
    return {
        "workspace_id": ws.id,
        "name": ws.name,
        "widget_key": ws.widget_key,
        "created_at": iso(ws.created_at),
    }


class Teammate(BaseModel):
    id: str
    name: str
    role: str


class Teammates(BaseModel):
    data: list[Teammate] = Field(description="the workspace's active agents, by name")


@router.route(
    "GET", "/v1/workspace/agents", summary="The workspace's active agents (for assigning)",
    response=Teammates,
)
async def teammates(ctx: Ctx) -> Any:
    """Every agent of the workspace may read this: ids, names and roles of the active
    agents, no emails. Managing agents is ``/v1/agents`` (admins)."""
    agents = await ctx.services.agents.list(ctx.workspace_id)
    active = sorted((a for a in agents if a["active"]), key=lambda a: (a["name"].lower(), a["id"]))
    return {"data": [{"id": a["id"], "name": a["name"], "role": a["role"]} for a in active]}
