"""``/v1/workspace``: the caller's workspace as a whole.

| path | what |
| --- | --- |
| ``GET /v1/workspace`` | the workspace and its public widget key (for the widget snippet) |
| ``GET /v1/workspace/agents`` | who can be assigned, for every agent (``/v1/agents`` is for admins) |
| ``GET/PUT/DELETE /v1/workspace/countries`` | where SMS and voice may go |

A workspace starts with the default country list (``chat.domain.countries``); ``PUT``
replaces it with its own, ``DELETE`` goes back to the default. Every SMS or voice send to a
number whose country is not on the list is refused with 422 ``country_not_allowed``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from chat.api.common import Strict
from chat.api.routing import Ctx, Router
from chat.domain.countries import KNOWN_COUNTRIES, country_list
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


def _country(code: str) -> str:
    upper = code.strip().upper()
    if upper not in KNOWN_COUNTRIES:
        raise ValueError(
            f"unknown country code {code!r}: use ISO 3166-1 alpha-2 codes such as US, GB, DE"
        )
    return upper


CountryCode = Annotated[
    str,
    Field(min_length=2, max_length=2, examples=["US"]),
    AfterValidator(_country),
]


class CountriesBody(Strict):
    countries: list[CountryCode] = Field(
        max_length=300,
        description="ISO 3166-1 alpha-2 codes (any case); an empty list stops SMS and voice",
    )


class Countries(BaseModel):
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes, sorted")
    default: bool = Field(description="true while the workspace uses the default list")


@router.route(
    "GET", "/v1/workspace/countries",
    summary="The countries SMS and voice messages may be sent to", response=Countries,
)
async def get_countries(ctx: Ctx) -> Any:
    return await ctx.services.workspaces.send_countries(ctx.workspace_id)


@router.route(
    "PUT", "/v1/workspace/countries",
    summary="Replace the countries SMS and voice messages may be sent to",
    access="admin", body=CountriesBody, response=Countries,
)
async def put_countries(ctx: Ctx) -> Any:
    body: CountriesBody = ctx.body
    return await ctx.services.workspaces.set_send_countries(
        ctx.workspace_id, country_list(body.countries)
    )


@router.route(
    "DELETE", "/v1/workspace/countries",
    summary="Go back to the default countries for SMS and voice",
    access="admin", response=Countries,
)
async def reset_countries(ctx: Ctx) -> Any:
    return await ctx.services.workspaces.set_send_countries(ctx.workspace_id, None)
