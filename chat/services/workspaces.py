"""Tenants and their credentials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.channels import INAPP
from chat.domain.ids import new_id, new_secret
from chat.security import hash_api_key


class Workspaces:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str) -> dict[str, Any]:
        """Create a workspace with an API key and an in-app channel; secrets shown once."""
        api_key = new_secret("pk", 32)
        ws = m.Workspace(
            id=new_id("ws"),
            name=name,
            widget_key=new_secret("wk", 18),
            identity_secret=new_secret("is", 32),
            webhook_secret=new_secret("whs", 32),
        )
        async with self.db.write() as session:
            session.add(ws)
            await session.flush()
            session.add(
                m.ApiKey(
                    id=new_id("key"),
                    workspace_id=ws.id,
                    key_hash=hash_api_key(api_key),
                    prefix=api_key[:10],
                )
            )
            # Every workspace can chat in-app from the start.
            session.add(
                m.Channel(
                    id=new_id("ch"),
                    workspace_id=ws.id,
                    type=INAPP,
                    name="In-app",
                    config={"allowed_origins": ["*"]},
                )
            )
        return {
            "workspace_id": ws.id,
            "api_key": api_key,
            "widget_key": ws.widget_key,
            "identity_secret": ws.identity_secret,
            "webhook_secret": ws.webhook_secret,
        }

    async def by_api_key(self, api_key: str) -> str | None:
        async with self.db.read() as session:
            return await session.scalar(
                select(m.ApiKey.workspace_id).where(
                    m.ApiKey.key_hash == hash_api_key(api_key), m.ApiKey.revoked_at.is_(None)
                )
            )

    async def by_widget_key(self, widget_key: str) -> m.Workspace | None:
        async with self.db.read() as session:
            return await session.scalar(
                select(m.Workspace).where(m.Workspace.widget_key == widget_key)
            )

    async def get(self, workspace_id: str) -> m.Workspace | None:
        async with self.db.read() as session:
            return await session.get(m.Workspace, workspace_id)

    async def exists(self, workspace_id: str) -> bool:
        return await self.get(workspace_id) is not None
