"""Who a conversation a customer opens is first assigned to (the write path's hook), and
which messages are bot turns (``BotTurnTrigger``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chat.db import models as m
from chat.domain.enums import Direction
from chat.services.bots import BOT_TURN, BotTurnTrigger
from chat.services.conversations import NewMessage
from chat.settings import Settings
from tests.bot_helpers import attach_bot, customer_says


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


async def bot_turns_queued(services: Any) -> list[dict[str, Any]]:
    async with services.db.read() as session:
        rows = await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.kind == BOT_TURN))
        return [dict(r.payload) for r in rows]


async def sms_channel(api: httpx.AsyncClient) -> str:
    r = await api.post("/v1/channels", json={
        "type": "sms", "name": "SMS",
        "config": {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32, "from_number": "+15005550006"},
    })
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def test_a_bot_on_the_whole_workspace_is_the_first_assignee_of_every_channel(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    await sms_channel(api)
    ws = workspace["workspace_id"]
    inapp = await customer_says(services, ws, "hi")
    sms = await customer_says(services, ws, "hi", who="+14155550100", channel_type="sms")
    assert inapp.conversation["assignee"] == {"type": "bot", "id": bot["id"]}
    assert sms.conversation["assignee"] == {"type": "bot", "id": bot["id"]}
    assert [p["message_id"] for p in await bot_turns_queued(services)] == [
        inapp.message["id"], sms.message["id"],
    ]


async def test_a_bot_on_a_channel_wins_over_a_workspace_bot_and_others_get_none(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    sms = await sms_channel(api)
    only_sms = await attach_bot(api, name="SMS bot", channel_ids=[sms])
    ws = workspace["workspace_id"]
    inapp = await customer_says(services, ws, "hi")
    texted = await customer_says(services, ws, "hi", who="+14155550100", channel_type="sms")
    assert inapp.conversation["assignee"] is None
    assert texted.conversation["assignee"] == {"type": "bot", "id": only_sms["id"]}

    everywhere = await attach_bot(api, name="Everywhere")
    texted2 = await customer_says(services, ws, "hi", who="+14155550101", channel_type="sms")
    inapp2 = await customer_says(services, ws, "hi", who="visitor-2")
    assert texted2.conversation["assignee"]["id"] == only_sms["id"]
    assert inapp2.conversation["assignee"]["id"] == everywhere["id"]


async def test_an_inactive_bot_or_another_workspaces_bot_is_not_assigned(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api, active=False)
    await attach_bot(other_api)
    posted = await customer_says(services, workspace["workspace_id"], "hi")
    assert posted.conversation["assignee"] is None
    assert await bot_turns_queued(services) == []


async def test_a_conversation_the_workspace_opens_is_not_given_to_the_bot(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    await attach_bot(api)
    posted = await services.conversations.post_message(NewMessage(
        workspace_id=workspace["workspace_id"], content={"type": "text", "text": "Your order shipped"},
        direction=Direction.OUTBOUND, author_type="system", channel_type="inapp", address="visitor-9",
    ))
    assert posted.conversation["assignee"] is None


async def test_only_a_customers_message_to_a_bot_is_a_turn() -> None:
    trigger = BotTurnTrigger()
    conv = {"id": "cnv_1", "assignee": {"type": "bot", "id": "bot_1"}}
    customer = {"id": "msg_1", "direction": "inbound", "author": {"type": "contact", "id": None}, "private": False}
    assert trigger.work_for(customer, conv) == {
        "bot_id": "bot_1", "conversation_id": "cnv_1", "message_id": "msg_1",
    }
    reply = {**customer, "direction": "outbound", "author": {"type": "bot", "id": "bot_1"}}
    note = {**customer, "direction": "outbound", "author": {"type": "agent", "id": "ag_1"}, "private": True}
    assert trigger.work_for(reply, conv) is None
    assert trigger.work_for(note, conv) is None
    assert trigger.work_for(customer, {**conv, "assignee": {"type": "agent", "id": "ag_1"}}) is None
    assert trigger.work_for(customer, {**conv, "assignee": None}) is None
