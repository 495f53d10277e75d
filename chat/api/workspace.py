"""``GET /v1/workspace``: the caller's workspace and its public widget key (for the inbox's
widget snippet)."""

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
