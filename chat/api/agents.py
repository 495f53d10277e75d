"""``/v1/agents`` (admin only) and ``/v1/auth``: the people answering in the inbox."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from chat.api.common import Email, Patch, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.domain.enums import AgentRole
from chat.domain.errors import Forbidden

router = Router("agents")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, Field(min_length=8, max_length=200)]


class AgentCreate(Strict):
    email: Email
    name: Name
    role: AgentRole = AgentRole.AGENT
    password: Password | None = Field(default=None, description="generated when not given")


class AgentPatch(Patch):
    name: Name | None = None
    role: AgentRole | None = None
    active: StrictBool | None = None
    password: Password | None = None


class LoginRequest(Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=200)
    workspace_id: str | None = Field(
        default=None, max_length=40, description="needed when the email is an agent in several"
    )


class AgentOut(BaseModel):
    id: str
    email: str
    name: str
    role: AgentRole
    active: bool
    created_at: str


class NewAgent(AgentOut):
    password: str


class AgentList(BaseModel):
    data: list[AgentOut]
    next_cursor: str | None


class LoginResult(BaseModel):
    token: str
    agent: AgentOut
    workspace_id: str


@router.route(
    "GET", "/v1/agents", summary="List the workspace's agents", access="admin", response=AgentList
)
async def list_agents(ctx: Ctx) -> Any:
    return {"data": await ctx.services.agents.list(ctx.workspace_id), "next_cursor": None}


@router.route(
    "POST", "/v1/agents", summary="Add an agent", access="admin", body=AgentCreate,
    response=NewAgent, status=201, errors=(409,),
)
async def create_agent(ctx: Ctx) -> Any:
    """The answer carries the agent's ``password`` (generated when not given): this is the
    only time it is shown. 409 ``agent_exists`` when the email is taken in the workspace."""
    body: AgentCreate = ctx.body
    agent, password = await ctx.services.agents.create(
        ctx.workspace_id, body.email, body.name, body.role, body.password
    )
    return Reply({**agent, "password": password}, 201)


@router.route(
    "PATCH", "/v1/agents/{agent_id}", summary="Rename, change role, (de)activate, set password",
    access="admin", body=AgentPatch, response=AgentOut,
)
async def patch_agent(ctx: Ctx) -> Any:
    """A deactivated agent can no longer log in, its tokens stop working at once and its
    open inbox sockets are closed (in every server process); a role change applies to
    tokens already issued."""
    body: AgentPatch = ctx.body
    changes = body.model_dump(include=body.model_fields_set, mode="json")
    return await ctx.services.agents.update(ctx.workspace_id, ctx.path["agent_id"], changes)


@router.route(
    "POST", "/v1/auth/login", summary="Log an agent in", access="public", body=LoginRequest,
    response=LoginResult, errors=(401, 409, 429),
)
async def login(ctx: Ctx) -> Any:
    """Answers ``{"token", "agent", "workspace_id"}``; send the token as ``Authorization:
    Bearer``. 401 ``invalid_credentials`` for a wrong email or password; 409
    ``workspace_required`` when the email is an agent of several workspaces and no
    ``workspace_id`` was given; 429 ``rate_limited`` (with ``Retry-After``) past
    ``PARLEY_LOGIN_ATTEMPTS_PER_MINUTE`` attempts for one account from one address."""
    body: LoginRequest = ctx.body
    client = ctx.request.client
    await ctx.services.throttle.login(client.host if client else "unknown", body.email)
    return await ctx.services.agents.login(body.email, body.password, body.workspace_id)


@router.route(
    "POST", "/v1/auth/logout", summary="Log the agent behind the token out", status=204,
    errors=(403,),
)
async def logout(ctx: Ctx) -> Any:
    """The token stops working at once, for REST and sockets: the sockets opened with it
    are closed, in every server process. Other tokens of the agent (other devices) go
    on working. 403 ``agent_token_required`` for an API key."""
    assert ctx.principal is not None
    if ctx.principal.token is None:
        raise Forbidden("an API key is no agent; revoke it instead", code="agent_token_required")
    await ctx.services.agents.logout(ctx.principal.token)
    return Reply(None, 204)


@router.route(
    "GET", "/v1/auth/me", summary="The agent behind the token", response=AgentOut, errors=(403,)
)
async def me(ctx: Ctx) -> Any:
    """403 ``agent_token_required`` for an API key, which belongs to no agent."""
    assert ctx.principal is not None
    agent_id = ctx.principal.agent_id
    if agent_id is None:
        raise Forbidden("an API key is no agent; log in for a token", code="agent_token_required")
    return await ctx.services.agents.get(ctx.workspace_id, agent_id)
