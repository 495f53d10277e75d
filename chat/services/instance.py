"""Server-wide values kept in the database so every process shares them."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from chat.db import models as m
from chat.db.engine import Database


async def shared_secret(db: Database, name: str) -> str:
    async with db.read() as session:
        row = await session.get(m.InstanceSecret, name)
        if row is not None:
            return row.value
    try:
        async with db.write() as session:
            session.add(m.InstanceSecret(name=name, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process created it first
    async with db.read() as session:
        row = await session.get(m.InstanceSecret, name)
        assert row is not None
        return row.value
