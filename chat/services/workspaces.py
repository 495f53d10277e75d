"""Tenants and their credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Required, TypedDict, cast

from sqlalchemy import Table, bindparam, or_, select, update

from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.channels import INAPP
from chat.domain.countries import DEFAULT_SEND_COUNTRIES
from chat.domain.errors import NotFound, Unprocessable
from chat.domain.ids import new_id, new_secret
from chat.security import hash_api_key

_keys = cast(Table, m.ApiKey.__table__)
_LIVE_KEY = select(_keys.c.workspace_id).where(
    _keys.c.key_hash == bindparam("b_hash"),
    or_(_keys.c.revoked_at.is_(None), _keys.c.revoked_at > bindparam("b_now")),
)


class WorkspaceKeys(TypedDict):
    """A new workspace's id and credentials (the secrets are shown this once)."""

    workspace_id: str
    api_key: str
    widget_key: str
    identity_secret: str
    webhook_secret: str


class WorkspaceSummary(TypedDict):
    workspace_id: str
    name: str
    widget_key: str
    created_at: str


class ApiKeyRotation(TypedDict):
    workspace_id: str
    api_key: str  # shown this once
    old_keys_stop_at: str


Codes = list[str]


class SendCountries(TypedDict):
    """Where the workspace's SMS and voice may go (ISO 3166-1 alpha-2 codes, sorted)."""

    countries: list[str]
    default: bool  # the workspace has no list of its own


def _send_countries(chosen: list[str] | None) -> SendCountries:
    if chosen is None:
        return {"countries": sorted(DEFAULT_SEND_COUNTRIES), "default": True}
    return {"countries": sorted(chosen), "default": False}


Secret = Literal["widget_key", "identity_secret", "webhook_secret"]


class SecretRotation(TypedDict, total=False):
    """The workspace and the one secret that was rotated."""

    workspace_id: Required[str]
    widget_key: str
    identity_secret: str
    webhook_secret: str


class Workspaces:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str) -> WorkspaceKeys:
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
        """The workspace of a key that is live (a rotated key keeps working until its
        ``revoked_at``: the grace period). Every REST call asks: a Core statement on a
        pooled connection, no ORM session."""
        async with self.db.engine.connect() as conn:
            found = await conn.scalar(_LIVE_KEY, {"b_hash": hash_api_key(api_key), "b_now": utcnow()})
        return str(found) if found is not None else None

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

    async def list(self) -> list[WorkspaceSummary]:
        async with self.db.read() as session:
            rows = await session.scalars(select(m.Workspace).order_by(m.Workspace.created_at))
            return [
                {
                    "workspace_id": ws.id,
                    "name": ws.name,
                    "widget_key": ws.widget_key,
                    "created_at": ws.created_at.isoformat(),
                }
                for ws in rows
            ]

    async def send_countries(self, workspace_id: str) -> SendCountries:
        ws = await self.get(workspace_id)
        if ws is None:
            raise NotFound("workspace not found")
        return _send_countries(ws.send_countries)

    async def set_send_countries(self, workspace_id: str, countries: Codes | None) -> SendCountries:
        """The workspace's own list of countries for SMS and voice (validated codes);
        None goes back to the default list."""
        async with self.db.write() as session:
            ws = await session.get(m.Workspace, workspace_id)
            if ws is None:
                raise NotFound("workspace not found")
            ws.send_countries = countries
        return _send_countries(countries)

    async def rotate_api_key(self, workspace_id: str, grace_seconds: int = 0) -> ApiKeyRotation:
        """A new API key; the workspace's other keys stop working after ``grace_seconds``
        (at once for 0). Returns the new key, shown only this once."""
        if grace_seconds < 0:
            raise Unprocessable("the grace period cannot be negative", code="invalid_grace")
        api_key = new_secret("pk", 32)
        until = utcnow() + timedelta(seconds=grace_seconds)
        async with self.db.write() as session:
            if await session.get(m.Workspace, workspace_id) is None:
                raise NotFound("workspace not found")
            await session.execute(
                update(m.ApiKey)
                .where(
                    m.ApiKey.workspace_id == workspace_id,
                    or_(m.ApiKey.revoked_at.is_(None), m.ApiKey.revoked_at > until),
                )
                .values(revoked_at=until)
            )
            session.add(
                m.ApiKey(
                    id=new_id("key"),
                    workspace_id=workspace_id,
                    key_hash=hash_api_key(api_key),
                    prefix=api_key[:10],
                )
            )
        return {"workspace_id": workspace_id, "api_key": api_key, "old_keys_stop_at": until.isoformat()}

    async def rotate_secret(self, workspace_id: str, which: Secret) -> SecretRotation:
        """A new ``widget_key``, ``identity_secret`` or ``webhook_secret``; the old one stops
        at once (they are kept in plain text, one per workspace, with no grace period)."""
        prefixes = {"widget_key": ("wk", 18), "identity_secret": ("is", 32), "webhook_secret": ("whs", 32)}
        if which not in prefixes:
            raise Unprocessable(f"cannot rotate {which!r}", code="invalid_key_kind")
        prefix, size = prefixes[which]
        value = new_secret(prefix, size)
        async with self.db.write() as session:
            ws = await session.get(m.Workspace, workspace_id)
            if ws is None:
                raise NotFound("workspace not found")
            setattr(ws, which, value)
        rotated: SecretRotation = {"workspace_id": workspace_id}
        rotated[which] = value
        return rotated
