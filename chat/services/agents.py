"""Agents: people answering in the inbox, and their login."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.enums import AgentRole
from chat.domain.errors import Conflict, NotFound, Unauthorized
from chat.domain.ids import new_id
from chat.security import hash_password, read_token, sign_token, verify_password
from chat.services.views import iso

_DUMMY_HASH = hash_password("not a real password")


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    workspace_id: str
    role: str
    name: str


def agent_view(a: m.Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "email": a.email,
        "name": a.name,
        "role": a.role,
        "active": a.active,
        "created_at": iso(a.created_at),
    }


class Agents:
    def __init__(self, db: Database, secret_key: str, token_ttl: int) -> None:
        self.db = db
        self.secret_key = secret_key
        self.token_ttl = token_ttl

    async def create(
        self,
        workspace_id: str,
        email: str,
        name: str,
        role: AgentRole = AgentRole.AGENT,
        password: str | None = None,
    ) -> tuple[dict[str, Any], str]:
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

    async def get(self, workspace_id: str, agent_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            agent = await session.get(m.Agent, agent_id)
        if agent is None or agent.workspace_id != workspace_id:
            raise NotFound("agent not found")
        return agent_view(agent)

    async def list(self, workspace_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            rows = await session.scalars(
                select(m.Agent).where(m.Agent.workspace_id == workspace_id).order_by(m.Agent.id)
            )
            return [agent_view(a) for a in rows]

    async def update(self, workspace_id: str, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            agent = await session.get(m.Agent, agent_id)
            if agent is None or agent.workspace_id != workspace_id:
                raise NotFound("agent not found")
            for key in ("name", "role", "active"):
                if key in changes:
                    setattr(agent, key, changes[key])
            if changes.get("password"):
                agent.password_hash = await asyncio.to_thread(hash_password, changes["password"])
            return agent_view(agent)

    async def login(self, email: str, password: str, workspace_id: str | None) -> dict[str, Any]:
        async with self.db.read() as session:
            query = select(m.Agent).where(m.Agent.email == email.lower(), m.Agent.active.is_(True))
            if workspace_id:
                query = query.where(m.Agent.workspace_id == workspace_id)
            candidates = (await session.scalars(query)).all()
        # Hashing runs off the event loop; with no candidate a dummy hash is checked so
        # that an unknown email takes as long as a wrong password.
        hashes = [a.password_hash for a in candidates] or [_DUMMY_HASH]
        verdicts = await asyncio.to_thread(lambda: [verify_password(h, password) for h in hashes])
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
            {"kind": "agent", "sub": agent.id, "ws": agent.workspace_id, "role": agent.role},
            self.token_ttl,
        )
        return {"token": token, "agent": agent_view(agent), "workspace_id": agent.workspace_id}

    async def from_token(self, token: str) -> AgentIdentity | None:
        claims = read_token(self.secret_key, token, "agent")
        if claims is None:
            return None
        async with self.db.read() as session:
            agent = await session.get(m.Agent, claims["sub"])
        if agent is None or not agent.active or agent.workspace_id != claims.get("ws"):
            return None
        return AgentIdentity(agent.id, agent.workspace_id, agent.role, agent.name)

    async def reset_password(
        self, workspace_id: str, email: str, password: str | None = None
    ) -> tuple[dict[str, Any], str]:
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
