"""The WeChat Official Account connector: signatures and safe-mode decryption against the
provider's vectors, every message type and event parsed from XML, customer-service sends
and the access-token cache against a local fake API (tests/fakes/wechat_api.py), and the
whole pipeline through the real app on both databases."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from connectors.base import (
    AccessToken,
    Inbound,
    Outbound,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.tokens import MemoryTokenCache
from connectors.wechat import WeChatConnector
from connectors.wechat_crypto import DecryptError, MessageCrypto, signature
from tests.conftest import LiveServer
from tests.connectors.e2e import agent_reply as reply
from tests.connectors.e2e import messages_in as messages_of
from tests.connectors.e2e import note_stayed_inside, only_conversation, socket_reply_and_note
from tests.connectors.e2e import until_status as settle
from tests.fakes.wechat_api import (
    APP_ID,
    APP_SECRET,
    HANG,
    OPENID,
    QUOTA,
    SYSTEM_BUSY,
    Err,
    FakeWeChat,
    Http,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "wechat.signature_vectors.json").read_text())
AES = VECTORS["aes_fixture"]
TOKEN = "test_wechat_token"  # the fixtures' callback token
CONFIG = {"app_id": AES["appid"], "app_secret": APP_SECRET, "token": TOKEN}
AES_CONFIG = {**CONFIG, "encoding_aes_key": AES["encoding_aes_key"]}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"wechat.{name}").read_bytes()


def error_fixture(name: str) -> Err:
    body = json.loads(fixture(f"{name}.json"))
    return Err(body["errcode"], body["errmsg"])


def from_request_line(name: str, body: bytes = b"") -> WebhookRequest:
    """A request as the fixture's first line names it, with ``body``."""
    method, target, _ = fixture(name).decode().splitlines()[0].split(" ")
    query = dict(parse_qsl(urlsplit(target).query))
    return WebhookRequest(
        method, f"https://parley.example{target}", {"content-type": "text/xml"}, query, body
    )


def connector(
    url: str = "http://127.0.0.1:9",
    http: httpx.AsyncClient | None = None,
    **config: Any,
) -> WeChatConnector:
    return WeChatConnector({**CONFIG, "api_base_url": url, **config}, http or httpx.AsyncClient())


def signed(
    body: bytes, token: str = TOKEN, crypto: MessageCrypto | None = None, nonce: str = "1803357281"
) -> tuple[dict[str, str], bytes]:
    """The query WeChat signs a callback with, and its body (encrypted with ``crypto``)."""
    timestamp = "1722337300"
    query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp}
    query |= {"nonce": nonce, "openid": OPENID}
    if crypto is not None:
        encrypted = crypto.encrypt(body)
        body = f"<xml><ToUserName><![CDATA[gh_3f1d2c4b5a69]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
        query |= {
            "encrypt_type": "aes",
            "msg_signature": signature(token, timestamp, nonce, encrypted),
        }
    return query, body


def post(body: bytes, **kwargs: Any) -> WebhookRequest:
    query, body = signed(body, **kwargs)
    return WebhookRequest("POST", "https://parley.example/webhooks/ch", {}, query, body)


def message_xml(msg_type: str, msg_id: str | None = "24640512398234999", **fields: str) -> bytes:
    parts = [
        "<xml>",
        "<ToUserName><![CDATA[gh_3f1d2c4b5a69]]></ToUserName>",
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>",
        "<CreateTime>1722337400</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
    ]
    parts += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()]
    if msg_id is not None:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "".join([*parts, "</xml>"]).encode()


def parsed(xml: bytes) -> list[Any]:
    return list(connector().parse(post(xml)))


# -- signatures: the provider's vectors, exactly --------------------------------------


def test_the_official_signature_vector() -> None:
    v = VECTORS["official_vector"]
    assert signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]


@pytest.mark.parametrize("vector", VECTORS["fixtures"], ids=lambda v: v["file"])
def test_the_fixture_requests_carry_the_signature_of_their_vector(vector: dict[str, str]) -> None:
    assert signature(vector["token"], vector["timestamp"], vector["nonce"]) == vector["signature"]
    request = from_request_line(vector["file"].removeprefix("wechat."))
    assert request.query["signature"] == vector["signature"]
    connector(token=vector["token"]).verify(request)


def test_the_url_check_is_answered_with_echostr_verbatim() -> None:
    request = from_request_line("verify_request.http")
    wechat = connector()
    wechat.verify(request)
    answer = wechat.challenge(request)
    assert answer is not None and answer.status == 200
    assert answer.body == fixture("verify_response.txt")


def test_a_url_check_with_a_wrong_signature_is_refused_with_403() -> None:
    request = from_request_line("verify_request.http")
    with pytest.raises(WebhookRejected) as refused:
        connector(token="another_token").verify(request)
    assert refused.value.status == 403


def test_a_callback_without_a_signature_is_refused_with_401() -> None:
    bare = WebhookRequest("POST", "https://parley.example/webhooks/ch", {}, {}, b"<xml/>")
    with pytest.raises(WebhookRejected) as refused:
        connector().verify(bare)
    assert refused.value.status == 401


def test_a_message_is_not_a_handshake_and_is_answered_success() -> None:
    request = from_request_line("inbound_request_line.txt", fixture("inbound_text.xml"))
    assert connector().challenge(request) is None
    answer = connector().callback_answer(request)
    assert answer is not None and answer.body == fixture("passive_reply_ack.txt")


# -- safe mode ------------------------------------------------------------------------


def aes_request(**config: Any) -> tuple[WeChatConnector, WebhookRequest]:
    request = from_request_line(
        "inbound_text_aes.request_line.txt", fixture("inbound_text_aes.xml")
    )
    return connector(**{**AES_CONFIG, **config}), request


def test_the_aes_fixture_is_verified_and_decrypts_to_the_plain_message() -> None:
    wechat, request = aes_request()
    assert request.query["msg_signature"] == AES["msg_signature"]
    wechat.verify(request)
    plain = connector().parse(
        from_request_line("inbound_request_line.txt", fixture("inbound_text.xml"))
    )
    assert list(wechat.parse(request)) == list(plain)
    [msg] = plain
    assert msg.content == {"type": "text", "text": "你好，我的订单到哪了？"}


def test_our_encryption_reproduces_the_fixture_byte_for_byte() -> None:
    crypto = MessageCrypto(AES["encoding_aes_key"], AES["appid"])
    encrypted = re.search(rb"<Encrypt><!\[CDATA\[(.*)\]\]>", fixture("inbound_text_aes.xml"))
    assert encrypted is not None
    assert crypto.encrypt(fixture("inbound_text.xml"), AES["random_prefix"].encode()) == (
        encrypted.group(1).decode()
    )


def test_the_wechatpy_vector_decrypts_to_its_message() -> None:
    v = VECTORS["aes_mode_vector"]
    assert signature(v["token"], v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]
    crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
    assert crypto.decrypt(v["echostr"]) == b"5927782489442352469"
    with pytest.raises(DecryptError):
        MessageCrypto(v["encoding_aes_key"], "wx0000000000000000").decrypt(v["echostr"])


def test_a_wrong_msg_signature_is_refused() -> None:
    wechat, request = aes_request()
    query = {**request.query, "msg_signature": "0" * 40}
    with pytest.raises(WebhookRejected) as refused:
        wechat.verify(WebhookRequest("POST", request.url, {}, query, request.body))
    assert refused.value.status == 403


def test_a_message_for_another_appid_is_refused() -> None:
    wechat, request = aes_request(app_id="wx0000000000000000")
    with pytest.raises(WebhookRejected) as refused:
        wechat.verify(request)
    assert refused.value.status == 403 and "appid" in str(refused.value)


def test_a_message_under_another_key_is_refused() -> None:
    wechat, request = aes_request(encoding_aes_key="Z" * 43)
    with pytest.raises(WebhookRejected):
        wechat.verify(request)


def test_a_plain_message_to_a_channel_in_safe_mode_is_refused() -> None:
    # ``signature`` covers no body: only ``msg_signature`` vouches for the content.
    request = from_request_line("inbound_request_line.txt", fixture("inbound_text.xml"))
    with pytest.raises(WebhookRejected) as refused:
        connector(**AES_CONFIG).verify(request)
    assert refused.value.status == 403


def test_an_encrypted_message_to_a_channel_without_a_key_is_refused() -> None:
    _, request = aes_request()
    with pytest.raises(WebhookRejected) as refused:
        connector().verify(request)
    assert refused.value.status == 403


# -- parse: every MsgType -------------------------------------------------------------


def test_a_text_message_is_text_from_the_openid_with_its_msgid() -> None:
    [msg] = parsed(fixture("inbound_text.xml"))
    assert isinstance(msg, Inbound)
    assert (msg.provider_message_id, msg.sender) == ("24640512398234567", OPENID)
    assert msg.content == {"type": "text", "text": "你好，我的订单到哪了？"}
    assert msg.sent_at is not None and int(msg.sent_at.timestamp()) == 1722337300


def test_an_image_is_media_at_its_picurl() -> None:
    [msg] = parsed(fixture("inbound_image.xml"))
    assert msg.provider_message_id == "24640512398234568"
    assert msg.content == {
        "type": "media",
        "url": "http://mmbiz.qpic.cn/mmbiz_jpg/example/0",
        "mime_type": "image/jpeg",
    }


def test_a_voice_message_is_audio_captioned_with_its_recognition() -> None:
    [msg] = parsed(message_xml("voice", MediaId="voice_media_1", Format="amr", Recognition="你好"))
    assert msg.content == {
        "type": "media",
        "url": "https://api.weixin.qq.com/cgi-bin/media/get?media_id=voice_media_1",
        "mime_type": "audio/amr",
        "caption": "你好",
    }
    [plain] = parsed(message_xml("voice", MediaId="v2", Format="speex"))
    assert plain.content["mime_type"] == "audio/speex" and "caption" not in plain.content


@pytest.mark.parametrize("kind", ["video", "shortvideo"])
def test_a_video_is_mp4_media(kind: str) -> None:
    [msg] = parsed(message_xml(kind, MediaId="vid/1", ThumbMediaId="thumb1"))
    assert msg.content == {
        "type": "media",
        "url": "https://api.weixin.qq.com/cgi-bin/media/get?media_id=vid%2F1",
        "mime_type": "video/mp4",
    }


def test_a_location_is_a_location_with_its_label() -> None:
    xml = message_xml(
        "location", Location_X="23.134521", Location_Y="113.358803", Scale="20", Label="广州市"
    )
    [msg] = parsed(xml)
    assert msg.content == {
        "type": "location",
        "latitude": 23.134521,
        "longitude": 113.358803,
        "address": "广州市",
    }


def test_a_link_is_text_with_title_description_and_url() -> None:
    xml = message_xml("link", Title="Order", Description="My order", Url="https://x.example/o/1")
    [msg] = parsed(xml)
    assert msg.content == {"type": "text", "text": "Order\nMy order\nhttps://x.example/o/1"}


def test_a_file_is_text_naming_it() -> None:
    [msg] = parsed(message_xml("file", Title="invoice.pdf", FileKey="k", FileTotalLen="1024"))
    assert msg.content == {"type": "text", "text": "File: invoice.pdf"}


def test_a_tap_on_a_menu_message_is_text() -> None:
    [msg] = parsed(message_xml("text", Content="Yes", bizmsgmenuid="yes"))
    assert msg.content == {"type": "text", "text": "Yes"}


def test_an_unknown_msgtype_cannot_be_parsed() -> None:
    with pytest.raises(ValueError, match="unknown MsgType"):
        parsed(message_xml("hologram"))


def test_xml_with_a_dtd_is_refused() -> None:
    bomb = b'<!DOCTYPE xml [<!ENTITY a "aaaa">]><xml><MsgType>text</MsgType></xml>'
    with pytest.raises(ValueError, match="DTD"):
        parsed(bomb)


# -- parse: events --------------------------------------------------------------------


def test_a_template_finish_event_is_a_delivered_status_of_its_msgid() -> None:
    [update] = parsed(fixture("inbound_event_template_finish.xml"))
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status) == ("200163836", "delivered")


@pytest.mark.parametrize(
    ("status", "code"),
    [("failed:user block", "user_block"), ("failed: system failed", "system_failed")],
)
def test_a_failed_template_is_a_failed_status_with_the_reason(status: str, code: str) -> None:
    xml = message_xml("event", None, Event="TEMPLATESENDJOBFINISH", Status=status)
    xml = xml.replace(b"</xml>", b"<MsgID>200163837</MsgID></xml>")
    [update] = parsed(xml)
    assert (update.status, update.error_code, update.error_message) == ("failed", code, status)


def test_a_menu_click_is_its_key_as_text_stored_once_per_click() -> None:
    [msg] = parsed(message_xml("event", None, Event="CLICK", EventKey="V1001_ORDER_STATUS"))
    assert msg.content == {"type": "text", "text": "V1001_ORDER_STATUS"}
    assert msg.provider_message_id == f"event:{OPENID}:1722337400:CLICK:V1001_ORDER_STATUS"


@pytest.mark.parametrize(
    "fields",
    [
        {"Event": "unsubscribe"},
        {"Event": "subscribe", "EventKey": "qrscene_123123", "Ticket": "TICKET"},
        {"Event": "SCAN", "EventKey": "123123", "Ticket": "TICKET"},
        {"Event": "LOCATION", "Latitude": "23.1", "Longitude": "113.3", "Precision": "119.3"},
        {"Event": "VIEW", "EventKey": "https://www.example.com/"},
        {"Event": "kf_create_session", "KfAccount": "test1@test"},
    ],
    ids=lambda f: f["Event"],
)
def test_events_that_are_no_customer_message_store_nothing(fields: dict[str, str]) -> None:
    assert parsed(message_xml("event", None, **fields)) == []


def test_a_subscribe_stores_nothing() -> None:
    assert parsed(fixture("inbound_event_subscribe.xml")) == []


# -- the token cache ------------------------------------------------------------------


async def test_a_token_is_kept_until_shortly_before_it_expires() -> None:
    now = [0.0]
    cache = MemoryTokenCache(margin=300, clock=lambda: now[0])
    fetched: list[str] = []

    async def fetch() -> AccessToken:
        fetched.append(f"t{len(fetched)}")
        return AccessToken(fetched[-1], 7200)

    assert await cache.get("k", fetch) == "t0"
    now[0] = 6899
    assert await cache.get("k", fetch) == "t0"
    now[0] = 6900
    assert await cache.get("k", fetch) == "t1"


async def test_a_refused_token_is_replaced_once_however_many_callers_saw_it_refused() -> None:
    cache = MemoryTokenCache()
    fetches = 0

    async def fetch() -> AccessToken:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        return AccessToken(f"t{fetches}", 7200)

    first = await asyncio.gather(*(cache.get("k", fetch) for _ in range(10)))
    assert set(first) == {"t1"} and fetches == 1
    again = await asyncio.gather(*(cache.get("k", fetch, refused="t1") for _ in range(10)))
    assert set(again) == {"t2"} and fetches == 2


# -- send against the fake API --------------------------------------------------------


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = await FakeWeChat(app_id=AES["appid"]).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def out(content: dict[str, Any], to: str = OPENID, message_id: str = "msg_1") -> Outbound:
    return Outbound(message_id=message_id, to=to, content=content)


async def test_the_fake_hands_out_tokens_shaped_like_wechats(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    query = {"grant_type": "client_credential", "appid": AES["appid"], "secret": APP_SECRET}
    answer = (await http.get(f"{wechat.url}/cgi-bin/token", params=query)).json()
    sample = json.loads(fixture("token_response.json"))
    assert set(answer) == set(sample) and answer["expires_in"] == sample["expires_in"]
    wrong = await http.get(f"{wechat.url}/cgi-bin/token", params={**query, "secret": "x"})
    assert wrong.json()["errcode"] == 40001 and wechat.token_calls == 1


def sender(fake: FakeWeChat, http: httpx.AsyncClient, cache: MemoryTokenCache) -> WeChatConnector:
    """A connector as the delivery listener builds one per send: sharing ``cache``."""
    wechat = connector(fake.url, http)
    wechat.use_tokens(cache)
    return wechat


async def test_text_goes_out_through_the_customer_service_api(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    expected = json.loads(fixture("custom_send_text.request.json"))
    text = {"type": "text", "text": expected["text"]["content"]}
    result = await connector(wechat.url, http).send(out(text))
    [call] = wechat.sent
    assert call.path == "/cgi-bin/message/custom/send"
    assert call.body == expected
    assert result.provider_message_id == "custom:msg_1"


async def test_many_sends_share_one_token_and_concurrent_ones_fetch_it_once(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    cache = MemoryTokenCache()
    text = {"type": "text", "text": "hi"}
    await asyncio.gather(*(sender(wechat, http, cache).send(out(text)) for _ in range(8)))
    for _ in range(3):
        await sender(wechat, http, cache).send(out(text))
    assert wechat.token_calls == 1 and len(wechat.sent) == 11


@pytest.mark.parametrize(
    ("lose", "refusal"),
    [("revoke_tokens", "error_invalid_token"), ("expire_tokens", "error_token_expired")],
)
async def test_a_refused_token_is_refreshed_once_and_the_message_sent(
    wechat: FakeWeChat, http: httpx.AsyncClient, lose: str, refusal: str
) -> None:
    cache = MemoryTokenCache()
    await sender(wechat, http, cache).send(out({"type": "text", "text": "one"}))
    getattr(wechat, lose)()
    await sender(wechat, http, cache).send(out({"type": "text", "text": "two"}))
    assert wechat.token_calls == 2
    assert [c.body["text"]["content"] for c in wechat.sent] == ["one", "two"]
    assert [e for _, e in wechat.refused] == [error_fixture(refusal).errcode]


async def test_buttons_go_out_as_a_menu_message(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    content = {
        "type": "buttons",
        "text": "Reopen your ticket?",
        "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
    }
    await connector(wechat.url, http).send(out(content))
    [call] = wechat.sent
    assert call.body["msgtype"] == "msgmenu"
    assert call.body["msgmenu"] == {
        "head_content": "Reopen your ticket?",
        "list": [{"id": "yes", "content": "Yes"}, {"id": "no", "content": "No"}],
        "tail_content": "",
    }


async def test_an_image_is_uploaded_and_sent_by_media_id_and_its_caption_follows(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    wechat.files["fix.png"] = (b"\x89PNG fake image", "image/png")
    content = {"type": "media", "url": f"{wechat.url}/files/fix.png", "mime_type": "image/png"}
    await connector(wechat.url, http).send(out({**content, "caption": "Fixed"}))
    [(media_id, (mime, data))] = wechat.media.items()
    assert (mime, data) == ("image/png", b"\x89PNG fake image")
    assert [c.body for c in wechat.sent] == [
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": media_id}},
        {"touser": OPENID, "msgtype": "text", "text": {"content": "Fixed"}},
    ]


async def test_an_image_that_cannot_be_fetched_gives_up(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    content = {"type": "media", "url": f"{wechat.url}/files/gone.png", "mime_type": "image/png"}
    with pytest.raises(GiveUp) as refused:
        await connector(wechat.url, http).send(out(content))
    assert refused.value.code == "media_unreachable" and wechat.calls == []


async def test_other_media_and_locations_go_out_as_text_with_a_link(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    pdf = {"type": "media", "url": "https://cdn.example/a.pdf", "caption": "Your invoice"}
    place = {"type": "location", "latitude": 23.13, "longitude": 113.35, "name": "Shop"}
    wechat_api = connector(wechat.url, http)
    await wechat_api.send(out(pdf))
    await wechat_api.send(out(place))
    assert [c.body["text"]["content"] for c in wechat.sent] == [
        "Your invoice\nhttps://cdn.example/a.pdf",
        "Shop\nhttps://uri.amap.com/marker?position=113.35,23.13",
    ]


async def test_a_template_goes_out_through_template_send_and_its_msgid_is_the_id(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    expected = json.loads(fixture("template_send.request.json"))
    params = {k: v["value"] for k, v in expected["data"].items()} | {"url": expected["url"]}
    content = {"type": "template", "name": expected["template_id"], "parameters": params}
    result = await connector(wechat.url, http).send(out(content))
    [call] = wechat.sent
    assert call.path == "/cgi-bin/message/template/send" and call.body == expected
    answered = json.loads(fixture("template_send_response.json"))  # the fake answers alike
    assert result.provider_message_id == str(answered["msgid"])


@pytest.mark.parametrize(
    ("answer", "code"),
    [(error_fixture("error_out_of_window"), "45015"), (Err(43004, "require subscribe"), "43004")],
)
async def test_permanent_errcodes_give_up_with_wechats_code_and_message(
    wechat: FakeWeChat, http: httpx.AsyncClient, answer: Err, code: str
) -> None:
    wechat.respond(answer)
    with pytest.raises(GiveUp) as refused:
        await connector(wechat.url, http).send(out({"type": "text", "text": "hi"}))
    assert (refused.value.code, refused.value.message) == (code, answer.errmsg)


async def test_a_bad_openid_is_refused_by_wechat_and_given_up(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    with pytest.raises(GiveUp) as refused:
        await connector(wechat.url, http).send(out({"type": "text", "text": "hi"}, to="nobody"))
    assert (refused.value.code, refused.value.message) == ("40003", "invalid openid")


async def test_a_wrong_app_secret_gives_up_without_sending(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    with pytest.raises(GiveUp) as refused:
        await connector(wechat.url, http, app_secret="wrong").send(
            out({"type": "text", "text": "x"})
        )
    assert refused.value.code == "40001" and wechat.calls == [] and wechat.token_calls == 0


@pytest.mark.parametrize(
    ("answer", "code"), [(SYSTEM_BUSY, "-1"), (QUOTA, "45009"), (Http(500), "500")]
)
async def test_busy_quota_and_server_errors_are_retried(
    wechat: FakeWeChat, http: httpx.AsyncClient, answer: Err | Http, code: str
) -> None:
    wechat.respond(answer)
    with pytest.raises(RetryLater) as later:
        await connector(wechat.url, http).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == code


async def test_a_token_endpoint_error_is_retried(
    wechat: FakeWeChat, http: httpx.AsyncClient
) -> None:
    wechat.token_respond(Http(502))
    with pytest.raises(RetryLater) as later:
        await connector(wechat.url, http).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "502" and wechat.calls == []


async def test_a_hanging_wechat_is_retried_after_the_timeout(wechat: FakeWeChat) -> None:
    wechat.respond(HANG)
    async with httpx.AsyncClient(timeout=0.3) as short:
        with pytest.raises(RetryLater) as later:
            await connector(wechat.url, short).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "timeout"


async def test_an_unreachable_wechat_is_retried(http: httpx.AsyncClient) -> None:
    with pytest.raises(RetryLater) as later:
        await connector("http://127.0.0.1:9", http).send(out({"type": "text", "text": "hi"}))
    assert later.value.code == "connection_error"


# -- end to end: the real app on both databases ---------------------------------------

E2E_TOKEN = "wechattoken0011"  # the admin console allows letters and digits only


@pytest.fixture
async def wx_api(db_url: str) -> AsyncIterator[FakeWeChat]:
    fake = await FakeWeChat(app_id=APP_ID).start()
    yield fake
    await fake.stop()


async def wx_channel(api: httpx.AsyncClient, fake: FakeWeChat, **extra: str) -> str:
    config = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "token": E2E_TOKEN,
        "api_base_url": fake.url,
        **extra,
    }
    r = await api.post("/v1/channels", json={"type": "wechat", "name": "OA", "config": config})
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def deliver(
    client: httpx.AsyncClient,
    channel_id: str,
    xml: bytes,
    token: str = E2E_TOKEN,
    crypto: MessageCrypto | None = None,
) -> httpx.Response:
    query, body = signed(xml, token=token, crypto=crypto)
    return await client.post(
        f"/webhooks/{channel_id}?{urlencode(query)}",
        content=body,
        headers={"content-type": "text/xml"},
    )


async def first_reply(
    client: httpx.AsyncClient, api: httpx.AsyncClient, channel: str, text: str = "On its way"
) -> tuple[dict[str, Any], str]:
    """The customer writes in; an agent answers. The conversation and the reply's id."""
    assert (await deliver(client, channel, fixture("inbound_text.xml"))).status_code == 200
    conv = await only_conversation(api, channel)
    return conv, await reply(api, conv["id"], text)


async def test_the_url_check_is_answered_through_the_app(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    query = {
        "signature": signature(E2E_TOKEN, "1722337200", "1514711492"),
        "echostr": "7239849281094829102",
        "timestamp": "1722337200",
        "nonce": "1514711492",
    }
    r = await client.get(f"/webhooks/{channel}?{urlencode(query)}")
    assert (r.status_code, r.text) == (200, "7239849281094829102")
    bad = await client.get(f"/webhooks/{channel}?{urlencode({**query, 'nonce': '1'})}")
    assert bad.status_code == 403


async def test_a_message_becomes_a_conversation_and_the_agents_reply_reaches_wechat(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    r = await deliver(client, channel, fixture("inbound_text.xml"))
    assert (r.status_code, r.text) == (200, "success")
    conv = await only_conversation(api, channel)
    [inbound] = await messages_of(api, conv["id"])
    assert (inbound["direction"], inbound["content"]) == (
        "inbound",
        {"type": "text", "text": "你好，我的订单到哪了？"},
    )
    sent_id = await reply(api, conv["id"], "您的订单已发货，单号 SF1234567890。")
    msg = await settle(api, runtime, sent_id, "sent")
    [call] = wx_api.sent
    assert call.body == json.loads(fixture("custom_send_text.request.json"))
    assert msg["delivery"]["provider_message_id"] == f"custom:{sent_id}"


async def test_an_encrypted_message_becomes_a_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api, encoding_aes_key=AES["encoding_aes_key"])
    crypto = MessageCrypto(AES["encoding_aes_key"], APP_ID)
    r = await deliver(client, channel, fixture("inbound_image.xml"), crypto=crypto)
    assert r.status_code == 200, r.text
    conv = await only_conversation(api, channel)
    [inbound] = await messages_of(api, conv["id"])
    assert inbound["content"]["url"] == "http://mmbiz.qpic.cn/mmbiz_jpg/example/0"


async def test_an_encrypted_message_for_another_account_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api, encoding_aes_key=AES["encoding_aes_key"])
    other = MessageCrypto(AES["encoding_aes_key"], "wx0000000000000000")
    r = await deliver(client, channel, fixture("inbound_text.xml"), crypto=other)
    assert r.status_code == 403
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrongtoken", 403)])
async def test_a_callback_without_the_right_signature_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    wx_api: FakeWeChat,
    token: str | None,
    status: int,
) -> None:
    channel = await wx_channel(api, wx_api)
    if token is None:
        r = await client.post(f"/webhooks/{channel}", content=fixture("inbound_text.xml"))
    else:
        r = await deliver(client, channel, fixture("inbound_text.xml"), token=token)
    assert r.status_code == status
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


async def test_a_repeated_message_is_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    for name in ("inbound_text.xml", "inbound_text.xml", "inbound_image.xml", "inbound_text.xml"):
        assert (await deliver(client, channel, fixture(name))).status_code == 200
    conv = await only_conversation(api, channel)
    assert [m["content"]["type"] for m in await messages_of(api, conv["id"])] == ["text", "media"]


async def test_a_subscribe_event_opens_no_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    r = await deliver(client, channel, fixture("inbound_event_subscribe.xml"))
    assert (r.status_code, r.text) == (200, "success")
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


async def test_replies_share_one_token_and_a_refused_one_is_refreshed(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    conv, first = await first_reply(client, api, channel)
    await settle(api, runtime, first, "sent")
    for text in ("two", "three"):
        await settle(api, runtime, await reply(api, conv["id"], text), "sent")
    assert wx_api.token_calls == 1
    wx_api.revoke_tokens()  # another server fetched a newer token long ago
    msg = await settle(api, runtime, await reply(api, conv["id"], "four"), "sent")
    assert wx_api.token_calls == 2 and len(wx_api.sent) == 4
    assert [a["error_code"] for a in msg["delivery_attempts"]] == [None]


async def test_busy_and_server_errors_are_retried_then_sent(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    wx_api.respond(SYSTEM_BUSY, Http(500))
    _, sent_id = await first_reply(client, api, channel)
    msg = await settle(api, runtime, sent_id, "sent")
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["-1", "500", None]
    assert len(wx_api.sent) == 1


async def test_a_reply_outside_the_48_hour_window_fails_with_wechats_code(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    wx_api.respond(error_fixture("error_out_of_window"))
    _, sent_id = await first_reply(client, api, channel)
    msg = await settle(api, runtime, sent_id, "failed")
    detail = msg["status_history"][-1]["detail"]
    assert detail["code"] == "45015"
    assert detail["message"] == error_fixture("error_out_of_window").errmsg
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["45015"]


async def test_a_template_is_sent_and_its_finish_event_marks_it_delivered(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    conv, _ = await first_reply(client, api, channel)
    template = {
        "type": "template",
        "name": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
        "parameters": {"thing1": "订单已发货"},
    }
    sent_id = await reply(api, conv["id"], template)
    msg = await settle(api, runtime, sent_id, "sent")
    msgid = msg["delivery"]["provider_message_id"]
    # (the first reply may still be on its way: look the template call up by its path)
    assert [c.path for c in wx_api.sent].count("/cgi-bin/message/template/send") == 1
    finish = fixture("inbound_event_template_finish.xml").replace(b"200163836", msgid.encode())
    assert (await deliver(client, channel, finish)).status_code == 200
    delivered = (await api.get(f"/v1/messages/{sent_id}")).json()
    assert delivered["status"] == "delivered"


async def test_a_message_type_parley_cannot_read_is_answered_and_kept(
    client: httpx.AsyncClient, api: httpx.AsyncClient, wx_api: FakeWeChat
) -> None:
    channel = await wx_channel(api, wx_api)
    r = await deliver(client, channel, message_xml("hologram", Content="?"))
    assert r.status_code == 200  # WeChat would retry, then tell the customer we are down
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []
    events = (await api.get("/v1/events")).json()["data"]
    [kept] = [e for e in events if e["name"] == "webhook.unparsed"]
    assert "unknown MsgType 'hologram'" in kept["payload"]["error"]
    assert "<MsgType><![CDATA[hologram]]></MsgType>" in kept["payload"]["body"]


async def test_an_agents_reply_on_the_agent_socket_reaches_wechat_and_a_note_does_not(
    live_server: LiveServer, wx_api: FakeWeChat
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    channel = await wx_channel(api, wx_api)
    r = await deliver(api, channel, fixture("inbound_text.xml"))  # to the live server's URL
    assert (r.status_code, r.text) == (200, "success")
    conv = await only_conversation(api, channel)

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "已发货。")
    msg = await settle(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [call] = wx_api.calls
    assert call.path == "/cgi-bin/message/custom/send"
    assert call.body == {"touser": OPENID, "msgtype": "text", "text": {"content": "已发货。"}}
    assert msg["delivery"]["provider_message_id"] == f"custom:{reply_id}"
