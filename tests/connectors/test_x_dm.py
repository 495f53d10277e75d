"""X direct messages (connectors/x_dm.py): the CRC, webhook signatures and the DM
fixtures; OAuth 1.0a against known vectors; sending against a local fake X API
(tests/fakes/x_api.py) that checks the OAuth signature; and the real app end to end."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.app import create_app
from connectors.base import (
    Inbound,
    Outbound,
    StatusUpdate,
    Watermark,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.x_dm import (
    XDirectMessages,
    hmac_sha1_signature,
    oauth1_header,
    parse_oauth_header,
    signature_base_string,
    snowflake_time,
    webhook_signature,
)
from tests import conftest
from tests.api.test_channels import VALID
from tests.conftest import LiveServer
from tests.connectors.e2e import agent_reply as reply
from tests.connectors.e2e import messages_in as messages_of
from tests.connectors.e2e import note_stayed_inside, only_conversation, socket_reply_and_note
from tests.connectors.e2e import until_status as settle
from tests.fakes.x_api import HANG, FakeX, Problem, rate_limited, unauthorized

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
VECTORS = json.loads((FIXTURES / "x.signature_vectors.json").read_text())
SECRET = VECTORS["crc_vector"]["consumer_secret"]
CREDS = {
    "consumer_key": "xdm-consumer-key",
    "consumer_secret": SECRET,
    "access_token": "4337869213-xdmAccessToken",
    "access_token_secret": "xdm-access-token-secret",
}
ME, JORDAN = "4337869213", "3001969357"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-twitter-webhooks-signature"] = signature
    return WebhookRequest("POST", "https://parley.example/webhooks/ch", headers, {}, body)


def signed(name: str) -> WebhookRequest:
    [vector] = [v for v in VECTORS["fixtures"] if v["file"] == name]
    return post(fixture(name), vector["x-twitter-webhooks-signature"])


def connector(
    url: str = "http://127.0.0.1:9", http: httpx.AsyncClient | None = None
) -> XDirectMessages:
    return XDirectMessages({**CREDS, "api_base_url": url}, http or httpx.AsyncClient())


def parsed(request: WebhookRequest) -> list[Any]:
    c = connector()
    c.verify(request)
    return list(c.parse(request))


# -- CRC and signatures ---------------------------------------------------------------------


def test_the_crc_is_answered_with_the_documented_response_token_as_json() -> None:
    token = VECTORS["crc_vector"]["crc_token"]
    request_line = fixture("x.crc_request.http").decode().splitlines()[0]
    assert f"crc_token={token}" in request_line
    get = WebhookRequest("GET", "https://parley.example/webhooks/ch", {}, {"crc_token": token}, b"")
    c = connector()
    c.verify(get)
    answer = c.challenge(get)
    assert answer is not None
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert json.loads(answer.body) == json.loads(fixture("x.crc_response.json"))
    assert json.loads(answer.body)["response_token"] == VECTORS["crc_vector"]["response_token"]


def test_a_get_without_a_crc_token_is_refused() -> None:
    with pytest.raises(WebhookRejected) as e:
        connector().verify(WebhookRequest("GET", "https://parley.example/webhooks/ch", {}, {}, b""))
    assert e.value.status == 401


def test_a_post_is_not_a_challenge() -> None:
    assert connector().challenge(signed("x.dm_event_inbound.json")) is None


@pytest.mark.parametrize("vector", VECTORS["fixtures"], ids=lambda v: v["file"])
def test_every_signature_vector_verifies_byte_for_byte(vector: dict[str, str]) -> None:
    body = fixture(vector["file"])
    assert (
        webhook_signature(vector["consumer_secret"], body) == vector["x-twitter-webhooks-signature"]
    )
    connector().verify(post(body, vector["x-twitter-webhooks-signature"]))


@pytest.mark.parametrize("vector", VECTORS["fixtures"], ids=lambda v: v["file"])
def test_a_tampered_body_is_refused_with_403(vector: dict[str, str]) -> None:
    body = fixture(vector["file"]).replace(b"4337869213", b"4337869214", 1)
    with pytest.raises(WebhookRejected) as e:
        connector().verify(post(body, vector["x-twitter-webhooks-signature"]))
    assert e.value.status == 403


def test_a_signature_under_another_secret_is_refused_with_403() -> None:
    body = fixture("x.dm_event_inbound.json")
    with pytest.raises(WebhookRejected) as e:
        connector().verify(post(body, webhook_signature(SECRET + "x", body)))
    assert e.value.status == 403


def test_an_event_without_a_signature_is_refused_with_401() -> None:
    with pytest.raises(WebhookRejected) as e:
        connector().verify(post(fixture("x.dm_event_inbound.json"), None))
    assert e.value.status == 401


# -- parse ----------------------------------------------------------------------------------


def test_an_inbound_dm_is_text_from_its_sender_with_the_event_id_and_profile() -> None:
    [msg] = parsed(signed("x.dm_event_inbound.json"))
    assert isinstance(msg, Inbound)
    assert (msg.provider_message_id, msg.sender, msg.content) == (
        "954491830116155396",
        JORDAN,
        {"type": "text", "text": "Hello World!"},
    )
    assert msg.profile == {"name": "Jordan Brinks", "username": "furiouscamper"}
    assert msg.sent_at is not None and int(msg.sent_at.timestamp() * 1000) == 1516403560557


def test_the_accounts_own_dm_is_an_echo_and_is_not_stored() -> None:
    assert parsed(signed("x.dm_event_outbound_echo.json")) == []


def test_typing_is_not_stored() -> None:
    assert parsed(signed("x.dm_typing_event.json")) == []


def test_the_customer_marking_read_reads_the_last_message_it_names_and_all_before_it() -> None:
    status, mark = parsed(signed("x.dm_mark_read_event.json"))
    assert isinstance(status, StatusUpdate)
    assert (status.provider_message_id, status.status) == ("954492095842066437", "read")
    # The id is a Snowflake: its time is when X made the event it names.
    assert mark == Watermark(JORDAN, "read", snowflake_time("954492095842066437"))


def test_a_snowflakes_time_is_the_creation_time_x_reports() -> None:
    event = json.loads(fixture("x.dm_event_inbound.json"))["direct_message_events"][0]
    made = snowflake_time(event["id"])
    assert made is not None
    assert int(made.timestamp() * 1000) == int(event["created_timestamp"])
    assert snowflake_time("1") is None
    assert snowflake_time("not-an-id") is None


def body_with(**envelope: Any) -> WebhookRequest:
    raw = json.dumps({"for_user_id": ME, **envelope}).encode()
    return post(raw, webhook_signature(SECRET, raw))


def dm(data: dict[str, Any], sender: str = JORDAN, id_: str = "1") -> dict[str, Any]:
    return {
        "type": "message_create",
        "id": id_,
        "created_timestamp": "1516403560557",
        "message_create": {
            "target": {"recipient_id": ME},
            "sender_id": sender,
            "message_data": data,
        },
    }


def test_the_account_marking_read_is_not_a_status() -> None:
    event = {"created_timestamp": "1", "sender_id": ME, "target": {"recipient_id": JORDAN},
             "last_read_event_id": "954491830116155396"}  # fmt: skip
    assert parsed(body_with(direct_message_mark_read_events=[event])) == []


def test_a_photo_is_media_with_the_link_to_it_taken_out_of_the_caption() -> None:
    media = {
        "id": "9", "type": "photo", "url": "https://t.co/abc",
        "media_url_https": "https://ton.twitter.com/1.1/ton/data/dm/1/9/x.jpg",
    }  # fmt: skip
    data = {"text": "Broken part https://t.co/abc", "attachment": {"type": "media", "media": media}}
    [msg] = parsed(body_with(direct_message_events=[dm(data)]))
    assert msg.content == {
        "type": "media",
        "url": "https://ton.twitter.com/1.1/ton/data/dm/1/9/x.jpg",
        "mime_type": "image/jpeg",
        "caption": "Broken part",
    }


def test_a_video_is_its_best_variant() -> None:
    media = {
        "id": "9", "type": "video", "url": "https://t.co/v",
        "media_url_https": "https://pbs.twimg.com/thumb.jpg",
        "video_info": {"variants": [
            {"bitrate": 256000, "content_type": "video/mp4", "url": "https://video.twimg.com/lo.mp4"},
            {"bitrate": 832000, "content_type": "video/mp4", "url": "https://video.twimg.com/hi.mp4"},
            {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/pl.m3u8"},
        ]},
    }  # fmt: skip
    data = {"text": "https://t.co/v", "attachment": {"type": "media", "media": media}}
    [msg] = parsed(body_with(direct_message_events=[dm(data)]))
    assert msg.content == {
        "type": "media",
        "url": "https://video.twimg.com/hi.mp4",
        "mime_type": "video/mp4",
    }


def test_a_quick_reply_response_is_the_text_of_the_chosen_option() -> None:
    data = {"text": "Reopen", "quick_reply_response": {"type": "options", "metadata": "reopen"}}
    [msg] = parsed(body_with(direct_message_events=[dm(data)]))
    assert msg.content == {"type": "text", "text": "Reopen"}


def test_the_docs_quirk_with_users_inside_apps_still_names_the_sender() -> None:
    envelope = json.loads(fixture("x.dm_event_inbound.json"))
    envelope["apps"]["users"] = envelope.pop("users")
    raw = json.dumps(envelope).encode()
    [msg] = parsed(post(raw, webhook_signature(SECRET, raw)))
    assert msg.profile["name"] == "Jordan Brinks"


def test_other_activities_parse_to_nothing() -> None:
    assert (
        parsed(body_with(favorite_events=[{"id": "1"}], tweet_create_events=[{"id_str": "2"}]))
        == []
    )


# -- OAuth 1.0a -----------------------------------------------------------------------------


def test_oauth_signature_matches_xs_documented_example() -> None:
    # developer.x.com "Creating a signature" (statuses/update), every input as published.
    header = oauth1_header(
        "POST",
        "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        consumer_key="xvz1evFS4wEEPTGEFPHBog",
        consumer_secret="kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        token_secret="LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        form=[("status", "Hello Ladies + Gentlemen, a signed OAuth request!")],
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp="1318622958",
    )
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in header
    assert parse_oauth_header(header)["oauth_signature"] == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


def test_oauth_base_string_and_signature_match_the_oauth_core_example() -> None:
    # OAuth Core 1.0 appendix A (photos.example.net), the example RFC 5849 grew from.
    base = signature_base_string(
        "GET",
        "http://photos.example.net/photos?file=vacation.jpg&size=original",
        [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ],
    )
    assert base == (
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26"
        "oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26"
        "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26"
        "oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
    )
    assert (
        hmac_sha1_signature(base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
        == "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
    )


# -- send against the fake ----------------------------------------------------------------------


@pytest.fixture
async def x_api() -> AsyncIterator[FakeX]:
    fake = await FakeX(**CREDS).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def out(content: dict[str, Any], to: str = JORDAN, **options: Any) -> Outbound:
    return Outbound("msg_1", to, content, options=options)


async def test_text_goes_to_the_v2_endpoint_signed_and_the_id_is_the_dm_event_id(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    expected = json.loads(fixture("x.dm_send_v2.request.json"))
    result = await connector(x_api.url, http).send(out({"type": "text", "text": expected["text"]}))
    [call] = x_api.sent
    assert (call.participant_id, call.body) == (JORDAN, expected)
    assert call.oauth["oauth_consumer_key"] == CREDS["consumer_key"]
    assert result.provider_message_id == call.dm_event_id


async def test_the_fake_refuses_a_signature_made_with_the_wrong_secret(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    wrong = XDirectMessages(
        {**CREDS, "access_token_secret": "nope", "api_base_url": x_api.url}, http
    )
    with pytest.raises(GiveUp) as e:
        await wrong.send(out({"type": "text", "text": "hi"}))
    assert (e.value.code, e.value.status_code) == ("401", 401)
    assert x_api.calls == [] and len(x_api.refused) == 1


async def test_the_fake_refuses_a_replayed_nonce(x_api: FakeX, http: httpx.AsyncClient) -> None:
    url = f"{x_api.url}/2/dm_conversations/with/{JORDAN}/messages"
    auth = oauth1_header(
        "POST", url, consumer_key=CREDS["consumer_key"], consumer_secret=SECRET,
        token=CREDS["access_token"], token_secret=CREDS["access_token_secret"],
    )  # fmt: skip
    first = await http.post(url, json={"text": "a"}, headers={"authorization": auth})
    again = await http.post(url, json={"text": "a"}, headers={"authorization": auth})
    assert (first.status_code, again.status_code) == (201, 401)


async def test_buttons_go_out_as_text_listing_the_options(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    content = {"type": "buttons", "text": "Reopen it?",
               "buttons": [{"id": "y", "title": "Yes"}, {"id": "n", "title": "No"}]}  # fmt: skip
    await connector(x_api.url, http).send(out(content))
    assert x_api.sent[0].body == {"text": "Reopen it?\n1. Yes\n2. No"}


async def test_an_image_is_fetched_uploaded_in_chunks_and_attached(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.files["fix.png"] = (b"\x89PNG fake image", "image/png")
    media = {"type": "media", "url": f"{x_api.url}/files/fix.png", "caption": "Fixed"}
    result = await connector(x_api.url, http).send(out(media))
    [upload] = x_api.uploads.values()
    assert upload.steps == ["initialize", "append 0", "finalize"]
    assert (upload.category, upload.mime_type, upload.total_bytes) == ("dm_image", "image/png", 15)
    assert x_api.media[upload.media_id] == ("dm_image", "image/png", b"\x89PNG fake image")
    [call] = x_api.sent
    assert call.body == {"text": "Fixed", "attachments": [{"media_id": upload.media_id}]}
    assert result.provider_message_id == call.dm_event_id


async def test_a_gif_is_uploaded_as_dm_gif(x_api: FakeX, http: httpx.AsyncClient) -> None:
    x_api.files["yay.gif"] = (b"GIF89a", "image/gif")
    media = {"type": "media", "url": f"{x_api.url}/files/yay.gif"}
    await connector(x_api.url, http).send(out(media))
    [upload] = x_api.uploads.values()
    assert upload.category == "dm_gif"
    assert x_api.sent[0].body == {"attachments": [{"media_id": upload.media_id}]}


async def test_a_video_goes_up_in_5_mb_segments_and_is_attached_once_x_has_processed_it(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    video = bytes(range(256)) * (11 * 1024 * 1024 // 256)  # 11 MB: segments of 5, 5 and 1
    x_api.files["clip.mp4"] = (video, "video/mp4")
    x_api.processing.extend([
        {"state": "pending", "check_after_secs": 1},
        {"state": "in_progress", "check_after_secs": 0, "progress_percent": 60},
        {"state": "succeeded", "progress_percent": 100},
    ])  # fmt: skip
    media = {"type": "media", "url": f"{x_api.url}/files/clip.mp4"}
    await connector(x_api.url, http).send(out(media))

    [upload] = x_api.uploads.values()
    assert upload.steps == [
        "initialize", "append 0", "append 1", "append 2", "finalize", "status", "status",
    ]  # fmt: skip
    assert [len(upload.segments[i]) for i in range(3)] == [5 * 1024 * 1024] * 2 + [1024 * 1024]
    assert (upload.category, upload.mime_type, upload.data) == ("dm_video", "video/mp4", video)
    # The first STATUS came when FINALIZE's check_after_secs said, not before.
    assert upload.status_at[0] - upload.finalized_at >= 1.0
    assert x_api.sent[0].body == {"attachments": [{"media_id": upload.media_id}]}


async def test_media_x_fails_to_process_gives_up_and_sends_no_dm(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.files["bad.mp4"] = (b"not really a video", "video/mp4")
    x_api.processing.extend([
        {"state": "in_progress", "check_after_secs": 0},
        {"state": "failed", "error": {"code": 1, "name": "InvalidMedia",
                                      "message": "Unsupported video format"}},
    ])  # fmt: skip
    with pytest.raises(GiveUp) as e:
        await connector(x_api.url, http).send(out({"type": "media", "url": f"{x_api.url}/files/bad.mp4"}))
    assert e.value.code == "media_processing_failed"
    assert "Unsupported video format" in e.value.message
    assert x_api.calls == [] and x_api.media == {}


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "chunked"])
async def test_a_file_over_the_limit_gives_up_before_any_upload(
    x_api: FakeX, http: httpx.AsyncClient, stream: bool
) -> None:
    x_api.stream_files = stream
    x_api.files["huge.png"] = (b"\0" * (5 * 1024 * 1024 + 1), "image/png")
    with pytest.raises(GiveUp) as e:
        await connector(x_api.url, http).send(out({"type": "media", "url": f"{x_api.url}/files/huge.png"}))
    assert e.value.code == "media_too_large"
    assert x_api.uploads == {} and x_api.calls == []


async def test_an_image_that_cannot_be_fetched_gives_up_and_sends_nothing(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    media = {"type": "media", "url": f"{x_api.url}/files/gone.png", "mime_type": "image/png"}
    with pytest.raises(GiveUp) as e:
        await connector(x_api.url, http).send(out(media))
    assert e.value.code == "media_unreachable"
    assert x_api.calls == [] and x_api.uploads == {}


async def test_a_media_host_that_is_down_is_retried(http: httpx.AsyncClient, x_api: FakeX) -> None:
    media = {"type": "media", "url": "http://127.0.0.1:9/clip.mp4"}
    with pytest.raises(RetryLater) as e:
        await connector(x_api.url, http).send(out(media))
    assert e.value.code == "media_unreachable"
    assert x_api.uploads == {}


async def test_a_failed_upload_step_is_retried_or_given_up_as_x_says(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.files["fix.png"] = (b"\x89PNG", "image/png")
    media = {"type": "media", "url": f"{x_api.url}/files/fix.png"}
    c = connector(x_api.url, http)
    x_api.fail_upload("append", Problem(503, {"title": "Service Unavailable", "type": "about:blank"}))
    with pytest.raises(RetryLater) as retry:
        await c.send(out(media))
    x_api.fail_upload("initialize", rate_limited(0))
    with pytest.raises(RetryLater) as limited:
        await c.send(out(media))
    x_api.fail_upload(
        "finalize",
        Problem(400, {"title": "Invalid Request", "detail": "Media is not valid",
                      "type": "https://api.twitter.com/2/problems/invalid-request"}),
    )  # fmt: skip
    with pytest.raises(GiveUp) as refused:
        await c.send(out(media))
    assert (retry.value.code, limited.value.code, refused.value.code) == (
        "503", "429", "invalid-request",
    )  # fmt: skip
    assert x_api.calls == []
    await c.send(out(media))  # then X is well again
    assert len(x_api.sent) == 1


async def test_every_upload_step_is_signed_status_with_its_query(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.files["clip.mp4"] = (b"\0" * 1000, "video/mp4")
    x_api.processing.extend([{"state": "pending", "check_after_secs": 0}, {"state": "succeeded"}])
    await connector(x_api.url, http).send(out({"type": "media", "url": f"{x_api.url}/files/clip.mp4"}))
    assert x_api.refused == []
    wrong = XDirectMessages({**CREDS, "consumer_secret": "nope", "api_base_url": x_api.url}, http)
    with pytest.raises(GiveUp) as e:
        await wrong.send(out({"type": "media", "url": f"{x_api.url}/files/clip.mp4"}))
    assert (e.value.code, e.value.status_code) == ("401", 401)
    assert len(x_api.uploads) == 1


async def test_documents_go_out_as_their_link_and_a_given_media_id_is_attached(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.media["1455952740635586573"] = ("dm_video", "video/mp4", b"")
    doc = {"type": "media", "url": "https://cdn.example/manual.pdf", "mime_type": "application/pdf"}
    video = {"type": "media", "url": "https://cdn.example/fix.mp4", "mime_type": "video/mp4"}
    c = connector(x_api.url, http)
    await c.send(out({**doc, "caption": "The manual"}))
    await c.send(out(video, media_id="1455952740635586573"))
    assert [s.body for s in x_api.sent] == [
        {"text": "The manual\nhttps://cdn.example/manual.pdf"},
        {"attachments": [{"media_id": "1455952740635586573"}]},
    ]
    assert x_api.uploads == {}


async def test_x_refuses_a_media_id_it_never_issued(x_api: FakeX, http: httpx.AsyncClient) -> None:
    video = {"type": "media", "url": "https://cdn.example/fix.mp4", "mime_type": "video/mp4"}
    with pytest.raises(GiveUp) as e:
        await connector(x_api.url, http).send(out(video, media_id="42"))
    assert (e.value.code, e.value.status_code) == ("invalid-request", 400)


async def test_a_template_cannot_go_out(http: httpx.AsyncClient) -> None:
    with pytest.raises(GiveUp) as e:
        await connector(http=http).send(out({"type": "template", "name": "t"}))
    assert e.value.code == "unsupported_content"


def replay(name: str, status: int) -> Problem:
    return Problem(status, json.loads(fixture(name)))


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("x.error_401.json", 401, "401"),
        ("x.error_403.json", 403, "403"),
        ("x.error_invalid_request.json", 400, "invalid-request"),
    ],
)
async def test_permanent_errors_give_up_with_xs_code(
    x_api: FakeX, http: httpx.AsyncClient, name: str, status: int, code: str
) -> None:
    x_api.respond(replay(name, status))
    with pytest.raises(GiveUp) as e:
        await connector(x_api.url, http).send(out({"type": "text", "text": "x"}))
    assert (e.value.code, e.value.status_code) == (code, status)
    assert json.loads(fixture(name))["detail"] in e.value.message


async def test_a_non_numeric_participant_is_refused_by_x_as_an_invalid_request(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    resp = await http.post(f"{x_api.url}/2/dm_conversations/with/abc/messages", json={"text": "x"},
                           headers={"authorization": oauth1_header(
                               "POST", f"{x_api.url}/2/dm_conversations/with/abc/messages",
                               consumer_key=CREDS["consumer_key"], consumer_secret=SECRET,
                               token=CREDS["access_token"], token_secret=CREDS["access_token_secret"])})  # fmt: skip
    assert resp.json() == json.loads(fixture("x.error_invalid_request.json"))


async def test_a_rate_limit_is_retried_after_x_rate_limit_reset(
    x_api: FakeX, http: httpx.AsyncClient
) -> None:
    x_api.respond(rate_limited(60))
    with pytest.raises(RetryLater) as e:
        await connector(x_api.url, http).send(out({"type": "text", "text": "x"}))
    assert e.value.code == "429"
    assert e.value.retry_after is not None and 55 <= e.value.retry_after <= 60
    assert json.loads(fixture("x.error_429.json"))["detail"] in e.value.message


async def test_the_configured_rate_limit_runs_out(http: httpx.AsyncClient) -> None:
    fake = await FakeX(**CREDS, rate_limit=1).start()
    try:
        c = connector(fake.url, http)
        await c.send(out({"type": "text", "text": "one"}))
        with pytest.raises(RetryLater):
            await c.send(out({"type": "text", "text": "two"}))
    finally:
        await fake.stop()


async def test_a_server_error_is_retried(x_api: FakeX, http: httpx.AsyncClient) -> None:
    x_api.respond(Problem(503, {"title": "Service Unavailable", "type": "about:blank"}))
    with pytest.raises(RetryLater) as e:
        await connector(x_api.url, http).send(out({"type": "text", "text": "x"}))
    assert e.value.code == "503"


async def test_a_hanging_x_is_retried_after_the_timeout(x_api: FakeX) -> None:
    x_api.respond(HANG)
    async with httpx.AsyncClient(timeout=0.3) as quick:
        with pytest.raises(RetryLater) as e:
            await connector(x_api.url, quick).send(out({"type": "text", "text": "x"}))
    assert e.value.code == "timeout"


async def test_an_unreachable_x_is_retried(http: httpx.AsyncClient) -> None:
    with pytest.raises(RetryLater) as e:
        await connector("http://127.0.0.1:9", http).send(out({"type": "text", "text": "x"}))
    assert e.value.code == "connection_error"


# -- end to end: the real app on both databases ---------------------------------------------


XV = VALID["twitter"]


@pytest.fixture
async def xe_api(db_url: str) -> AsyncIterator[FakeX]:
    fake = await FakeX(**XV).start()
    yield fake
    await fake.stop()


async def x_channel(api: httpx.AsyncClient, fake: FakeX) -> str:
    r = await api.post(
        "/v1/channels",
        json={"type": "twitter", "name": "X", "config": {**XV, "api_base_url": fake.url}},
    )
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["id"]
    return channel_id


async def deliver(
    client: httpx.AsyncClient,
    channel_id: str,
    body: bytes | dict[str, Any],
    secret: str | None = XV["consumer_secret"],
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-twitter-webhooks-signature"] = webhook_signature(secret, raw)
    return await client.post(f"/webhooks/{channel_id}", content=raw, headers=headers)


def read_up_to(event_id: str, reader: str = JORDAN) -> dict[str, Any]:
    return {
        "for_user_id": ME,
        "direct_message_mark_read_events": [
            {"created_timestamp": str(int(time.time() * 1000)), "sender_id": reader,
             "target": {"recipient_id": ME}, "last_read_event_id": event_id},
        ],
    }  # fmt: skip


async def test_the_crc_is_answered_through_the_app(
    client: httpx.AsyncClient, api: httpx.AsyncClient, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    r = await client.get(f"/webhooks/{channel}", params={"crc_token": "9b4507b3"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"response_token": webhook_signature(XV["consumer_secret"], b"9b4507b3")}


async def test_a_dm_becomes_a_conversation_the_reply_reaches_x_and_mark_read_reads_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    assert (await deliver(client, channel, fixture("x.dm_event_inbound.json"))).status_code == 200
    conv = await only_conversation(api, channel)
    [inbound] = await messages_of(api, conv["id"])
    assert (inbound["direction"], inbound["content"]) == (
        "inbound",
        {"type": "text", "text": "Hello World!"},
    )

    sent_id = await reply(api, conv["id"], "Hi Jordan, thanks for reaching out!")
    msg = await settle(api, runtime, sent_id, "sent")
    [call] = xe_api.sent
    assert (call.participant_id, call.body) == (
        JORDAN,
        {"text": "Hi Jordan, thanks for reaching out!"},
    )
    assert msg["delivery"]["provider_message_id"] == call.dm_event_id
    assert call.dm_event_id is not None

    # X echoes our own send back: not stored. Then Jordan reads it, twice.
    echo = json.loads(fixture("x.dm_event_outbound_echo.json"))
    echo["direct_message_events"][0]["id"] = call.dm_event_id
    assert (await deliver(client, channel, echo)).status_code == 200
    for _ in range(2):
        assert (await deliver(client, channel, read_up_to(call.dm_event_id))).status_code == 200
    assert (await deliver(client, channel, read_up_to("1"))).status_code == 200  # not ours: ignored
    msg = (await api.get(f"/v1/messages/{sent_id}")).json()
    assert msg["status"] == "read"
    assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "read"]
    assert len(await messages_of(api, conv["id"])) == 2


async def test_marking_read_up_to_the_customers_own_dm_reads_every_reply_before_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    assert (await deliver(client, channel, fixture("x.dm_event_inbound.json"))).status_code == 200
    conv = await only_conversation(api, channel)
    replies = [await reply(api, conv["id"], text) for text in ("one", "two")]
    for message_id in replies:
        await settle(api, runtime, message_id, "sent")

    # Jordan answers (X gives the DM a Snowflake id of now), then reads up to that answer.
    answer = json.loads(fixture("x.dm_event_inbound.json"))
    answer["direct_message_events"][0]["id"] = xe_api.new_id()
    assert (await deliver(client, channel, answer)).status_code == 200
    later = await reply(api, conv["id"], "three, after Jordan read")
    await settle(api, runtime, later, "sent")
    last_read = answer["direct_message_events"][0]["id"]
    assert (await deliver(client, channel, read_up_to(last_read))).status_code == 200

    for message_id in replies:
        msg = (await api.get(f"/v1/messages/{message_id}")).json()
        assert [h["status"] for h in msg["status_history"]] == ["queued", "sent", "read"]
    assert (await api.get(f"/v1/messages/{later}")).json()["status"] == "sent"


async def test_server_errors_and_rate_limits_are_retried_then_sent(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    await deliver(client, channel, fixture("x.dm_event_inbound.json"))
    conv = await only_conversation(api, channel)
    xe_api.respond(
        Problem(503, {"title": "Service Unavailable", "type": "about:blank"}), rate_limited(1)
    )
    msg = await settle(api, runtime, await reply(api, conv["id"], "x"), "sent")
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["503", "429", None]
    assert len(xe_api.sent) == 1


async def test_a_recipient_refusing_dms_fails_the_reply_with_xs_code(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    await deliver(client, channel, fixture("x.dm_event_inbound.json"))
    conv = await only_conversation(api, channel)
    xe_api.respond(replay("x.error_403.json", 403))
    msg = await settle(api, runtime, await reply(api, conv["id"], "x"), "failed")
    assert msg["status_history"][-1]["detail"]["code"] == "403"
    assert [a["error_code"] for a in msg["delivery_attempts"]] == ["403"]


async def test_bad_credentials_fail_the_reply_with_401(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    await deliver(client, channel, fixture("x.dm_event_inbound.json"))
    conv = await only_conversation(api, channel)
    xe_api.respond(unauthorized())
    msg = await settle(api, runtime, await reply(api, conv["id"], "x"), "failed")
    assert msg["status_history"][-1]["detail"]["code"] == "401"


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("twitter-consumer-0013x", 403)])
async def test_an_event_without_the_right_signature_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    xe_api: FakeX,
    secret: str | None,
    status: int,
) -> None:
    channel = await x_channel(api, xe_api)
    r = await deliver(client, channel, fixture("x.dm_event_inbound.json"), secret=secret)
    assert r.status_code == status
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


async def test_a_repeated_event_is_stored_once(
    client: httpx.AsyncClient, api: httpx.AsyncClient, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    for _ in range(2):
        assert (
            await deliver(client, channel, fixture("x.dm_event_inbound.json"))
        ).status_code == 200
    conv = await only_conversation(api, channel)
    assert [m["content"]["text"] for m in await messages_of(api, conv["id"])] == ["Hello World!"]


async def test_an_echo_alone_opens_no_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    assert (
        await deliver(client, channel, fixture("x.dm_event_outbound_echo.json"))
    ).status_code == 200
    assert (await api.get(f"/v1/conversations?channel={channel}")).json()["data"] == []


async def test_a_photo_dm_is_stored_as_media_in_the_conversation(
    client: httpx.AsyncClient, api: httpx.AsyncClient, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    media = {
        "id": "9", "type": "photo", "url": "https://t.co/abc",
        "media_url_https": "https://ton.twitter.com/1.1/ton/data/dm/1/9/x.jpg",
    }  # fmt: skip
    data = {"text": "Broken part https://t.co/abc", "attachment": {"type": "media", "media": media}}
    body = {"for_user_id": ME, "direct_message_events": [dm(data, id_="77")]}
    assert (await deliver(client, channel, body)).status_code == 200
    conv = await only_conversation(api, channel)
    [stored] = await messages_of(api, conv["id"])
    assert stored["content"] == {
        "type": "media",
        "url": "https://ton.twitter.com/1.1/ton/data/dm/1/9/x.jpg",
        "mime_type": "image/jpeg",
        "caption": "Broken part",
    }


async def test_an_agents_video_reply_is_uploaded_in_chunks_and_reaches_x(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    assert (await deliver(client, channel, fixture("x.dm_event_inbound.json"))).status_code == 200
    conv = await only_conversation(api, channel)
    xe_api.files["how-to.mp4"] = (b"\1" * (6 * 1024 * 1024), "video/mp4")
    xe_api.processing.extend([{"state": "in_progress", "check_after_secs": 0}, {"state": "succeeded"}])
    content = {"type": "media", "url": f"{xe_api.url}/files/how-to.mp4", "caption": "How to fix it"}
    message_id = await reply(api, conv["id"], content)

    msg = await settle(api, runtime, message_id, "sent")
    [upload] = xe_api.uploads.values()
    assert upload.steps == ["initialize", "append 0", "append 1", "finalize", "status"]
    [call] = xe_api.sent
    assert (call.participant_id, call.body) == (
        JORDAN,
        {"text": "How to fix it", "attachments": [{"media_id": upload.media_id}]},
    )
    assert msg["delivery"]["provider_message_id"] == call.dm_event_id


async def test_a_reply_with_a_file_x_cannot_take_fails_with_media_too_large(
    client: httpx.AsyncClient, api: httpx.AsyncClient, runtime: Any, xe_api: FakeX
) -> None:
    channel = await x_channel(api, xe_api)
    assert (await deliver(client, channel, fixture("x.dm_event_inbound.json"))).status_code == 200
    conv = await only_conversation(api, channel)
    xe_api.files["poster.png"] = (b"\0" * (6 * 1024 * 1024), "image/png")
    content = {"type": "media", "url": f"{xe_api.url}/files/poster.png"}
    message_id = await reply(api, conv["id"], content)

    msg = await settle(api, runtime, message_id, "failed")
    assert msg["status_history"][-1]["detail"]["code"] == "media_too_large"
    assert xe_api.uploads == {} and xe_api.calls == []


async def test_an_agents_reply_on_the_agent_socket_reaches_x_and_a_note_does_not(
    live_server: LiveServer, xe_api: FakeX
) -> None:
    api, runtime = live_server.http, live_server.app.state.runtime
    channel = await x_channel(api, xe_api)
    assert (await deliver(api, channel, fixture("x.dm_event_inbound.json"))).status_code == 200
    conv = await only_conversation(api, channel)

    reply_id, note_id = await socket_reply_and_note(live_server, conv["id"], "Thanks, Jordan!")
    msg = await settle(api, runtime, reply_id, "sent")
    await note_stayed_inside(api, runtime, note_id)
    [call] = xe_api.calls
    assert (call.participant_id, call.body) == (JORDAN, {"text": "Thanks, Jordan!"})
    assert msg["delivery"]["provider_message_id"] == call.dm_event_id


async def test_a_media_link_into_the_servers_own_network_is_refused_for_good(
    db_url: str, xe_api: FakeX
) -> None:
    """With private networks closed (the default), the connector still reaches its own
    provider on 127.0.0.1, but not a file on another private origin: the reply fails
    at once with ``url_not_allowed`` and nothing is fetched or uploaded."""
    application = create_app(conftest.test_settings(db_url, webhook_allow_private_networks=False))
    async with application.router.lifespan_context(application):
        keys = await application.state.services.workspaces.create("Closed")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://parley.test",
            headers={"Authorization": f"Bearer {keys['api_key']}"},
        ) as api:
            channel = await x_channel(api, xe_api)
            inbound = fixture("x.dm_event_inbound.json")
            assert (await deliver(api, channel, inbound)).status_code == 200
            conv = await only_conversation(api, channel)
            hello = await reply(api, conv["id"], {"type": "text", "text": "Hello"})
            await settle(api, application.state.runtime, hello, "sent")
            xe_api.files["x.png"] = (b"\0" * 10, "image/png")
            private = xe_api.url.rsplit(":", 1)[0] + ":1/x.png"  # 127.0.0.1, another port
            message_id = await reply(api, conv["id"], {"type": "media", "url": private})
            msg = await settle(api, application.state.runtime, message_id, "failed")
    assert msg["status_history"][-1]["detail"]["code"] == "url_not_allowed"
    assert xe_api.uploads == {}
    assert [call.body for call in xe_api.calls] == [{"text": "Hello"}]
