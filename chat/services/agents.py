"""Agents: people answering in the inbox, their login and logout.

An agent token names its agent (``sub``), workspace (``ws``) and itself (``jti``). It
works while it is unexpired, not logged out (``revoked_tokens``) and its agent active.
Deactivating an agent publishes ``agent.deactivated`` and logging out publishes
``agent.signed_out``, so the real-time side closes the sockets they opened, in every
process.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.enums import AgentRole
from chat.domain.errors import Conflict, NotFound, Unauthorized
from chat.domain.ids import new_id
from chat.security import hash_password, read_token, sign_token, verify_password
from chat.services.views import AgentView, iso

TOKEN_KIND = "agent"


@functools.cache
def _dummy_hash() -> str:
    """Checked when no agent has the email, so that a miss takes as long as a wrong
    password. Made at first use: the hash costs about 0.15 s, which every process paid
    at import (each CLI command among them)."""
    return hash_password("not a real password")


DEACTIVATED = "agent.deactivated"  # {"agent_id"}
SIGNED_OUT = "agent.signed_out"  # {"agent_id", "token_id"}


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    workspace_id: str
    role: str
    name: str
    token_id: str  # the token's ``jti``: logging out revokes it


class LoginResult(TypedDict):
    token: str
    agent: AgentView
    workspace_id: str


def agent_view(a: m.Agent) -> AgentView:
    return {
        "id": a.id,
        "email": a.email,
        "name": a.name,
        "role": a.role,
        "active": a.active,
        "created_at": iso(a.created_at),
    }


class Agents:
    def __init__(
        self, db: Database, secret_key: str, token_ttl: int, bus: Bus | None = None
    ) -> None:
        self.db = db
        self.secret_key = secret_key
        self.token_ttl = token_ttl
        self.bus = bus or Bus()

    async def create(
        self,
        workspace_id: str,
        email: str,
        name: str,
        role: AgentRole = AgentRole.AGENT,
        password: str | None = None,
    ) -> tuple[AgentView, str]:
        """The new agent and its password (generated when not given)."""
        password = password or secrets.token_urlsafe(12)
        agent = m.Agent(
            id=new_id("ag"),
            workspace_id=workspace_id,
            email=email.lower(),
            name=name,
            role=role.value,
            password_hash=await asyncio.to_thread(hash_password, password),
        )
        try:
            async with self.db.write() as session:
                if await session.get(m.Workspace, workspace_id) is None:
                    raise NotFound("workspace not found")
                session.add(agent)
        except IntegrityError as exc:
            raise Conflict("an agent with this email exists", code="agent_exists") from exc
        return agent_view(agent), password

    async def get(self, workspace_id: str, agent_id: str) -> AgentView:
        async with self.db.read() as session:
            agent = await session.get(m.Agent, agent_id)
        if agent is None or agent.workspace_id != workspace_id:
            raise NotFound("agent not found")
        return agent_view(agent)

    async def list(self, workspace_id: str) -> list[AgentView]:
        async with self.db.read() as session:
            rows = await session.scalars(
                select(m.Agent).where(m.Agent.workspace_id == workspace_id).order_by(m.Agent.id)
            )
            return [agent_view(a) for a in rows]

    async def update(self, workspace_id: str, agent_id: str, changes: dict[str, Any]) -> AgentView:
        async with self.db.write() as session:
            agent = await session.get(m.Agent, agent_id)
            if agent is None or agent.workspace_id != workspace_id:
                raise NotFound("agent not found")
            deactivated = agent.active and changes.get("active") is False
            for key in ("name", "role", "active"):
                if key in changes:
                    setattr(agent, key, changes[key])
            if changes.get("password"):
                agent.password_hash = await asyncio.to_thread(hash_password, changes["password"])
            view = agent_view(agent)
        if deactivated:
            await self.bus.publish([DomainEvent(DEACTIVATED, workspace_id, {"agent_id": agent_id})])
        return view

    async def login(self, email: str, password: str, workspace_id: str | None) -> LoginResult:
        async with self.db.read() as session:
            query = select(m.Agent).where(m.Agent.email == email.lower(), m.Agent.active.is_(True))
            if workspace_id:
                query = query.where(m.Agent.workspace_id == workspace_id)
            candidates = (await session.scalars(query)).all()
        # Hashing runs off the event loop; with no candidate a dummy hash is checked so
        # that an unknown email takes as long as a wrong password.
        hashes = [a.password_hash for a in candidates]
        verdicts = await asyncio.to_thread(
            lambda: [verify_password(h, password) for h in hashes or [_dummy_hash()]]
        )
        matches = [a for a, ok in zip(candidates, verdicts) if ok]
        if not matches:
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        if len(matches) > 1:
            raise Conflict(
                "this email belongs to several workspaces; pass workspace_id",
                code="workspace_required",
                details={"workspace_ids": [a.workspace_id for a in matches]},
            )
        agent = matches[0]
        token = sign_token(
            self.secret_key,
            {
                "kind": TOKEN_KIND,
                "sub": agent.id,
                "ws": agent.workspace_id,
                "role": agent.role,
                "jti": new_id("tok"),
            },
            self.token_ttl,
        )
        return {"token": token, "agent": agent_view(agent), "workspace_id": agent.workspace_id}

    async def from_token(self, token: str) -> AgentIdentity | None:
        """The agent behind a token that is ours, unexpired, not logged out, of an active
        agent; else None."""
        claims = read_token(self.secret_key, token, TOKEN_KIND)
        if claims is None or not isinstance(claims.get("jti"), str):
            return None  # tokens without an id predate logout and are no longer taken
        async with self.db.read() as session:
            agent = await session.get(m.Agent, claims["sub"])
            revoked = await session.get(m.RevokedToken, claims["jti"])
        if (
            agent is None
            or revoked is not None
            or not agent.active
            or agent.workspace_id != claims.get("ws")
        ):
            return None
        return AgentIdentity(agent.id, agent.workspace_id, agent.role, agent.name, claims["jti"])

    async def logout(self, token: str) -> None:
        """Revokes ``token`` for good; its sockets are closed (``agent.signed_out``)."""
        claims = read_token(self.secret_key, token, TOKEN_KIND)
        if claims is None or not isinstance(claims.get("jti"), str):
            return
        now = datetime.now(UTC)
        try:
            async with self.db.write() as session:
                # Tokens that expired need no row any more.
                await session.execute(
                    delete(m.RevokedToken).where(m.RevokedToken.expires_at < now)
                )
                if await session.get(m.RevokedToken, claims["jti"]) is None:
                    session.add(
                        m.RevokedToken(
                            jti=claims["jti"],
                            workspace_id=claims["ws"],
                            agent_id=claims["sub"],
                            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                        )
                    )
        except IntegrityError:
            pass  # the same token logged out twice at once: revoked either way
        await self.bus.publish(
            [
                DomainEvent(
                    SIGNED_OUT,
                    str(claims["ws"]),
                    {"agent_id": claims["sub"], "token_id": claims["jti"]},
                )
            ]
        )

    async def reset_password(
        self, workspace_id: str, email: str, password: str | None = None
    ) -> tuple[AgentView, str]:
        """Gives the agent with ``email`` in the workspace a new password (generated when not
        given); the old one stops working at once. Returns the agent and the new password."""
        password = password or secrets.token_urlsafe(12)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.db.write() as session:
            agent = await session.scalar(
                select(m.Agent).where(
                    m.Agent.workspace_id == workspace_id, m.Agent.email == email.lower()
                )
            )
            if agent is None:
                raise NotFound("no agent with this email in the workspace")
            agent.password_hash = password_hash
            return agent_view(agent), password
