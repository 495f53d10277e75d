"""The Telegram connector: parsing and the secret-token check against the provider
fixtures, sending against a local fake Bot API (tests/fakes/telegram_api.py), and the
whole pipeline through the real app on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import Inbound, Outbound, Reaction, WebhookRejected, WebhookRequest
from connectors.errors import GiveUp, RetryLater
from connectors.telegram import TelegramConnector
from tests.api.test_channels import VALID
from tests.conftest import LiveServer
from tests.connectors.e2e import agent_reply as reply
from tests.connectors.e2e import messages_in as messages_of
from tests.connectors.e2e import note_stayed_inside, only_conversation, socket_reply_and_note
from tests.connectors.e2e import until_status as settle
from tests.fakes.telegram_api import (
    BLOCKED,
    HANG,
    TOKEN,
    Error,
    FakeTelegram,
    flood,
    migrated,
)
from tests.fakes.webhook_receiver import WebhookReceiver

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
SECRET = json.loads((FIXTURES / "telegram.set_webhook.request.json").read_text())["secret_token"]
CONFIG = {"bot_token": TOKEN, "secret_token": SECRET}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"telegram.{name}.json").read_bytes()


def update(body: bytes, secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest("POST", "https://parley.example/webhooks/ch", headers, {}, body)


def connector(
    url: str = "http://127.0.0.1:9", http: httpx.AsyncClient | None = None
) -> TelegramConnector:
    return TelegramConnector({**CONFIG, "api_base_url": url}, http or httpx.AsyncClient())


def parsed(body: bytes | dict[str, Any]) -> list[Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return list(connector().parse(update(raw)))


JANE = {"id": 123456789, "is_bot": False, "first_name": "Jane", "username": "janedoe"}
CHAT = {"id": 123456789, "first_name": "Jane", "type": "private"}


def message(**fields: Any) -> dict[str, Any]:
    return {
        "update_id": 1,
        "message": {"message_id": 1400, "from": JANE, "chat": CHAT, "date": 1722337000, **fields},
    }


# -- verify -------------------------------------------------------------------------


def test_an_update_with_the_secret_token_is_accepted() -> None:
    connector().verify(update(fixture("update_message")))


def test_a_wrong_secret_token_is_refused_with_403() -> None:
    with pytest.raises(WebhookRejected) as refused:
        connector().verify(update(fixture("update_message"), secret=SECRET + "x"))
    assert refused.value.status == 403


def test_an_update_without_the_secret_token_is_refused_with_401() -> None:
    with pytest.raises(WebhookRejected) as refused:
        connector().verify(update(fixture("update_message"), secret=None))
    assert refused.value.status == 401


def test_there_is_no_handshake() -> None:
    assert connector().challenge(update(fixture("update_message"))) is None


# -- parse: the fixtures ----------------------------------------------------------------


def test_a_text_message_is_text_from_its_chat_with_a_per_chat_id() -> None:
    [msg] = parsed(fixture("update_message"))
    assert isinstance(msg, Inbound)
    assert msg.provider_message_id == "123456789:1365"
    assert msg.sender == "123456789"
    assert msg.content == {"type": "text", "text": "Any news on my ticket?"}
    assert msg.profile == {"name": "Jane Doe", "username": "janedoe", "language": "en"}
    assert msg.sent_at is not None and int(msg.sent_at.timestamp()) == 1722337100


def test_a_command_is_its_text() -> None:
    [msg] = parsed(fixture("update_start_command"))
    assert msg.content == {"type": "text", "text": "/start ticket-42"}
    assert msg.provider_message_id == "123456789:1364"


def test_a_photo_is_media_of_its_largest_size_with_the_caption() -> None:
    [msg] = parsed(fixture("update_photo"))
    assert msg.content["type"] == "media"
    assert msg.content["url"].endswith("AgACAgIAAxkBAAIFT2apZc1fake_large")
    assert TOKEN not in msg.content["url"]
    assert (msg.content["mime_type"], msg.content["caption"]) == (
        "image/jpeg",
        "Screenshot of the error",
    )


def test_an_edit_is_a_new_message_with_its_own_id() -> None:
    [msg] = parsed(fixture("update_edited_message"))
    assert msg.provider_message_id == "123456789:1365:edited:1722337150"
    assert msg.content == {"type": "text", "text": "Any news on my ticket #42?"}


# -- parse: the other message types the Bot API documents --------------------------------


def test_a_document_is_media_with_its_name_and_type() -> None:
    doc = {
        "file_id": "BQACfile",
        "file_unique_id": "u",
        "file_name": "invoice.pdf",
        "mime_type": "application/pdf",
    }
    [msg] = parsed(message(document=doc, caption="my invoice"))
    assert msg.content == {
        "type": "media",
        "url": "https://api.telegram.org/file/BQACfile",
        "mime_type": "application/pdf",
        "caption": "my invoice",
        "filename": "invoice.pdf",
    }


def test_a_voice_note_is_ogg_media() -> None:
    [msg] = parsed(message(voice={"file_id": "AwACvoice", "file_unique_id": "v", "duration": 3}))
    assert (msg.content["type"], msg.content["mime_type"]) == ("media", "audio/ogg")


def test_a_sticker_is_media_captioned_with_its_emoji() -> None:
    sticker = {
        "file_id": "CAACsticker",
        "file_unique_id": "s",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
    [msg] = parsed(message(sticker=sticker))
    assert msg.content["mime_type"] == "image/webp" and msg.content["caption"] == "👍"


def test_a_location_is_a_location() -> None:
    [msg] = parsed(message(location={"latitude": 52.52, "longitude": 13.405}))
    assert msg.content == {"type": "location", "latitude": 52.52, "longitude": 13.405}


def test_a_venue_is_a_named_location() -> None:
    venue = {
        "location": {"latitude": 48.85, "longitude": 2.35},
        "title": "Shop",
        "address": "1 Rue X",
    }
    [msg] = parsed(message(venue=venue, location=venue["location"]))
    assert msg.content == {
        "type": "location",
        "latitude": 48.85,
        "longitude": 2.35,
        "name": "Shop",
        "address": "1 Rue X",
    }


def test_a_shared_contact_is_text_with_name_and_number() -> None:
    contact = {"phone_number": "+4915112345678", "first_name": "Max", "last_name": "Muster"}
    [msg] = parsed(message(contact=contact))
    assert msg.content == {"type": "text", "text": "Contact: Max Muster +4915112345678"}


def test_a_reply_names_the_message_it_answers() -> None:
    [msg] = parsed(
        message(text="yes", reply_to_message={"message_id": 1366, "chat": CHAT, "date": 1})
    )
    assert msg.reply_to == "123456789:1366"


def test_a_channel_post_comes_from_the_channel_named_by_its_title() -> None:
    channel = {
        "id": -1009876543210,
        "title": "Acme news",
        "username": "acme_news",
        "type": "channel",
    }
    body = {
        "update_id": 3,
        "channel_post": {"message_id": 5, "chat": channel, "date": 1, "text": "hi"},
    }
    [msg] = parsed(body)
    assert (msg.sender, msg.provider_message_id) == ("-1009876543210", "-1009876543210:5")
    assert msg.profile == {"name": "Acme news", "username": "acme_news"}


def test_a_service_message_stores_nothing() -> None:
    assert parsed(message(new_chat_title="Support")) == []


def test_a_button_press_is_its_title_from_the_chat_that_holds_the_keyboard() -> None:
    keyboard = {
        "inline_keyboard": [
            [{"text": "Yes please", "callback_data": "yes"}],
            [{"text": "No", "callback_data": "no"}],
        ]
    }
    body = {
        "update_id": 875263421,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": JANE,
            "message": {
                "message_id": 1366,
                "chat": CHAT,
                "date": 1722337200,
                "text": "Reopen?",
                "reply_markup": keyboard,
            },
            "chat_instance": "-123",
            "data": "yes",
        },
    }
    [msg] = parsed(body)
    assert msg.provider_message_id == "callback:4382bfdwdsb323b2d9"
    assert (msg.sender, msg.content, msg.reply_to) == (
        "123456789",
        {"type": "text", "text": "Yes please"},
        "123456789:1366",
    )
    answer = connector().callback_answer(update(json.dumps(body).encode()))
    assert answer is not None and answer.content_type == "application/json"
    reply_shape = json.loads(fixture("webhook_reply_in_response"))  # a Bot API call as the 200 body
    assert json.loads(answer.body) == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
    }
    assert set(reply_shape) >= {"method"}
    assert connector().callback_answer(update(fixture("update_message"))) is None


def reaction(*emojis: str) -> dict[str, Any]:
    new = [{"type": "emoji", "emoji": e} for e in emojis]
    return {
        "update_id": 9,
        "message_reaction": {
            "chat": CHAT,
            "message_id": 1366,
            "user": JANE,
            "date": 1722337300,
            "old_reaction": [],
            "new_reaction": new,
        },
    }


def test_a_reaction_points_at_the_message_in_its_chat_and_an_empty_one_removes_it() -> None:
    assert parsed(reaction("❤")) == [Reaction("123456789:1366", "123456789", "❤")]
    assert parsed(reaction()) == [Reaction("123456789:1366", "123456789", None)]


def test_updates_with_nothing_to_store_parse_to_nothing() -> None:
    assert (
        parsed(
            {"update_id": 5, "inline_query": {"id": "1", "from": JANE, "query": "x", "offset": ""}}
        )
        == []
    )


# -- send against the fake Bot API ------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = await FakeTelegram().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def out(content: dict[str, Any], to: str = "123456789") -> Outbound:
    return Outbound(message_id="msg_1", to=to, content=content)


async def test_text_goes_out_as_send_message_and_the_id_names_the_chat(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    result = await connector(telegram.url, http).send(out({"type": "text", "text": "Hi Jane!"}))
    [call] = telegram.calls
    assert (call.method, call.fields) == ("sendMessage", {"chat_id": 123456789, "text": "Hi Jane!"})
    assert result.provider_message_id == call.provider_message_id == "123456789:1001"
    expected = json.loads(fixture("send_message.request"))
    assert isinstance(expected["chat_id"], int)  # the fixture's chat_id is an integer, like ours


async def test_in_a_group_a_reply_quotes_the_customers_message_and_in_private_it_does_not(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    tg = connector(telegram.url, http)
    text = {"type": "text", "text": "on it"}
    await tg.send(Outbound("m1", "-1001234567890", text, reply_to="-1001234567890:77"))
    await tg.send(Outbound("m2", "123456789", text, reply_to="123456789:1365"))
    await tg.send(Outbound("m3", "-1001234567890", text, reply_to="callback:4382bfd"))
    quotes = [c.fields.get("reply_parameters") for c in telegram.sent]
    assert quotes == [{"message_id": 77, "allow_sending_without_reply": True}, None, None]


async def test_buttons_go_out_as_an_inline_keyboard(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    content = {
        "type": "buttons",
        "text": "Reopen?",
        "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
    }
    await connector(telegram.url, http).send(out(content))
    [call] = telegram.sent
    assert call.fields["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}],
            [{"text": "No", "callback_data": "no"}],
        ]
    }


async def test_a_button_id_over_64_bytes_is_refused_before_sending(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    content = {"type": "buttons", "text": "?", "buttons": [{"id": "x" * 65, "title": "X"}]}
    with pytest.raises(GiveUp) as refused:
        await connector(telegram.url, http).send(out(content))
    assert refused.value.code == "button_id_too_long" and telegram.calls == []


@pytest.mark.parametrize(
    ("content", "method", "field"),
    [
        (
            {
                "type": "media",
                "url": "https://cdn.example/a.png",
                "mime_type": "image/png",
                "caption": "see",
            },
            "sendPhoto",
            "photo",
        ),
        (
            {"type": "media", "url": "https://cdn.example/a.pdf", "mime_type": "application/pdf"},
            "sendDocument",
            "document",
        ),
        ({"type": "media", "url": "https://cdn.example/a.bin"}, "sendDocument", "document"),
        (
            {"type": "media", "url": "https://cdn.example/a.mp4", "mime_type": "video/mp4"},
            "sendVideo",
            "video",
        ),
    ],
)
async def test_media_goes_out_by_url_through_the_method_for_its_type(
    telegram: FakeTelegram,
    http: httpx.AsyncClient,
    content: dict[str, Any],
    method: str,
    field: str,
) -> None:
    await connector(telegram.url, http).send(out(content))
    [call] = telegram.sent
    assert call.method == method and call.fields[field] == content["url"]
    assert call.fields.get("caption") == content.get("caption")


async def test_a_location_goes_out_as_send_location(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    await connector(telegram.url, http).send(
        out({"type": "location", "latitude": 1.5, "longitude": 2.5})
    )
    [call] = telegram.sent
    assert (call.method, call.fields["latitude"], call.fields["longitude"]) == (
        "sendLocation",
        1.5,
        2.5,
    )


async def test_a_template_cannot_go_out(telegram: FakeTelegram, http: httpx.AsyncClient) -> None:
    with pytest.raises(GiveUp) as refused:
        await connector(telegram.url, http).send(out({"type": "template", "name": "x"}))
    assert refused.value.code == "content_not_supported"


def replay(name: str) -> Error:
    """A fixture's error answer, served by the fake as Telegram would."""
    body = json.loads(fixture(name))
    return Error(body["error_code"], body["description"], body.get("parameters"))


@pytest.mark.parametrize(
    ("name", "code"),
    [("error_blocked", "403"), ("error_chat_not_found", "400"), ("error_unauthorized", "401")],
)
async def test_permanent_errors_give_up_with_telegrams_code_and_description(
    telegram: FakeTelegram, http: httpx.AsyncClient, name: str, code: str
) -> None:
    telegram.respond(replay(name))
    with pytest.raises(GiveUp) as refused:
        await connector(telegram.url, http).send(out({"type": "text", "text": "hi"}))
    expected = json.loads(fixture(name))
    assert (refused.value.code, refused.value.message) == (code, expected["description"])
    assert refused.value.status_code == expected["error_code"]


async def test_a_wrong_bot_token_is_refused_by_telegram_and_given_up(
    http: httpx.AsyncClient,
) -> None:
    fake = await FakeTelegram(token="1:other").start()
    try:
        with pytest.raises(GiveUp) as refused:
            await connector(fake.url, http).send(out({"type": "text", "text": "hi"}))
    finally:
        await fake.stop()
    assert refused.value.code == "401" and fake.calls == []


async def test_flood_control_is_retried_after_telegrams_retry_after(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    telegram.respond(replay("error_429"))
    with pytest.raises(RetryLater) as later:
        await connector(telegram.url, http).send(out({"type": "text", "text": "hi"}))
    assert (later.value.code, later.value.retry_after, later.value.status_code) == (
        "429",
        35.0,
        429,
    )


async def test_a_server_error_is_retried(telegram: FakeTelegram, http: httpx.AsyncClient) -> None:
    telegram.respond(Error(500, "Internal Server Error"))
    with pytest.raises(RetryLater) as later:
        await connector(telegram.url, http).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "500"


async def test_a_hanging_telegram_is_retried_after_the_timeout(telegram: FakeTelegram) -> None:
    telegram.respond(HANG)
    async with httpx.AsyncClient(timeout=0.2) as short:
        with pytest.raises(RetryLater) as later:
            await connector(telegram.url, short).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "timeout"


async def test_an_unreachable_telegram_is_retried(http: httpx.AsyncClient) -> None:
    with pytest.raises(RetryLater) as later:
        await connector("http://127.0.0.1:9", http).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "connection_error"


async def test_a_group_that_became_a_supergroup_is_sent_to_the_new_chat(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    telegram.respond(replay("error_migrated"))
    result = await connector(telegram.url, http).send(
        out({"type": "text", "text": "hi"}, to="-4001")
    )
    assert [c.fields["chat_id"] for c in telegram.calls] == [-4001, -1001234567890]
    assert result.provider_message_id == "-1001234567890:1001"


async def test_a_callback_query_can_be_answered_with_a_call(
    telegram: FakeTelegram, http: httpx.AsyncClient
) -> None:
    await connector(telegram.url, http).answer_callback_query("4382bfdwdsb323b2d9")
    [call] = telegram.of("answerCallbackQuery")
    assert call.fields == {"callback_query_id": "4382bfdwdsb323b2d9"}


# -- end to end: the real app on both databases -------------------------------------------

TG = VALID["telegram"]


@pytest.fixture
async def tg_api(db_url: str) -> AsyncIterator[FakeTelegram]:
    fake = await FakeTelegram(token=TG["bot_token"]).start()
    yield fake
    await fake.stop()


async def tg_channel(api: httpx.AsyncClient, fake: FakeTelegram) -> str:
    config = {**TG, "api_base_url": fake.url}
    r = await api.post("/v1/channels", json={"type": "telegram", "name": "Bot", "config": config})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def deliver(
    client: httpx.AsyncClient,
    channel_id: str,
    body: bytes | dict[str, Any],
    secret: str | None = TG["secret_token"],
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return await client.post(f"/webhooks/{channel_id}", content=raw, headers=headers)


async def test_an_update_becomes_a_conversation_and_the_agents_reply_reaches_telegram(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    r = await deliver(client, channel, fixture("update_message"))
    assert r.status_code == 200, r.text
    conv = await only_conversation(api, channel)
    [inbound] = await messages_of(api, conv["id"])
    assert inbound["direction"] == "inbound"
    assert inbound["content"] == {"type": "text", "text": "Any news on my ticket?"}

    sent_id = await reply(
        api, conv["id"], {"type": "text", "text": "Hi Jane! Your ticket #42 has been updated."}
    )
    msg = await settle(api, runtime, sent_id, "sent")
    [call] = tg_api.sent
    assert (call.method, call.fields["chat_id"], call.fields["text"]) == (
        "sendMessage",
        123456789,
        "Hi Jane! Your ticket #42 has been updated.",
    )
    assert msg["delivery"]["provider_message_id"] == "123456789:1001"


async def test_buttons_go_out_as_a_keyboard_and_a_press_comes_back_in_the_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    await deliver(client, channel, fixture("update_message"))
    conv = await only_conversation(api, channel)
    content = {
        "type": "buttons",
        "text": "Reopen it?",
        "buttons": [{"id": "reopen", "title": "Reopen"}],
    }
    sent_id = await reply(api, conv["id"], content)
    await settle(api, runtime, sent_id, "sent")
    [call] = tg_api.sent
    assert call.result is not None
    press = {
        "update_id": 875263500,
        "callback_query": {
            "id": "cbq-1",
            "from": JANE,
            "message": call.result,
            "chat_instance": "1",
            "data": "reopen",
        },
    }
    answered = await deliver(client, channel, press)
    assert answered.status_code == 200
    # The press is answered in the webhook's response, so the button stops spinning.
    assert answered.headers["content-type"].startswith("application/json")
    assert answered.json() == {"method": "answerCallbackQuery", "callback_query_id": "cbq-1"}
    history = await messages_of(api, conv["id"])
    assert [(m["direction"], m["content"].get("text")) for m in history] == [
        ("inbound", "Any news on my ticket?"),
        ("outbound", "Reopen it?"),
        ("inbound", "Reopen"),
    ]


async def test_media_goes_out_as_a_photo(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    await deliver(client, channel, fixture("update_photo"))
    conv = await only_conversation(api, channel)
    [inbound] = await messages_of(api, conv["id"])
    assert inbound["content"]["type"] == "media"
    media = {
        "type": "media",
        "url": "https://cdn.example/fix.png",
        "mime_type": "image/png",
        "caption": "Fixed",
    }
    await settle(api, runtime, await reply(api, conv["id"], media), "sent")
    [call] = tg_api.sent
    assert (call.method, call.fields["photo"], call.fields["caption"]) == (
        "sendPhoto",
        media["url"],
        "Fixed",
    )


async def test_server_errors_and_flood_control_are_retried_then_sent(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    await deliver(client, channel, fixture("update_message"))
    conv = await only_conversation(api, channel)
    tg_api.respond(Error(502, "Bad Gateway"), flood(1))
    msg = await settle(
        api, runtime, await reply(api, conv["id"], {"type": "text", "text": "x"}), "sent"
    )
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["502", "429", None]
    assert len(tg_api.sent) == 1


async def test_a_blocked_bot_fails_the_reply_with_telegrams_code(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    await deliver(client, channel, fixture("update_message"))
    conv = await only_conversation(api, channel)
    tg_api.respond(BLOCKED)
    msg = await settle(
        api, runtime, await reply(api, conv["id"], {"type": "text", "text": "x"}), "failed"
    )
    assert msg["status_history"][-1]["detail"]["code"] == "403"
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["403"]


async def test_a_group_migrated_to_a_supergroup_still_gets_the_reply(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    await deliver(client, channel, fixture("update_message"))
    conv = await only_conversation(api, channel)
    tg_api.respond(migrated(-1001234567890))
    msg = await settle(
        api, runtime, await reply(api, conv["id"], {"type": "text", "text": "x"}), "sent"
    )
    assert msg["delivery"]["provider_message_id"] == "-1001234567890:1001"


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("tg_secret_0009x", 403)])
async def test_an_update_without_the_right_secret_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    tg_api: FakeTelegram,
    secret: str | None,
    status: int,
) -> None:
    channel = await tg_channel(api, tg_api)
    r = await deliver(client, channel, fixture("update_message"), secret=secret)
    assert r.status_code == status
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


async def test_a_repeated_update_is_stored_once_and_an_edit_is_stored_beside_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    for name in (
        "update_message",
        "update_message",
        "update_edited_message",
        "update_edited_message",
    ):
        assert (await deliver(client, channel, fixture(name))).status_code == 200
    conv = await only_conversation(api, channel)
    assert [m["content"]["text"] for m in await messages_of(api, conv["id"])] == [
        "Any news on my ticket?",
        "Any news on my ticket #42?",
    ]


async def test_a_group_is_one_contact_and_the_reply_goes_to_the_group(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    channel = await tg_channel(api, tg_api)
    group = {"id": -1001234567890, "title": "Acme customers", "type": "supergroup"}
    body = {
        "update_id": 2,
        "message": {
            "message_id": 77,
            "from": JANE,
            "chat": group,
            "date": 1722337000,
            "text": "@acme_support_bot help",
        },
    }
    assert (await deliver(client, channel, body)).status_code == 200
    conv = await only_conversation(api, channel)
    await settle(
        api, runtime, await reply(api, conv["id"], {"type": "text", "text": "Hello group"}), "sent"
    )
    [call] = tg_api.sent
    assert call.fields["chat_id"] == -1001234567890


async def test_a_reaction_to_a_sent_reply_reaches_the_workspaces_webhooks(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, tg_api: FakeTelegram
) -> None:
    receiver = await WebhookReceiver().start()
    try:
        r = await api.post("/v1/webhooks", json={"url": receiver.url})
        assert r.status_code == 201, r.text
        channel = await tg_channel(api, tg_api)
        await deliver(client, channel, fixture("update_message"))
        conv = await only_conversation(api, channel)
        sent_id = await reply(api, conv["id"], {"type": "text", "text": "Done!"})
        await settle(api, runtime, sent_id, "sent")
        [call] = tg_api.sent
        assert call.result is not None
        reaction = {
            "update_id": 875263600,
            "message_reaction": {
                "chat": call.result["chat"],
                "message_id": call.result["message_id"],
                "user": JANE,
                "date": 1722337400,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            },
        }
        assert (await deliver(client, channel, reaction)).status_code == 200

        def reactions(got: WebhookReceiver) -> list[Any]:
            return [e for r in got.requests if (e := r.json())["type"] == "message.reaction"]

        await receiver.wait_for(lambda got: len(reactions(got)) >= 1)
        [event] = reactions(receiver)
        assert (event["data"]["message_id"], event["data"]["emoji"]) == (sent_id, "👍")
    finally:
        await receiver.stop()


async def test_an_agents_reply_on_the_agent_socket_reaches_telegram_and_a_note_does_not(
    live_server: LiveServer, tg_api: FakeTelegram
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    channel = await tg_channel(api, tg_api)
    assert (await deliver(api, channel, fixture("update_message"))).status_code == 200
    conv = await only_conversation(api, channel)

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "Ticket #42 is fixed.")
    msg = await settle(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [call] = tg_api.calls
    assert (call.method, call.fields["chat_id"], call.fields["text"]) == (
        "sendMessage",
        123456789,
        "Ticket #42 is fixed.",
    )
    assert msg["delivery"]["provider_message_id"] == "123456789:1001"
