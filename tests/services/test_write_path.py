"""The one message write path under concurrency: scheduled messages, statuses moved by
compare-and-set, one open conversation per contact and channel, cancel against release,
channels nothing can deliver on, and durable triggers. Every test runs on SQLite and
PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from chat.bus import DomainEvent
from chat.db import models as m
from chat.domain.channels import REGISTRY, Registry
from chat.domain.enums import Direction, MessageStatus
from chat.services import outbox
from chat.services.conversations import Conversations, NewMessage
from chat.services.message_store import StoreRules
from chat.services.messages import Reader

# A type no connector serves (and none is planned soon): replies on it are refused.
WECHAT = {
    "app_id": "wx1234567890abcdef",
    "app_secret": "wechat-app-secret-0010",
    "token": "wechattoken0011",
    "encoding_aes_key": "a" * 39 + "0012",
    "token_url": "http://127.0.0.1:9/cgi-bin/token",
}


def text(body: str) -> dict[str, str]:
    return {"type": "text", "text": body}


async def inapp_channel(services: Any, ws: str) -> str:
    async with services.db.read() as session:
        return str(
            await session.scalar(
                select(m.Channel.id).where(m.Channel.workspace_id == ws, m.Channel.type == "inapp")
            )
        )


async def new_contact(services: Any, ws: str, external_id: str) -> str:
    return str((await services.contacts.create(ws, {"external_id": external_id}))["id"])


def heard(services: Any) -> list[DomainEvent]:
    events: list[DomainEvent] = []

    async def listen(event: DomainEvent) -> None:
        events.append(event)

    services.bus.subscribe(listen)
    return events


async def make_due(services: Any, message_id: str) -> None:
    async with services.db.write() as session:
        await session.execute(
            update(m.OutboxEntry)
            .where(m.OutboxEntry.ref_id == message_id, m.OutboxEntry.kind == outbox.RELEASE)
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# 1. A scheduled message is invisible to the customer until released, then new to them.
async def test_a_scheduled_message_is_invisible_until_released_and_then_takes_the_next_seq(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    [first] = (await api.post("/v1/messages", json={
        "channel": "inapp", "to": {"address": "u-1"}, "content": text("first"),
    })).json()["messages"]
    [scheduled] = (await api.post("/v1/messages", json={
        "channel": "inapp", "to": {"address": "u-1"}, "content": text("later"), "send_at": later,
    })).json()["messages"]
    [cancelled] = (await api.post("/v1/messages", json={
        "channel": "inapp", "to": {"address": "u-1"}, "content": text("never"), "send_at": later,
    })).json()["messages"]
    assert (await api.delete(f"/v1/messages/{cancelled['message_id']}")).status_code == 200
    [second] = (await api.post("/v1/messages", json={
        "channel": "inapp", "to": {"address": "u-1"}, "content": text("second"),
    })).json()["messages"]
    conv_id = first["conversation_id"]
    conv = (await api.get(f"/v1/conversations/{conv_id}")).json()
    contact_id = conv["contact_id"]

    def texts(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
        return [(x["seq"], x["content"]["text"]) for x in messages]

    history = (await api.get(f"/v1/conversations/{conv_id}/messages")).json()["data"]
    assert texts(history) == [(1, "first"), (2, "second")]
    resync = await services.messages.catch_up(workspace["workspace_id"], conv_id, 0, contact_id=contact_id)
    assert texts(resync.messages) == [(1, "first"), (2, "second")] and resync.last_seq == 2
    assert (await api.get(f"/v1/messages/{scheduled['message_id']}")).json()["seq"] is None

    events = heard(services)
    await make_due(services, scheduled["message_id"])
    await runtime.worker.drain()

    released = (await api.get(f"/v1/messages/{scheduled['message_id']}")).json()
    assert released["status"] == "sent" and released["seq"] == 3
    live = [e for e in events if e.type == "message.created"]
    assert [e.data["message"]["seq"] for e in live] == [3]  # past the customer's last seen 2
    resync = await services.messages.catch_up(workspace["workspace_id"], conv_id, 2, contact_id=contact_id)
    assert texts(resync.messages) == [(3, "later")]
    history = (await api.get(f"/v1/conversations/{conv_id}/messages")).json()["data"]
    assert texts(history) == [(1, "first"), (2, "second"), (3, "later")]
    assert (await api.get(f"/v1/messages/{cancelled['message_id']}")).json()["status"] == "cancelled"
    assert second["status"] == "sent"


# 2. Concurrent delivered and read receipts never move a status backwards.
async def test_concurrent_delivered_and_read_receipts_end_read(
    services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    channel_id = await inapp_channel(services, ws)
    contact_id = await new_contact(services, ws, "two-devices")
    posted = [
        await services.conversations.post_message(NewMessage(
            ws, text(f"m{i}"), Direction.OUTBOUND, "agent", contact_id=contact_id, channel_id=channel_id,
        ))
        for i in range(30)
    ]
    conv_id = posted[0].conversation["id"]
    reader = Reader("contact", contact_id)
    receipts = []
    for seq in range(1, 31):
        for status in (MessageStatus.DELIVERED, MessageStatus.READ):
            receipts.append(services.messages.acknowledge(ws, conv_id, reader, seq, status))
    await asyncio.gather(*receipts)
    async with services.db.read() as session:
        statuses = (await session.scalars(
            select(m.Message.status).where(m.Message.conversation_id == conv_id)
        )).all()
        horizon = await session.get(m.ReadHorizon, (conv_id, "contact", contact_id))
    assert statuses == ["read"] * 30
    assert horizon is not None and horizon.seq == 30


async def test_a_late_lower_read_never_lowers_the_read_horizon(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    channel_id = await inapp_channel(services, ws)
    contact_id = await new_contact(services, ws, "horizon")
    for i in range(5):
        p = await services.conversations.post_message(NewMessage(
            ws, text(f"m{i}"), Direction.OUTBOUND, "agent", contact_id=contact_id, channel_id=channel_id,
        ))
    conv_id = p.conversation["id"]
    reader = Reader("contact", contact_id)
    await asyncio.gather(*(
        services.messages.acknowledge(ws, conv_id, reader, seq, MessageStatus.READ) for seq in (5, 1, 3, 2, 4)
    ))
    assert await services.messages.acknowledge(ws, conv_id, reader, 2, MessageStatus.READ) == 5


# 3. Concurrent first messages for one contact and channel open one conversation.
async def test_concurrent_first_messages_open_one_conversation(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    channel_id = await inapp_channel(services, ws)
    contact_id = await new_contact(services, ws, "racer")
    # post_messages: each its own transaction (not one group), so they truly race.
    results = await asyncio.gather(*(
        services.conversations.post_messages([NewMessage(
            ws, text(f"m{i}"), Direction.INBOUND, "contact", contact_id=contact_id, channel_id=channel_id,
        )])
        for i in range(20)
    ))
    assert len({r[0].conversation["id"] for r in results}) == 1
    assert sorted(r[0].message["seq"] for r in results) == list(range(1, 21))
    async with services.db.read() as session:
        count = len((await session.scalars(
            select(m.Conversation.id).where(m.Conversation.contact_id == contact_id)
        )).all())
    assert count == 1


async def test_the_database_refuses_a_second_open_conversation(services: Any, workspace: dict[str, str]) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    ws = workspace["workspace_id"]
    channel_id = await inapp_channel(services, ws)
    contact_id = await new_contact(services, ws, "twice")
    p = await services.conversations.post_message(NewMessage(
        ws, text("hi"), Direction.INBOUND, "contact", contact_id=contact_id, channel_id=channel_id,
    ))
    with pytest.raises(IntegrityError):
        async with services.db.write() as session:
            session.add(m.Conversation(
                id="cnv_second", workspace_id=ws, contact_id=contact_id, channel_id=channel_id,
                channel_type="inapp", status="open", last_seq=0,
            ))
    # A resolved one may stand beside the open one; writing into it joins the open one.
    async with services.db.write() as session:
        session.add(m.Conversation(
            id="cnv_old", workspace_id=ws, contact_id=contact_id, channel_id=channel_id,
            channel_type="inapp", status="resolved", last_seq=0,
        ))
    again = await services.conversations.post_message(NewMessage(
        ws, text("back"), Direction.INBOUND, "contact", conversation_id="cnv_old", contact_id=contact_id,
    ))
    assert again.conversation["id"] == p.conversation["id"] and again.message["seq"] == 2


# 4. Of a cancel and a release racing, exactly one wins.
async def test_cancel_and_release_racing_exactly_one_wins(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ids = []
    for i in range(12):
        r = await api.post("/v1/messages", json={
            "channel": "inapp", "to": {"address": f"race-{i}"}, "content": text("x"), "send_at": later,
        })
        ids.append(r.json()["messages"][0]["message_id"])

    async def cancel(message_id: str) -> bool:
        return (await api.delete(f"/v1/messages/{message_id}")).status_code == 200

    outcomes = await asyncio.gather(*(
        asyncio.gather(cancel(i), services.conversations.release(i)) for i in ids
    ))
    for message_id, (cancelled, _released) in zip(ids, outcomes, strict=True):
        msg = (await api.get(f"/v1/messages/{message_id}")).json()
        history = [h["status"] for h in msg["status_history"]]
        if cancelled:
            assert msg["status"] == "cancelled" and msg["seq"] is None
            assert history == ["scheduled", "cancelled"]
        else:
            assert msg["status"] == "sent" and msg["seq"] == 1
            assert history == ["scheduled", "sent"]


# 6. Nothing is queued that can never go out (shown on WeChat, its connector taken away).
NO_WECHAT_CONNECTOR = Registry(
    dataclasses.replace(s, connector=None) if s.type == "wechat" else s for s in REGISTRY
)


@pytest.mark.parametrize("registry", [NO_WECHAT_CONNECTOR], ids=["no-wechat-connector"])
async def test_a_reply_on_a_channel_without_a_connector_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    wechat = await api.post("/v1/channels", json={"type": "wechat", "name": "WeChat", "config": WECHAT})
    assert wechat.status_code == 201, wechat.text
    contact_id = await new_contact(services, ws, "texter")
    inbound = await services.conversations.post_message(NewMessage(
        ws, text("hello by wechat"), Direction.INBOUND, "contact", contact_id=contact_id, channel_id=wechat.json()["id"],
    ))
    conv_id = inbound.conversation["id"]
    r = await api.post(f"/v1/conversations/{conv_id}/messages", json={"content": text("reply")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "channel_not_supported"
    note = await api.post(f"/v1/conversations/{conv_id}/messages", json={"content": text("note"), "private": True})
    assert note.status_code == 201, note.text
    history = (await api.get(f"/v1/conversations/{conv_id}/messages")).json()["data"]
    assert [x["content"]["text"] for x in history] == ["hello by wechat", "note"]
    async with services.db.read() as session:
        kinds = (await session.scalars(select(m.OutboxEntry.kind).where(m.OutboxEntry.workspace_id == ws))).all()
    assert outbox.DELIVER not in kinds
    send = await api.post("/v1/messages", json={"channel": "wechat", "to": {"address": "oWeChatOpenId0001"}, "content": text("x")})
    assert send.status_code == 422 and send.json()["error"]["code"] == "channel_not_supported"


# 17. Work caused by a message is durable outbox work, run after the ack.
class RecordingTrigger:
    kind = "test_turn"

    def work_for(self, message: Mapping[str, Any], conversation: Mapping[str, Any]) -> dict[str, Any] | None:
        if message["direction"] != "inbound":
            return None
        return {"message_id": message["id"], "conversation_id": conversation["id"]}


async def test_a_trigger_is_written_with_the_message_and_run_by_the_worker_after_the_ack(
    services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    rules = StoreRules(sendable=lambda t: t == "inapp", triggers=(RecordingTrigger(),))
    conversations = Conversations(services.db, services.bus, rules)
    release = asyncio.Event()
    ran: list[str] = []

    async def slow_turn(entry: m.OutboxEntry) -> None:
        await release.wait()  # a bot calling a slow NLU server
        ran.append(entry.payload["message_id"])

    runtime.worker.register("test_turn", slow_turn)
    contact_id = await new_contact(services, ws, "bot-user")
    posted = await conversations.post_message(NewMessage(
        ws, text("hi bot"), Direction.INBOUND, "contact",
        contact_id=contact_id, channel_id=await inapp_channel(services, ws),
    ))
    # The ack came back while the turn has not run; the turn is stored, not in memory.
    assert ran == []
    async with services.db.read() as session:
        [entry] = (await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.kind == "test_turn"))).all()
    assert entry.payload == {"message_id": posted.message["id"], "conversation_id": posted.conversation["id"]}
    release.set()
    await runtime.worker.drain()
    assert ran == [posted.message["id"]]
    # An outbound reply triggers nothing.
    await conversations.post_message(NewMessage(
        ws, text("reply"), Direction.OUTBOUND, "agent", conversation_id=posted.conversation["id"],
    ))
    async with services.db.read() as session:
        count = len((await session.scalars(select(m.OutboxEntry).where(m.OutboxEntry.kind == "test_turn"))).all())
    assert count == 1


async def test_a_batch_with_one_bad_recipient_stores_nothing(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/messages", json={
        "channel": "inapp",
        "to": [{"address": "ok-1"}, {"address": "ok-2", "substitutions": {}}, {"contact_id": "ct_nope"}],
        "content": text("Hi {{first}}"),
    })
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert {d["recipient"] for d in details} == {0, 1, 2}
    assert (await api.get("/v1/contacts")).json()["data"] == []
