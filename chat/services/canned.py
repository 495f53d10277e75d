"""Canned responses: a workspace's saved replies, inserted in the inbox with ``/shortcut``.

A shortcut is unique in its workspace (409 ``shortcut_taken``); another workspace's
responses answer 404, like every other row.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.errors import Conflict, NotFound
from chat.domain.ids import new_id
from chat.services.views import iso


class CannedView(TypedDict):
    id: str
    shortcut: str
    text: str
    created_at: str
    updated_at: str


def canned_view(row: m.CannedResponse) -> CannedView:
    return {
        "id": row.id,
        "shortcut": row.shortcut,
        "text": row.text,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


class CannedResponses:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, workspace_id: str, prefix: str | None, limit: int) -> list[CannedView]:
        """The workspace's responses by shortcut; ``prefix`` keeps those starting with it."""
        q = select(m.CannedResponse).where(m.CannedResponse.workspace_id == workspace_id)
        if prefix:
            q = q.where(m.CannedResponse.shortcut.startswith(prefix, autoescape=True))
        q = q.order_by(m.CannedResponse.shortcut).limit(limit)
        async with self.db.read() as session:
            return [canned_view(r) for r in (await session.scalars(q)).all()]

    async def create(self, workspace_id: str, shortcut: str, text: str) -> CannedView:
        row = m.CannedResponse(
            id=new_id("cr"), workspace_id=workspace_id, shortcut=shortcut, text=text
        )
        try:
            async with self.db.write() as session:
                await _free(session, workspace_id, shortcut)
                session.add(row)
        except IntegrityError as exc:  # a concurrent create took the shortcut
            raise _taken(shortcut) from exc
        return canned_view(row)

    async def update(
        self, workspace_id: str, canned_id: str, shortcut: str | None, text: str | None
    ) -> CannedView:
        try:
            async with self.db.write() as session:
                row = await _owned(session, workspace_id, canned_id)
                if shortcut is not None and shortcut != row.shortcut:
                    await _free(session, workspace_id, shortcut)
                    row.shortcut = shortcut
                if text is not None:
                    row.text = text
                await session.flush()
                view = canned_view(row)
        except IntegrityError as exc:
            raise _taken(shortcut or "") from exc
        return view

    async def delete(self, workspace_id: str, canned_id: str) -> None:
        async with self.db.write() as session:
            await session.delete(await _owned(session, workspace_id, canned_id))


def _taken(shortcut: str) -> Conflict:
    return Conflict(f"the shortcut /{shortcut} is taken", code="shortcut_taken")


async def _free(session: AsyncSession, workspace_id: str, shortcut: str) -> None:
    taken = await session.scalar(
        select(m.CannedResponse.id).where(
            m.CannedResponse.workspace_id == workspace_id, m.CannedResponse.shortcut == shortcut
        )
    )
    if taken is not None:
        raise _taken(shortcut)


async def _owned(session: AsyncSession, workspace_id: str, canned_id: str) -> m.CannedResponse:
    row = await session.get(m.CannedResponse, canned_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFound("canned response not found")
    return row
