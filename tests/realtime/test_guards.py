"""Malformed events answer with error acks (or are ignored without one): never a crash,
never a dropped connection."""

from __future__ import annotations


def error_code(ack) -> str | None:
    return ack["error"]["code"] if isinstance(ack, dict) and ack.get("ok") is False else None


MALFORMED = [
    ("message", None),
    ("message", "just a string"),
    ("message", [1, 2, 3]),
    ("message", 42),
    ("message", {"content": {"type": "text", "text": "no client_message_id"}}),
    ("message", {"client_message_id": 7, "content": {"type": "text", "text": "hi"}}),
    ("message", {"client_message_id": "x", "content": {"type": "text"}}),
    ("message", {"client_message_id": "x", "content": {"type": "hologram"}}),
    ("message", {"client_message_id": "x", "content": "hi"}),
    (
        "message",
        {
            "conversation_id": 12,
            "client_message_id": "x",
            "content": {"type": "text", "text": "hi"},
        },
    ),
    ("read", {"conversation_id": "cnv_x", "seq": "5"}),
    ("read", {"conversation_id": "cnv_x", "seq": -1}),
    ("typing", {"conversation_id": "cnv_x", "typing": "yes"}),
    ("resync", {}),
    ("register_push", {"channel_type": "sms", "token": "t"}),
]


async def test_malformed_events_get_error_acks(customer):
    visitor = await customer("ada", auto_delivered=False)
    for event, data in MALFORMED:
        ack = await visitor.request(event, data)
        assert error_code(ack) == "invalid_payload", (event, data, ack)
    assert visitor.connected
    assert (await visitor.send("fine"))["seq"] == 1


async def test_unknown_reserved_and_multi_argument_events_get_error_acks(customer):
    visitor = await customer("ada", auto_delivered=False)
    assert error_code(await visitor.request("frobnicate", {})) == "unknown_event"
    assert error_code(await visitor.request("connect", {"widget_key": "x"})) == "unknown_event"
    assert error_code(await visitor.request("disconnect", {})) == "unknown_event"
    assert (
        error_code(await visitor.request("read", ({"conversation_id": "c", "seq": 1}, "extra")))
        == "invalid_payload"
    )
    assert visitor.connected


async def test_malformed_events_without_an_ack_are_ignored(customer):
    visitor = await customer("ada", auto_delivered=False)
    for event, data in MALFORMED[:4]:
        await visitor.emit(event, data)
    assert (await visitor.send("fine"))["seq"] == 1


async def test_malformed_agent_events_get_error_acks(agent, customer):
    inbox = await agent()
    visitor = await customer("ada")
    conversation_id = (await visitor.send("hello"))["conversation_id"]
    cases = [
        ("assign", {"conversation_id": conversation_id, "assignee": {"type": "human", "id": "x"}}),
        ("assign", {"conversation_id": conversation_id}),
        ("status", {"conversation_id": conversation_id, "status": "closed"}),
        (
            "message",
            {
                "conversation_id": conversation_id,
                "client_message_id": "a",
                "content": {"type": "text", "text": "x"},
                "private": "yes",
            },
        ),
    ]
    for event, data in cases:
        assert error_code(await inbox.request(event, data)) == "invalid_payload", (event, data)
    assert (await inbox.send(conversation_id, "still fine"))["seq"] == 2
