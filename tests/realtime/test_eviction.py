"""Deleting a contact closes its connections (chat/realtime/eviction.py); a connection
that outlived the deletion answers ``contact_deleted`` and is closed. (Agents: see
test_agent.py; every process: test_multiprocess.py.)"""

from __future__ import annotations

import pytest
import socketio
from sqlalchemy import delete

from chat.db.models import Contact
from parley_client import ConnectRefused, NotConnected
from tests.realtime.conftest import TIMEOUT


async def closed_by_the_server(client) -> None:
    gone = await client.wait_for("disconnected", timeout=TIMEOUT)
    assert "server" in gone["reason"], gone
    assert not client.connected
    with pytest.raises(NotConnected):
        await client.request("typing", {"conversation_id": "cnv_x", "typing": True})


async def test_deleting_a_contact_closes_its_sockets(customer, live_server):
    phone = await customer("ada", reconnection=False)
    laptop = await customer(session=phone.session, reconnection=False)
    other = await customer("bob")
    conv = (await phone.send("hello"))["conversation_id"]

    r = await live_server.http.delete(f"/v1/contacts/{phone.contact_id}")
    assert r.status_code == 204, r.text
    for device in (phone, laptop):
        await closed_by_the_server(device)
    assert (await other.send("bob is still here"))["seq"] == 1

    with pytest.raises(ConnectRefused) as info:
        await customer(session=phone.session)
    assert info.value.code == "invalid_session"
    assert (await live_server.http.get(f"/v1/conversations/{conv}")).status_code == 404


async def test_an_anonymous_visitor_who_wrote_is_closed_with_its_contact(customer, live_server):
    visitor = await customer(reconnection=False)
    await visitor.send("hello")
    r = await live_server.http.delete(f"/v1/contacts/{visitor.contact_id}")
    assert r.status_code == 204, r.text
    await closed_by_the_server(visitor)


async def test_a_socket_that_outlived_its_contact_hears_contact_deleted(customer, live_server):
    writer = await customer("ada", reconnection=False)
    pusher = await customer(reconnection=False)
    for visitor in (writer, pusher):
        await visitor.send("hello")
        # Deleted behind the server's back, as if the news never reached this process.
        async with live_server.services.db.write() as session:
            await session.execute(delete(Contact).where(Contact.id == visitor.contact_id))

    for visitor, event, data in [
        (writer, "message",
         {"client_message_id": "late", "content": {"type": "text", "text": "hi?"}}),
        (pusher, "register_push", {"channel_type": "fcm", "token": "device-1"}),
    ]:
        ack = await visitor.request(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == "contact_deleted", (event, ack)
        await closed_by_the_server(visitor)


async def test_deleting_a_contact_closes_its_rasa_sessions(live_server):
    url = f"{live_server.url}?widget_key={live_server.workspace['widget_key']}"
    widget = socketio.AsyncClient(reconnection=False)
    gone = []
    widget.on("disconnect", lambda *reason: gone.append(reason), namespace="/rasa")
    await widget.connect(url, namespaces=["/rasa"], wait_timeout=TIMEOUT)
    try:
        ack = await widget.call(
            "user_uttered", {"message": "hi", "session_id": "s-1"}, namespace="/rasa",
            timeout=TIMEOUT,
        )
        assert ack["ok"], ack
        conv = ack["conversation_id"]
        contact_id = (await live_server.http.get(f"/v1/conversations/{conv}")).json()["contact_id"]
        r = await live_server.http.delete(f"/v1/contacts/{contact_id}")
        assert r.status_code == 204, r.text
        await widget.wait()  # returns once the server closed it
        assert gone
    finally:
        await widget.disconnect()
