"""The unified send and the conversation history, over REST."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chat.domain.enums import Direction
from chat.services.conversations import NewMessage


def text(body: str) -> dict[str, str]:
    return {"type": "text", "text": body}


async def send(api: httpx.AsyncClient, to: Any = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "channel": "inapp",
        "to": to if to is not None else {"address": "user-1"},
        "content": text("hello"),
    }
    body.update(extra)
    return await api.post("/v1/messages", json=body)


async def test_send_inapp_then_read_conversation_back(api: httpx.AsyncClient) -> None:
    r = await send(api, content=text("hi there"), client_message_id="c1")
    assert r.status_code == 202, r.text
    [sent] = r.json()["messages"]
    assert sent["status"] == "sent"

    convs = (await api.get("/v1/conversations")).json()["data"]
    assert [c["id"] for c in convs] == [sent["conversation_id"]]
    assert convs[0]["channel_type"] == "inapp" and convs[0]["status"] == "open"

    history = (await api.get(f"/v1/conversations/{sent['conversation_id']}/messages")).json()
    assert [(m["seq"], m["content"]["text"]) for m in history["data"]] == [(1, "hi there")]

    msg = (await api.get(f"/v1/messages/{sent['message_id']}")).json()
    assert msg["direction"] == "outbound"
    assert [h["status"] for h in msg["status_history"]] == ["sent"]


async def test_messages_to_one_address_share_a_conversation_with_increasing_seq(
    api: httpx.AsyncClient,
) -> None:
    ids = []
    for i in range(3):
        r = await send(api, content=text(f"m{i}"))
        ids.append(r.json()["messages"][0]["conversation_id"])
    assert len(set(ids)) == 1
    history = (await api.get(f"/v1/conversations/{ids[0]}/messages?after_seq=1")).json()["data"]
    assert [m["seq"] for m in history] == [2, 3]


async def test_send_to_a_contact_id(api: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    first = (await send(api)).json()["messages"][0]
    conv = (await api.get(f"/v1/conversations/{first['conversation_id']}")).json()
    r = await send(api, to={"contact_id": conv["contact_id"]}, content=text("again"))
    assert r.status_code == 202
    assert r.json()["messages"][0]["conversation_id"] == first["conversation_id"]


async def test_many_recipients_with_substitutions_and_correlation_ids(api: httpx.AsyncClient) -> None:
    recipients = [
        {"address": f"user-{i}", "substitutions": {"first": f"N{i}"}, "correlation_id": f"corr-{i}"}
        for i in range(5)
    ]
    r = await send(api, to=recipients, content=text("Hi {{first}}!"))
    assert r.status_code == 202, r.text
    out = r.json()["messages"]
    assert [m["correlation_id"] for m in out] == [f"corr-{i}" for i in range(5)]
    assert len({m["conversation_id"] for m in out}) == 5
    msg = (await api.get(f"/v1/messages/{out[3]['message_id']}")).json()
    assert msg["content"]["text"] == "Hi N3!"


async def test_placeholders_come_from_the_profile(api: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    first = (await send(api)).json()["messages"][0]
    conv = (await api.get(f"/v1/conversations/{first['conversation_id']}")).json()
    from chat.db import models as m

    async with services.db.write() as session:
        contact = await session.get(m.Contact, conv["contact_id"])
        contact.name = "Ada"
        contact.attributes = {"plan": "gold"}
    r = await send(
        api, to={"contact_id": conv["contact_id"]}, content=text("{{name}} on {{attributes.plan}}")
    )
    msg = (await api.get(f"/v1/messages/{r.json()['messages'][0]['message_id']}")).json()
    assert msg["content"]["text"] == "Ada on gold"


async def test_a_missing_placeholder_sends_nothing(api: httpx.AsyncClient) -> None:
    recipients = [{"address": "a", "substitutions": {"first": "A"}}, {"address": "b"}]
    r = await send(api, to=recipients, content=text("Hi {{first}}"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_recipients"
    assert r.json()["error"]["details"] == [{"recipient": 1, "missing_placeholders": ["first"]}]
    assert (await api.get("/v1/conversations")).json()["data"] == []


async def test_a_channel_type_with_no_configured_channel_is_422(api: httpx.AsyncClient) -> None:
    r = await send(api, channel="sms", to={"address": "+14155550100"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "channel_not_configured"


async def test_client_message_id_repeat_returns_the_first_message(api: httpx.AsyncClient) -> None:
    first = await send(api, client_message_id="once", content=text("one"))
    again = await send(api, client_message_id="once", content=text("two"))
    assert again.status_code == 202
    assert again.json() == first.json()
    conv_id = first.json()["messages"][0]["conversation_id"]
    history = (await api.get(f"/v1/conversations/{conv_id}/messages")).json()["data"]
    assert [m["content"]["text"] for m in history] == ["one"]


async def test_concurrent_repeats_of_one_client_message_id_store_one_message(
    api: httpx.AsyncClient,
) -> None:
    results = await asyncio.gather(
        *(send(api, client_message_id="race", content=text("x")) for _ in range(10))
    )
    assert {r.status_code for r in results} == {202}
    assert len({r.json()["messages"][0]["message_id"] for r in results}) == 1


async def test_seq_is_gap_free_under_50_concurrent_writers(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    channel_id = await _inapp_channel(services, ws)
    first = await services.conversations.post_message(
        NewMessage(ws, text("open"), Direction.INBOUND, "contact", contact_id=await _contact(services, ws), channel_id=channel_id)
    )
    conv_id = first.conversation["id"]
    posted = await asyncio.gather(
        *(
            services.conversations.post_message(
                NewMessage(ws, text(f"w{i}"), Direction.INBOUND, "contact", conversation_id=conv_id)
            )
            for i in range(50)
        )
    )
    seqs = sorted(p.message["seq"] for p in posted)
    assert seqs == list(range(2, 52))
    history = (await services.inbox.history(ws, conv_id, after_seq=0, limit=500))["data"]
    assert [m["seq"] for m in history] == list(range(1, 52))


async def test_seq_is_gap_free_under_50_concurrent_http_requests(api: httpx.AsyncClient) -> None:
    conv_id = (await send(api)).json()["messages"][0]["conversation_id"]

    async def post(i: int) -> httpx.Response:
        return await api.post(
            f"/v1/conversations/{conv_id}/messages", json={"content": text(f"r{i}")}
        )

    results = await asyncio.gather(*(post(i) for i in range(50)))
    assert {r.status_code for r in results} == {201}
    assert sorted(r.json()["seq"] for r in results) == list(range(2, 52))


async def test_scheduled_message_waits_then_goes_out(api: httpx.AsyncClient, runtime: Any) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    r = await send(api, send_at=soon.isoformat())
    [sent] = r.json()["messages"]
    assert sent["status"] == "scheduled"
    history = (await api.get(f"/v1/conversations/{sent['conversation_id']}/messages")).json()
    assert history["data"] == []  # not in the conversation until released
    for _ in range(100):
        await runtime.worker.drain()
        msg = (await api.get(f"/v1/messages/{sent['message_id']}")).json()
        if msg["status"] != "scheduled":
            break
        await asyncio.sleep(0.05)
    assert [h["status"] for h in msg["status_history"]] == ["scheduled", "sent"]


async def test_cancel_a_scheduled_message(api: httpx.AsyncClient, runtime: Any) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    [sent] = (await send(api, send_at=later.isoformat())).json()["messages"]
    r = await api.delete(f"/v1/messages/{sent['message_id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = await api.delete(f"/v1/messages/{sent['message_id']}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_scheduled"


async def test_an_already_sent_message_cannot_be_cancelled(api: httpx.AsyncClient) -> None:
    [sent] = (await send(api)).json()["messages"]
    r = await api.delete(f"/v1/messages/{sent['message_id']}")
    assert r.status_code == 409


@pytest.mark.parametrize(
    "body, where",
    [
        ({"channel": "carrier-pigeon", "to": {"address": "x"}, "content": {"type": "text", "text": "x"}}, "channel"),
        ({"channel": "inapp", "to": {}, "content": {"type": "text", "text": "x"}}, "to"),
        ({"channel": "inapp", "to": {"address": "x", "contact_id": "y"}, "content": {"type": "text", "text": "x"}}, "to"),
        ({"channel": "inapp", "to": {"address": "x"}, "content": {"type": "text", "text": ""}}, "content"),
        ({"channel": "inapp", "to": {"address": "x"}, "content": {"type": "video"}}, "content"),
        ({"channel": "inapp", "to": [], "content": {"type": "text", "text": "x"}}, "to"),
        ({"channel": "inapp", "to": {"address": "x"}, "content": {"type": "text", "text": "x"}, "notify_url": "ftp://x"}, "notify_url"),
        ({"channel": "inapp", "to": {"address": "x"}, "content": {"type": "text", "text": "x"}, "surprise": 1}, "surprise"),
    ],
)
async def test_invalid_send_bodies_are_422_and_store_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], where: str
) -> None:
    r = await api.post("/v1/messages", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert any(d["loc"][0] == where for d in err["details"])
    assert (await api.get("/v1/conversations")).json()["data"] == []


async def test_more_than_1000_recipients_is_422(api: httpx.AsyncClient) -> None:
    r = await send(api, to=[{"address": f"u{i}"} for i in range(1001)])
    assert r.status_code == 422


async def _inapp_channel(services: Any, ws: str) -> str:
    from sqlalchemy import select

    from chat.db import models as m

    async with services.db.read() as session:
        return str(await session.scalar(select(m.Channel.id).where(m.Channel.workspace_id == ws)))


async def _contact(services: Any, ws: str) -> str:
    from chat.services.identities import contact_for_address

    async with services.db.write() as session:
        return (await contact_for_address(session, ws, "inapp", "concurrent-user")).id


async def test_choose_one_of_several_channels_of_a_type(api: httpx.AsyncClient) -> None:
    second = await api.post("/v1/channels", json={"type": "inapp", "name": "Second app", "config": {}})
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    r = await send(api, channel_id=second_id)
    conv = (await api.get(f"/v1/conversations/{r.json()['messages'][0]['conversation_id']}")).json()
    assert conv["channel_id"] == second_id
    r = await send(api, channel_id="ch_missing")
    assert r.status_code == 422 and r.json()["error"]["code"] == "channel_not_configured"


async def test_a_client_message_id_of_another_author_is_409(api: httpx.AsyncClient) -> None:
    [sent] = (await send(api, client_message_id="k1")).json()["messages"]
    r = await api.post(
        f"/v1/conversations/{sent['conversation_id']}/messages",
        json={"content": text("as a bot"), "author": {"type": "bot", "id": "b1"}, "client_message_id": "k1"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_client_message_id"


async def test_callback_data_comes_back_exactly_as_sent(api: httpx.AsyncClient) -> None:
    # JSON allows integers of any size; an order number beyond 64 bits must not come
    # back from the database as a rounded float.
    data = {"order": 2**70 + 1, "below": -(2**63) - 1, "ok": 7, "ref": "12345678901234567890"}
    r = await send(api, callback_data=data)
    assert r.status_code == 202, r.text
    stored = (await api.get(f"/v1/messages/{r.json()['messages'][0]['message_id']}")).json()
    assert stored["callback_data"] == data
