"""Connecting: who may connect to /client and /agent, and who they become."""

from __future__ import annotations

import time

import jwt
import pytest
from sqlalchemy import func, select

from chat.db.models import Contact
from parley_client import AgentClient, ConnectRefused, user_hmac, user_token
from tests.realtime.conftest import TIMEOUT, fast
from tests.realtime.raw import RawClient


async def refused(connect) -> ConnectRefused:
    with pytest.raises(ConnectRefused) as info:
        await connect
    return info.value


async def test_a_bad_widget_key_is_refused(customer):
    err = await refused(customer(widget_key="wk_not-a-widget"))
    assert err.code == "invalid_widget_key"


async def test_a_wrong_hmac_is_refused(customer, live_server):
    secret = live_server.workspace["identity_secret"]
    err = await refused(
        customer(user={"external_id": "alice", "hmac": user_hmac(secret, "mallory")})
    )
    assert err.code == "invalid_hmac"


async def test_external_ids_of_rasa_sessions_are_reserved(customer, live_server):
    secret = live_server.workspace["identity_secret"]
    err = await refused(
        customer(user={"external_id": "rasa:abc", "hmac": user_hmac(secret, "rasa:abc")})
    )
    assert err.code == "reserved_external_id"


async def test_a_user_without_hmac_is_refused(customer):
    err = await refused(customer(user={"external_id": "alice"}))
    assert err.code == "hmac_required"


async def test_an_expired_user_token_is_refused(customer, live_server):
    token = user_token(live_server.workspace["identity_secret"], "alice", ttl_seconds=-60)
    err = await refused(customer(user_token=token))
    assert err.code == "invalid_user_token"


async def test_a_forged_user_token_is_refused(customer):
    err = await refused(customer(user_token=user_token("not-the-identity-secret", "alice")))
    assert err.code == "invalid_user_token"


async def test_a_user_token_without_expiry_is_refused(customer, live_server):
    token = jwt.encode(
        {"sub": "alice"}, live_server.workspace["identity_secret"], algorithm="HS256"
    )
    err = await refused(customer(user_token=token))
    assert err.code == "invalid_user_token"


async def test_a_forged_session_is_refused(customer):
    now = int(time.time())
    forged = jwt.encode(
        {"kind": "session", "sub": "ct_someone", "iat": now, "exp": now + 600},
        "a-guessed-key-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    err = await refused(customer(session=forged))
    assert err.code == "invalid_session"
    err = await refused(customer(session="not even a token"))
    assert err.code == "invalid_session"


async def test_malformed_auth_is_refused(customer):
    err = await refused(customer(widget_key=""))
    assert err.code == "invalid_auth"


async def test_an_agent_with_a_bad_token_is_refused(live_server, clients):
    now = int(time.time())
    expired = jwt.encode(
        {
            "kind": "agent",
            "sub": "ag_x",
            "ws": live_server.workspace["workspace_id"],
            "iat": now - 100,
            "exp": now - 50,
        },
        "test-secret-key-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    for token in ("forged", expired):
        client = AgentClient(live_server.url, token, **fast())
        clients.append(client)
        err = await refused(client.connect())
        assert err.code == "invalid_token"


async def test_an_identified_user_is_the_contact_with_that_external_id(customer, live_server):
    by_hmac = await customer("user-42")
    secret = live_server.workspace["identity_secret"]
    by_token = await customer(user_token=user_token(secret, "user-42", name="Ada Lovelace"))
    assert by_hmac.contact_id == by_token.contact_id

    resp = await live_server.http.get(f"/v1/contacts/{by_hmac.contact_id}")
    assert resp.status_code == 200, resp.text
    contact = resp.json()
    assert contact["external_id"] == "user-42"
    assert {"channel_type": "inapp", "address": "user-42"} in [
        {"channel_type": i["channel_type"], "address": i["address"]} for i in contact["identities"]
    ]


async def contact_count(live_server) -> int:
    async with live_server.services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Contact)) or 0)


async def test_anonymous_visitors_who_never_write_are_no_contacts(customer, live_server, agent):
    inbox = await agent()
    before = await contact_count(live_server)
    visitors = [await customer() for _ in range(50)]
    ids = {v.contact_id for v in visitors}
    assert len(ids) == 50 and all(ids), "each visitor has the id its contact would have"
    assert await contact_count(live_server) == before
    listed = (await live_server.http.get("/v1/contacts", params={"limit": 200})).json()["data"]
    assert not ids & {c["id"] for c in listed}
    resp = await live_server.http.get(f"/v1/contacts/{visitors[0].contact_id}")
    assert resp.status_code == 404
    # Nor are they online for the agents, nor in the inbox.
    online = {p["id"] for p in await inbox.presence()}
    assert not ids & online
    assert (await live_server.http.get("/v1/conversations")).json()["data"] == []
    # Reconnecting with the anonymous session creates nothing either.
    again = await customer(session=visitors[0].session)
    assert again.contact_id == visitors[0].contact_id
    assert await contact_count(live_server) == before


async def test_the_first_message_makes_the_visitor_a_contact(customer, live_server, agent):
    inbox = await agent()
    before = await contact_count(live_server)
    visitor = await customer()
    anonymous_session = visitor.session
    promised = visitor.contact_id

    sent = await visitor.send("hello")
    assert await contact_count(live_server) == before + 1
    resp = await live_server.http.get(f"/v1/contacts/{promised}")
    assert resp.status_code == 200, resp.text
    conv = visitor.conversations[sent["conversation_id"]]
    assert conv["contact_id"] == promised
    came = await inbox.wait_for("presence", lambda e: e["id"] == promised, timeout=TIMEOUT)
    assert came["online"] is True

    # The session from before the first message reconnects to that contact, and so
    # does the one renewed on reconnect.
    for session in (anonymous_session, visitor.session):
        back = await customer(session=session)
        assert back.contact_id == promised
        assert sent["conversation_id"] in back.conversations
    assert await contact_count(live_server) == before + 1


async def test_a_burst_of_first_messages_is_stored_in_order_as_one_contact(live_server):
    before = await contact_count(live_server)
    raw = await RawClient.open(live_server)
    try:
        await raw.handshake(live_server, {"widget_key": live_server.workspace["widget_key"]})
        ids = [
            await raw.emit(
                "message",
                {"client_message_id": f"burst-{i}", "content": {"type": "text", "text": f"{i}"}},
            )
            for i in range(5)
        ]
        await raw.until(lambda: all(i in raw.acks for i in ids))
        acks = [raw.acks[i] for i in ids]
        assert all(a["ok"] for a in acks), acks
        assert [a["message"]["seq"] for a in acks] == [1, 2, 3, 4, 5]
        assert [a["message"]["content"]["text"] for a in acks] == ["0", "1", "2", "3", "4"]
        assert len({a["conversation"]["id"] for a in acks}) == 1
        assert await contact_count(live_server) == before + 1
    finally:
        await raw.ws.close()


async def test_the_session_survives_reconnects_and_reloads(customer):
    visitor = await customer()
    sent = await visitor.send("hello")
    conversation_id = sent["conversation_id"]

    await visitor.disconnect()
    await visitor.connect()  # the same client comes back with its session token
    assert visitor.conversations[conversation_id]["contact_id"] == visitor.contact_id

    reloaded = await customer(session=visitor.session)  # a page reload: a new client, same session
    assert reloaded.contact_id == visitor.contact_id
    assert conversation_id in reloaded.conversations
    again = await reloaded.send("still me")
    assert again["conversation_id"] == conversation_id


async def test_allowed_origins_of_the_workspace_are_enforced(customer, live_server):
    channels = (await live_server.http.get("/v1/channels", params={"type": "inapp"})).json()["data"]
    resp = await live_server.http.patch(
        f"/v1/channels/{channels[0]['id']}",
        json={"config": {"allowed_origins": ["https://shop.example.com"]}},
    )
    assert resp.status_code == 200, resp.text

    err = await refused(customer(origin="https://evil.example.net"))
    assert err.code == "origin_not_allowed"
    assert (await customer(origin="https://shop.example.com")).contact_id
    assert (await customer()).contact_id  # a native app sends no Origin


async def test_the_long_polling_transport_works_too(customer, custom_server):
    # A short heartbeat ends the last long-poll quickly when the test closes the client.
    server = await custom_server(socket_ping_interval_seconds=0.5, socket_ping_timeout_seconds=2)
    visitor = await customer(
        "ada", server=server, transports=("polling",), origin="https://shop.example.com"
    )
    sent = await visitor.send("over polling")
    assert sent["seq"] == 1


async def test_a_flood_of_connects_from_one_address_is_refused(customer, custom_server):
    server = await custom_server(socket_connects_per_minute=3)
    for _ in range(3):
        await customer(server=server)
    err = await refused(customer(server=server))
    assert err.code == "rate_limited"
