"""Who is calling: an API key (server to server, admin rights) or an agent token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from chat.domain.errors import Unauthorized

if TYPE_CHECKING:
    from chat.services.container import Services


@dataclass(frozen=True)
class Principal:
    workspace_id: str
    kind: str  # "api_key" | "agent"
    agent_id: str | None = None
    role: str = "admin"
    token: str | None = None  # an agent's token, which logging out revokes

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def caller(self) -> str:
        """Whose rate limit a request counts against: an agent, or a workspace's API keys."""
        return f"agent:{self.agent_id}" if self.agent_id else f"workspace:{self.workspace_id}"


async def authenticate(request: Request, services: Services) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <api key or agent token>")
    token = token.strip()
    if token.startswith("pk_"):
        workspace_id = await services.workspaces.by_api_key(token)
        if workspace_id is None:
            raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
        return Principal(workspace_id, "api_key")
    agent = await services.agents.from_token(token)
    if agent is None:
        raise Unauthorized("invalid or expired token", code="invalid_token")
    return Principal(agent.workspace_id, "agent", agent.agent_id, agent.role, token)
