"""Channels: a workspace's connector instances and their (write-only) credentials."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus
from chat.db import models as m
from chat.db.engine import Database
from chat.domain import channel_config as cc
from chat.domain.channels import REGISTRY
from chat.domain.errors import Conflict, NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services.views import ChannelView, iso


def channel_view(ch: m.Channel) -> ChannelView:
    """What every read shows: secrets masked, and where the provider should call back."""
    spec = REGISTRY.spec(ch.type)
    return {
        "id": ch.id,
        "type": ch.type,
        "name": ch.name,
        "config": cc.masked(spec.config, ch.config or {}),
        "webhook_url": f"/webhooks/{ch.id}" if spec.receives_webhooks else None,
        "created_at": iso(ch.created_at),
        "updated_at": iso(ch.updated_at),
    }


class Channels:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def list(
        self, workspace_id: str, channel_type: str | None = None
    ) -> list[ChannelView]:
        query = select(m.Channel).where(m.Channel.workspace_id == workspace_id)
        if channel_type:
            query = query.where(m.Channel.type == channel_type)
        async with self.db.read() as session:
            rows = await session.scalars(query.order_by(m.Channel.id))
            return [channel_view(ch) for ch in rows]

    async def get(self, workspace_id: str, channel_id: str) -> ChannelView:
        async with self.db.read() as session:
            return channel_view(await _owned(session, workspace_id, channel_id))

    async def config(self, workspace_id: str, channel_id: str) -> cc.ChannelConfig:
        """The real, unmasked config, typed; for connectors, never for a response."""
        async with self.db.read() as session:
            ch = await _owned(session, workspace_id, channel_id)
        return cc.parse(REGISTRY.spec(ch.type).config, ch.config or {})

    async def create(
        self, workspace_id: str, channel_type: str, name: str, config: dict[str, Any]
    ) -> ChannelView:
        stored = _checked(channel_type, {}, config)
        ch = m.Channel(
            id=new_id("ch"), workspace_id=workspace_id, type=channel_type, name=name, config=stored
        )
        async with self.db.write() as session:
            session.add(ch)
        return channel_view(ch)

    async def update(
        self,
        workspace_id: str,
        channel_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> ChannelView:
        """Rename and/or merge config keys (``null`` removes a key; masked echoes keep secrets)."""
        async with self.db.write() as session:
            ch = await _owned(session, workspace_id, channel_id)
            if name is not None:
                ch.name = name
            if config is not None:
                ch.config = _checked(ch.type, ch.config or {}, config)
            await session.flush()
            return channel_view(ch)

    async def delete(self, workspace_id: str, channel_id: str) -> None:
        async with self.db.write() as session:
            # The row lock makes a conversation being opened on this channel either
            # finish first (and be counted) or fail on its foreign key afterwards,
            # instead of being cascaded away.
            ch = await _owned(session, workspace_id, channel_id, lock=True)
            in_use = await session.scalar(
                select(func.count())
                .select_from(m.Conversation)
                .where(m.Conversation.channel_id == ch.id)
            )
            if in_use:
                raise Conflict(
                    f"this channel has {in_use} conversation(s); it cannot be deleted",
                    code="channel_in_use",
                    details={"conversations": in_use},
                )
            await session.delete(ch)


async def _owned(
    session: AsyncSession, workspace_id: str, channel_id: str, *, lock: bool = False
) -> m.Channel:
    ch = await session.get(m.Channel, channel_id, with_for_update=lock)
    if ch is None or ch.workspace_id != workspace_id:
        raise NotFound("channel not found")
    return ch


def _checked(channel_type: str, current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The config to store, validated by its type's model; 422 with details otherwise."""
    model = REGISTRY.spec(channel_type).config
    try:
        candidate = cc.merged(model, current, patch)
    except cc.MaskedSecretError as exc:
        raise Unprocessable(
            str(exc),
            code="masked_secret",
            details=[
                {"loc": ["config", key], "msg": "masked value", "type": "masked_secret"}
                for key in exc.keys
            ],
        ) from exc
    try:
        return cc.to_stored(cc.parse(model, candidate))
    except ValidationError as exc:
        raise Unprocessable(
            f"config does not fit a '{channel_type}' channel",
            code="invalid_config",
            details=[
                {"loc": ["config", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ],
        ) from exc
