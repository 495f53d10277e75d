"""/rasa: a widget written for Rasa's socketio channel talks to Parley unchanged.

The widget here is a bare python-socketio client doing what rasa-webchat does: connect
to ``/rasa`` (the widget key in the URL's query), ``session_request`` -> wait for
``session_confirm``, then ``user_uttered`` with the session id and no ack, and render
whatever comes as ``bot_uttered``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio

from chat.realtime.rasa import bot_messages
from tests.conftest import LiveServer, need_redis
from tests.realtime.conftest import TIMEOUT, post_reply, text_of

NAMESPACE = "/rasa"


class RasaWidget:
    """The Socket.IO side of a Rasa web widget."""

    def __init__(self, url: str, widget_key: str | None, **connect: Any) -> None:
        query = f"?widget_key={widget_key}" if widget_key is not None else ""
        self.url = url + query
        self.connect_options = connect
        self.sio = socketio.AsyncClient(reconnection=False)
        self.uttered: asyncio.Queue[Any] = asyncio.Queue()
        self.confirmed: asyncio.Queue[Any] = asyncio.Queue()
        self.refusal: Any = None
        self.sio.on("bot_uttered", self.uttered.put_nowait, namespace=NAMESPACE)
        self.sio.on("session_confirm", self.confirmed.put_nowait, namespace=NAMESPACE)
        self.sio.on("connect_error", self._refused, namespace=NAMESPACE)

    def _refused(self, data: Any = None) -> None:
        self.refusal = data

    async def connect(self) -> None:
        await self.sio.connect(
            self.url, namespaces=[NAMESPACE], wait_timeout=TIMEOUT, **self.connect_options
        )

    async def session_request(self, session_id: str | None) -> Any:
        await self.sio.emit("session_request", {"session_id": session_id}, namespace=NAMESPACE)
        return await asyncio.wait_for(self.confirmed.get(), TIMEOUT)

    async def say(self, text: str, session_id: str | None = None, **extra: Any) -> None:
        """As Rasa widgets do: no ack asked for."""
        data = {"message": text, **extra}
        if session_id is not None:
            data["session_id"] = session_id
        await self.sio.emit("user_uttered", data, namespace=NAMESPACE)

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=TIMEOUT)

    async def next_utterance(self) -> Any:
        return await asyncio.wait_for(self.uttered.get(), TIMEOUT)

    async def close(self) -> None:
        await self.sio.disconnect()


WidgetFactory = Callable[..., Awaitable[RasaWidget]]


@pytest.fixture
async def widget(live_server: LiveServer) -> AsyncIterator[WidgetFactory]:
    """``await widget(session_id=..., widget_key=..., connect=True)``: a widget, with its
    session confirmed when ``session_id`` is given (``""``: let the server pick one)."""
    opened: list[RasaWidget] = []

    async def make(
        session_id: str | None = None,
        *,
        widget_key: str | None = live_server.workspace["widget_key"],
        connect: bool = True,
        **options: Any,
    ) -> RasaWidget:
        w = RasaWidget(live_server.url, widget_key, **options)
        opened.append(w)
        if connect:
            await w.connect()
            if session_id is not None:
                await w.session_request(session_id or None)
        return w

    yield make
    for w in reversed(opened):
        await w.close()


def new_session() -> str:
    return uuid.uuid4().hex


def has_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: text_of(event) == text


async def test_a_session_is_confirmed_with_its_id(widget):
    session = new_session()
    w = await widget()
    assert await w.session_request(session) == session  # the bare id, as Rasa emits it
    picked = await w.session_request(None)  # none given: the server picks one
    assert isinstance(picked, str) and len(picked) == 32 and picked != session


async def test_a_user_message_is_stored_and_reaches_the_agents_and_the_reply_comes_back(
    widget, agent, live_server
):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    await w.say("where is my order?", session, customData={"language": "en"})

    seen = await inbox.wait_for("message", has_text("where is my order?"), timeout=TIMEOUT)
    conversation = seen["conversation"]
    assert conversation["channel_type"] == "inapp"
    assert seen["message"]["direction"] == "inbound" and seen["message"]["seq"] == 1
    resp = await live_server.http.get(f"/v1/conversations/{conversation['id']}/messages")
    assert [(m["seq"], m["content"]) for m in resp.json()["data"]] == [
        (1, {"type": "text", "text": "where is my order?"})
    ]
    contact = (await live_server.http.get(f"/v1/contacts/{conversation['contact_id']}")).json()
    assert [(i["channel_type"], i["address"]) for i in contact["identities"]] == [
        ("inapp", f"rasa:{session}")
    ]

    await inbox.send(conversation["id"], "It left the warehouse today.")
    assert await w.next_utterance() == {"text": "It left the warehouse today."}


async def test_rest_replies_arrive_in_rasas_shapes(widget, agent, live_server):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    await w.say("hi", session)
    conversation_id = (await inbox.wait_for("message", timeout=TIMEOUT))["conversation_id"]

    async def post(content: dict[str, Any], author: str = "bot") -> None:
        resp = await live_server.http.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"content": content, "author": {"type": author}},
        )
        assert resp.status_code in (200, 201), resp.text

    await post(
        {
            "type": "buttons",
            "text": "Track or return?",
            "buttons": [{"id": "/track", "title": "Track"}, {"id": "/return", "title": "Return"}],
        }
    )
    assert await w.next_utterance() == {
        "text": "Track or return?",
        "quick_replies": [
            {"content_type": "text", "title": "Track", "payload": "/track"},
            {"content_type": "text", "title": "Return", "payload": "/return"},
        ],
    }

    await post(
        {"type": "media", "url": "https://cdn.example.com/parcel.png", "caption": "Your parcel"}
    )
    assert await w.next_utterance() == {"text": "Your parcel"}
    assert await w.next_utterance() == {
        "attachment": {"type": "image", "payload": {"src": "https://cdn.example.com/parcel.png"}}
    }

    await post(
        {
            "type": "media",
            "url": "https://cdn.example.com/invoice",
            "mime_type": "application/pdf",
            "filename": "invoice.pdf",
        },
        author="agent",
    )
    assert await w.next_utterance() == {
        "attachment": {
            "type": "file",
            "payload": {
                "src": "https://cdn.example.com/invoice",
                "url": "https://cdn.example.com/invoice",
                "name": "invoice.pdf",
            },
        }
    }

    await post({"type": "location", "latitude": 52.52, "longitude": 13.405, "name": "Depot"})
    where = await w.next_utterance()
    assert list(where) == ["text"] and where["text"].startswith("Depot\nhttps://")


async def test_a_user_clicking_a_quick_reply_sends_its_payload(widget, agent):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    await w.say("/track", session)  # what rasa-webchat sends for a quick reply
    seen = await inbox.wait_for("message", timeout=TIMEOUT)
    assert seen["message"]["content"] == {"type": "text", "text": "/track"}


async def test_reconnecting_with_the_session_id_continues_the_conversation(widget, agent):
    inbox = await agent()
    session = new_session()
    first = await widget(session)
    await first.say("one", session)
    before = await inbox.wait_for("message", has_text("one"), timeout=TIMEOUT)
    await inbox.send(before["conversation_id"], "noted")
    assert await first.next_utterance() == {"text": "noted"}
    await first.close()

    again = await widget(session)  # a page reload: new socket, same stored session id
    await again.say("two", session)
    after = await inbox.wait_for("message", has_text("two"), timeout=TIMEOUT)
    assert after["conversation_id"] == before["conversation_id"]
    assert after["message"]["seq"] == 3  # one, noted, two
    assert after["message"]["author"] == before["message"]["author"]

    await inbox.send(after["conversation_id"], "still here")
    assert await again.next_utterance() == {"text": "still here"}


async def test_a_resolved_session_conversation_is_reopened_not_replaced(widget, agent, live_server):
    inbox = await agent()
    session = new_session()
    first = await widget(session)
    await first.say("one", session)
    conversation_id = (await inbox.wait_for("message", timeout=TIMEOUT))["conversation_id"]
    await inbox.set_status(conversation_id, "resolved")
    await first.close()

    again = await widget(session)
    await again.say("back again", session)
    seen = await inbox.wait_for("message", has_text("back again"), timeout=TIMEOUT)
    assert seen["conversation_id"] == conversation_id
    assert seen["conversation"]["status"] == "open"


async def test_another_session_id_is_another_conversation(widget, agent, live_server):
    inbox = await agent()
    ada_session, bob_session = new_session(), new_session()
    ada, bob = await widget(ada_session), await widget(bob_session)
    await ada.say("I am Ada", ada_session)
    from_ada = await inbox.wait_for("message", has_text("I am Ada"), timeout=TIMEOUT)
    await bob.say("I am Bob", bob_session)
    from_bob = await inbox.wait_for("message", has_text("I am Bob"), timeout=TIMEOUT)
    assert from_bob["conversation_id"] != from_ada["conversation_id"]
    assert from_bob["conversation"]["contact_id"] != from_ada["conversation"]["contact_id"]
    assert from_bob["message"]["seq"] == 1

    await post_reply(live_server, from_bob["conversation_id"], "hello Bob")
    await post_reply(live_server, from_ada["conversation_id"], "hello Ada")
    assert await ada.next_utterance() == {"text": "hello Ada"}  # never Bob's reply
    assert await bob.next_utterance() == {"text": "hello Bob"}


async def test_every_tab_of_a_session_hears_the_replies(widget, agent):
    inbox = await agent()
    session = new_session()
    tab1, tab2 = await widget(session), await widget(session)
    await tab1.say("hello", session)
    seen = await inbox.wait_for("message", timeout=TIMEOUT)
    await inbox.send(seen["conversation_id"], "hi!")
    for tab in (tab1, tab2):
        assert await tab.next_utterance() == {"text": "hi!"}


async def test_without_a_session_id_the_socket_is_the_session(widget, agent):
    # Rasa without session_persistence: no session_request, no session_id.
    inbox = await agent()
    w = await widget()
    await w.say("anonymous")
    seen = await inbox.wait_for("message", has_text("anonymous"), timeout=TIMEOUT)
    await inbox.send(seen["conversation_id"], "welcome")
    assert await w.next_utterance() == {"text": "welcome"}

    # A session confirmed earlier is the one a message without a session id speaks for.
    session = new_session()
    other = await widget(session)
    await other.say("first", session)
    first = await inbox.wait_for("message", has_text("first"), timeout=TIMEOUT)
    await other.say("second")
    second = await inbox.wait_for("message", has_text("second"), timeout=TIMEOUT)
    assert second["conversation_id"] == first["conversation_id"] != seen["conversation_id"]
    assert second["message"]["seq"] == 2


async def test_private_notes_never_reach_the_widget(widget, agent):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    await w.say("hello", session)
    seen = await inbox.wait_for("message", timeout=TIMEOUT)

    await inbox.send(seen["conversation_id"], "VIP, be nice", private=True)
    await inbox.send(seen["conversation_id"], "Hello!")
    assert await w.next_utterance() == {"text": "Hello!"}  # the note never came first
    assert w.uttered.empty()


async def test_an_unknown_widget_key_is_refused(widget):
    w = await widget(widget_key="wk_not-a-widget", connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await w.connect()
    assert w.refusal["code"] == "invalid_widget_key"

    nameless = await widget(widget_key=None, connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await nameless.connect()
    assert nameless.refusal["code"] == "invalid_auth"


async def test_the_widget_key_may_come_in_auth(widget, live_server):
    w = await widget(
        widget_key=None, connect=False, auth={"widget_key": live_server.workspace["widget_key"]}
    )
    await w.connect()
    session = new_session()
    assert await w.session_request(session) == session


@pytest.mark.parametrize(
    "event, payload, code",
    [
        ("user_uttered", None, "invalid_payload"),
        ("user_uttered", "hello", "invalid_payload"),
        ("user_uttered", {"session_id": "s"}, "invalid_payload"),
        ("user_uttered", {"message": 42}, "invalid_payload"),
        ("user_uttered", {"message": ""}, "invalid_payload"),
        ("user_uttered", {"message": "hi", "session_id": ["s"]}, "invalid_payload"),
        ("user_uttered", {"message": "x" * 10_001}, "invalid_payload"),
        ("session_request", {"session_id": 7}, "invalid_payload"),
        ("session_request", {"session_id": "s" * 201}, "invalid_payload"),
        ("bot_uttered", {"text": "spoofed"}, "unknown_event"),
    ],
)
async def test_a_malformed_event_is_answered_and_the_connection_stays(
    widget, agent, event, payload, code
):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    # A Rasa widget asks for no ack: the event is just dropped.
    await w.sio.emit(event, payload, namespace=NAMESPACE)
    # Asked for an ack, the error is explained.
    answer = await w.call(event, payload)
    assert answer["ok"] is False and answer["error"]["code"] == code

    await w.say("still here", session)
    seen = await inbox.wait_for("message", has_text("still here"), timeout=TIMEOUT)
    assert seen["message"]["seq"] == 1  # nothing malformed was stored
    assert w.sio.connected


async def test_an_ack_carries_the_stored_message(widget):
    session = new_session()
    w = await widget(session)
    first = await w.call("user_uttered", {"message": "one", "session_id": session})
    second = await w.call("user_uttered", {"message": "two", "session_id": session})
    assert first["ok"] and (first["seq"], second["seq"]) == (1, 2)
    assert first["conversation_id"] == second["conversation_id"]
    assert first["session_id"] == session


async def test_pipelined_messages_are_stored_in_order(widget, live_server):
    session = new_session()
    w = await widget()
    for i in range(10):  # sent before the session is even known to the socket
        await w.say(str(i), session)
    last = await w.call("user_uttered", {"message": "done", "session_id": session})
    resp = await live_server.http.get(f"/v1/conversations/{last['conversation_id']}/messages")
    texts = [m["content"]["text"] for m in resp.json()["data"]]
    assert texts == [str(i) for i in range(10)] + ["done"]


async def test_the_rasa_contact_shows_as_online_to_agents(widget, agent):
    inbox = await agent()
    session = new_session()
    w = await widget(session)
    await w.say("hi", session)
    seen = await inbox.wait_for("message", timeout=TIMEOUT)
    contact_id = seen["conversation"]["contact_id"]
    online = await inbox.presence()
    assert {"type": "contact", "id": contact_id, "online": True} in online
    await w.close()
    gone = await inbox.wait_for(
        "presence", lambda e: e["id"] == contact_id and not e["online"], timeout=TIMEOUT
    )
    assert gone["type"] == "contact"


@pytest.mark.redis
async def test_replies_reach_a_widget_on_another_process(custom_server, agent, make_agent_token):
    # Two servers sharing the database and Redis: the widget on one, the agent on the other.
    redis_url = need_redis()
    here = await custom_server(redis_url=redis_url)
    there = await custom_server(redis_url=redis_url)
    w = RasaWidget(here.url, here.workspace["widget_key"])
    await w.connect()
    try:
        session = new_session()
        await w.session_request(session)
        inbox = await agent(await make_agent_token(here), server=there)
        await w.say("anyone on the other side?", session)
        seen = await inbox.wait_for("message", timeout=TIMEOUT)
        assert text_of(seen) == "anyone on the other side?"
        await inbox.send(seen["conversation_id"], "yes, from elsewhere")
        assert await w.next_utterance() == {"text": "yes, from elsewhere"}
    finally:
        await w.close()


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            {"type": "template", "name": "order_shipped", "parameters": {"body": "Shipped!"}},
            [{"text": "Shipped!"}],
        ),
        (
            {"type": "template", "name": "order_shipped", "parameters": ["A-17", 3]},
            [{"text": "order_shipped: A-17, 3"}],
        ),
        ({"type": "template", "name": "hello"}, [{"text": "hello"}]),
        (
            {"type": "media", "url": "https://cdn.example.com/unboxing.mp4?sig=1"},
            [
                {
                    "attachment": {
                        "type": "video",
                        "payload": {"src": "https://cdn.example.com/unboxing.mp4?sig=1"},
                    }
                }
            ],
        ),
        (
            {"type": "location", "latitude": 1.5, "longitude": -2.25},
            [{"text": "https://www.openstreetmap.org/?mlat=1.5&mlon=-2.25#map=16/1.5/-2.25"}],
        ),
        ({"type": "carousel"}, []),  # a kind Rasa has no shape for is not sent
    ],
)
def test_other_content_in_rasas_shapes(content, expected):
    assert bot_messages({"content": content}) == expected


async def test_sessions_that_never_write_are_no_contacts(widget, live_server, agent):
    inbox = await agent()

    async def contacts() -> int:
        listed = await live_server.http.get("/v1/contacts", params={"limit": 200})
        return len(listed.json()["data"])

    before = await contacts()
    for _ in range(20):
        await widget(new_session())
    await widget()  # no session_request at all
    assert await contacts() == before
    assert not [p for p in await inbox.presence() if p["type"] == "contact"]

    session = new_session()
    w = await widget(session)
    await w.say("now I write", session)
    seen = await inbox.wait_for("message", has_text("now I write"), timeout=TIMEOUT)
    assert await contacts() == before + 1
    contact_id = seen["conversation"]["contact_id"]
    assert {"type": "contact", "id": contact_id, "online": True} in await inbox.presence()
