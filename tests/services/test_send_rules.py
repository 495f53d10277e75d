"""The send-time rules inside the write path, on SQLite and PostgreSQL: the customer's
last inbound time is written with the inbound message, a scheduled message is checked
again when it is released, and in a group commit that mixes refused and accepted sends
the refused ones leave nothing behind while the others are stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from chat.app import create_app
from chat.db import models as m
from chat.domain.enums import Direction
from chat.domain.errors import Unprocessable
from chat.services import outbox
from chat.services.conversations import NewMessage
from chat.services.sending import Recipient, SendRequest
from chat.settings import Settings
from tests import conftest
from tests.api.test_channels import VALID

TEXT = {"type": "text", "text": "hello"}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return conftest.test_settings(db_url, worker_enabled=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def channel(api: httpx.AsyncClient, type_: str) -> str:
    r = await api.post("/v1/channels", json={"type": type_, "name": type_, "config": VALID[type_]})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def conversation(services: Any, conversation_id: str) -> m.Conversation:
    async with services.db.read() as session:
        conv = await session.get(m.Conversation, conversation_id)
        assert conv is not None
        return conv


async def test_an_inbound_message_sets_the_conversations_last_inbound_time_with_it(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    wa = await channel(api, "whatsapp")
    inbound = await services.conversations.post_message(NewMessage(
        workspace_id=ws, content=TEXT, direction=Direction.INBOUND, author_type="contact",
        channel_id=wa, channel_type="whatsapp", address="+14155550100",
    ))
    conv_id = inbound.conversation["id"]
    conv = await conversation(services, conv_id)
    assert conv.last_inbound_at is not None
    assert conv.last_inbound_at == conv.last_message_at  # one write, one time

    reply = await services.conversations.post_message(NewMessage(
        workspace_id=ws, content=TEXT, direction=Direction.OUTBOUND, author_type="system",
        conversation_id=conv_id,
    ))
    assert reply.message["status"] == "queued"
    after = await conversation(services, conv_id)
    assert after.last_inbound_at == conv.last_inbound_at  # our own replies do not move it
    assert after.last_message_at is not None and after.last_message_at > conv.last_inbound_at


async def test_a_scheduled_reply_released_after_the_window_closed_fails_and_is_not_sent(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    wa = await channel(api, "whatsapp")
    inbound = await services.conversations.post_message(NewMessage(
        workspace_id=ws, content=TEXT, direction=Direction.INBOUND, author_type="contact",
        channel_id=wa, channel_type="whatsapp", address="+14155550100",
    ))
    conv_id = inbound.conversation["id"]
    scheduled = await services.conversations.post_message(NewMessage(
        workspace_id=ws, content=TEXT, direction=Direction.OUTBOUND, author_type="system",
        conversation_id=conv_id, send_at=datetime.now(UTC) + timedelta(hours=1),
    ))
    assert scheduled.message["status"] == "scheduled"
    async with services.db.write() as session:  # the customer went quiet long ago
        await session.execute(
            update(m.Conversation).where(m.Conversation.id == conv_id)
            .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=30))
        )
    assert await services.conversations.release(scheduled.message["id"]) is True
    msg = await services.messages.get(ws, scheduled.message["id"])
    assert msg["status"] == "failed"
    assert msg["status_history"][-1]["detail"]["code"] == "template_required"
    async with services.db.read() as session:
        deliveries = await session.scalar(
            select(func.count()).select_from(m.OutboxEntry).where(
                m.OutboxEntry.ref_id == scheduled.message["id"], m.OutboxEntry.kind == outbox.DELIVER
            )
        )
    assert deliveries == 0


async def test_concurrent_sends_refused_and_accepted_in_one_group_store_only_the_accepted(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    await channel(api, "sms")
    allowed = [f"+1415555{i:04d}" for i in range(10)]
    refused = [f"+55119123{i:05d}" for i in range(10)]

    async def send(number: str) -> Any:
        req = SendRequest("sms", [Recipient(address=number)], TEXT)
        try:
            return await services.sender.send(ws, req)
        except Unprocessable as exc:
            return exc

    results = await asyncio.gather(*(send(n) for pair in zip(allowed, refused, strict=True) for n in pair))
    outcomes = dict(zip([n for pair in zip(allowed, refused, strict=True) for n in pair], results, strict=True))
    assert all(not isinstance(outcomes[n], Exception) for n in allowed)
    assert {outcomes[n].code for n in refused} == {"country_not_allowed"}

    async with services.db.read() as session:
        identities = set(await session.scalars(
            select(m.ContactIdentity.address).where(m.ContactIdentity.workspace_id == ws)
        ))
        conversations = await session.scalar(
            select(func.count()).select_from(m.Conversation).where(m.Conversation.workspace_id == ws)
        )
        contacts = await session.scalar(
            select(func.count()).select_from(m.Contact).where(m.Contact.workspace_id == ws)
        )
        messages = await session.scalar(
            select(func.count()).select_from(m.Message).where(m.Message.workspace_id == ws)
        )
    assert identities == set(allowed)
    assert conversations == contacts == messages == len(allowed)
