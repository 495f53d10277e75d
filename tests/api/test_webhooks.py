"""Webhook subscriptions, and delivery to a real HTTP receiver on 127.0.0.1.

The app's own worker runs in the background as in production; tests wait on the
receiver (bounded) and use ``runtime.worker.drain()`` to let in-flight work finish.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import update

from bots import signing
from chat.db import models as m
from chat.db.types import utcnow
from chat.domain.channel_config import MASK
from chat.domain.enums import MessageStatus
from chat.security import verify_webhook_signature
from chat.settings import Settings
from tests.fakes.webhook_receiver import DRIP, HANG, WebhookReceiver

T = TypeVar("T")
MAX_ATTEMPTS = 3


@pytest.fixture
def webhook_timeout() -> float:
    return 0.3  # a hanging receiver costs this much; parametrize a test to change it


@pytest.fixture
def worker_enabled() -> bool:
    return True


@pytest.fixture
def retry_base() -> float | None:
    return None  # the suite's default; parametrize a test to change it


@pytest.fixture
def settings(
    settings: Settings, webhook_timeout: float, worker_enabled: bool, retry_base: float | None
) -> Settings:
    update: dict[str, Any] = {
        "webhook_timeout_seconds": webhook_timeout,
        "max_delivery_attempts": MAX_ATTEMPTS,
        "worker_enabled": worker_enabled,
    }
    if retry_base is not None:
        update |= {"retry_base_seconds": retry_base, "retry_max_seconds": 100 * retry_base}
    return settings.model_copy(update=update)


@pytest.fixture
async def receiver(runtime: Any) -> AsyncIterator[WebhookReceiver]:
    # Taking ``runtime`` makes the receiver stop (releasing held requests) before the app.
    fake = await WebhookReceiver().start()
    yield fake
    await fake.stop()


async def subscribe(api: httpx.AsyncClient, url: str, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/webhooks", json={"url": url, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def send_hi(api: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"channel": "inapp", "to": {"address": "u1"}, "content": {"type": "text", "text": "hi"}}
    r = await api.post("/v1/messages", json={**body, **extra})
    assert r.status_code == 202, r.text
    return dict(r.json()["messages"][0])


async def eventually(
    read: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 10
) -> T:
    """Poll ``read`` until ``check`` passes (bounded)."""
    async with asyncio.timeout(timeout):
        while not check(value := await read()):
            await asyncio.sleep(0.02)
    return value


async def deliveries(
    api: httpx.AsyncClient, sub: dict[str, Any], query: str = ""
) -> dict[str, Any]:
    r = await api.get(f"/v1/webhooks/{sub['id']}/deliveries{query}")
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- subscriptions -------------------------------------------------------------------------


async def test_secret_is_shown_once_then_masked(api: httpx.AsyncClient) -> None:
    sub = await subscribe(api, "https://hooks.acme.com/parley")
    assert sub["secret"].startswith("whsec_") and len(sub["secret"]) > 30
    assert sub["events"] == ["*"] and sub["active"] is True

    one = (await api.get(f"/v1/webhooks/{sub['id']}")).json()
    listed = (await api.get("/v1/webhooks")).json()
    assert one["secret"] == MASK + sub["secret"][-4:]
    assert [s["id"] for s in listed["data"]] == [sub["id"]] and listed["next_cursor"] is None
    assert sub["secret"] not in str(one) + str(listed)


async def test_own_secret_and_event_filters_are_kept(api: httpx.AsyncClient) -> None:
    sub = await subscribe(
        api,
        "http://127.0.0.1:9/hook?x=1",
        events=["message.*", "conversation.updated", "message.*"],
        secret="my-own-secret-of-enough-length",
    )
    assert sub["secret"] == "my-own-secret-of-enough-length"
    assert sub["events"] == ["message.*", "conversation.updated"]
    assert sub["url"] == "http://127.0.0.1:9/hook?x=1"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://acme.com/x"}, "validation_error"),
        ({"url": "not a url"}, "validation_error"),
        ({}, "validation_error"),
        ({"url": "https://acme.com", "events": []}, "validation_error"),
        ({"url": "https://acme.com", "secret": "short"}, "validation_error"),
        ({"url": "https://acme.com", "active": False}, "validation_error"),
        ({"url": "https://acme.com", "events": ["message.sent"]}, "unknown_event"),
        ({"url": "https://acme.com", "events": ["contact.*"]}, "unknown_event"),
    ],
)
async def test_bad_subscription_is_refused(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    r = await api.post("/v1/webhooks", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


async def test_list_pages_newest_first(api: httpx.AsyncClient) -> None:
    ids = [(await subscribe(api, f"https://acme.com/{i}"))["id"] for i in range(3)]
    first = (await api.get("/v1/webhooks?limit=2")).json()
    second = (await api.get(f"/v1/webhooks?limit=2&cursor={first['next_cursor']}")).json()
    assert [s["id"] for s in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("worker_enabled", [False])
async def test_deleting_a_subscription_cancels_its_pending_deliveries(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    keep = await subscribe(api, receiver.url + "/keep", events=["message.created"])
    drop = await subscribe(api, receiver.url + "/drop", events=["message.created"])
    await send_hi(api)  # two deliveries now wait in the outbox
    assert (await api.delete(f"/v1/webhooks/{drop['id']}")).status_code == 204
    assert (await api.get(f"/v1/webhooks/{drop['id']}")).status_code == 404
    assert (await api.delete(f"/v1/webhooks/{drop['id']}")).status_code == 404

    await runtime.worker.drain()
    assert [r.path for r in receiver.requests] == ["/keep"]
    assert [s["id"] for s in (await api.get("/v1/webhooks")).json()["data"]] == [keep["id"]]


# --- delivery --------------------------------------------------------------------------------


async def test_a_sent_message_is_posted_signed_and_a_replay_fails_verification(
    api: httpx.AsyncClient, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.*"])
    sent = await send_hi(api)

    got = {r.event_type: r for r in await receiver.wait_count(2)}
    assert set(got) == {"message.created", "message.status"}
    assert got["message.created"].json()["data"]["message"]["id"] == sent["message_id"]
    assert got["message.status"].json()["data"]["status"] == "sent"
    for hook in got.values():
        header = hook.headers["x-parley-signature"]
        assert hook.headers["x-parley-event"] == hook.event_type
        assert hook.headers["content-type"] == "application/json"
        assert verify_webhook_signature(sub["secret"], hook.body, header)
        assert not verify_webhook_signature("whsec_someone-else", hook.body, header)
        assert not verify_webhook_signature(sub["secret"], hook.body + b" ", header)

    # The same request captured and replayed later carries a stale t ...
    hook = got["message.created"]
    header = hook.headers["x-parley-signature"]
    t = int(header.split(",")[0].removeprefix("t="))
    with monkeypatch.context() as later:
        later.setattr(signing, "time", SimpleNamespace(time=lambda: t + 301))
        assert not verify_webhook_signature(sub["secret"], hook.body, header)
    # ... and refreshing t without the secret breaks the MAC.
    refreshed = header.replace(f"t={t}", f"t={t + 301}")
    with monkeypatch.context() as later:
        later.setattr(signing, "time", SimpleNamespace(time=lambda: t + 301))
        assert not verify_webhook_signature(sub["secret"], hook.body, refreshed)


def documented_signature(secret: str, t: str, raw_body: bytes) -> str:
    """What the docs tell an integrator to compute, written here without chat.security."""
    return hmac.new(secret.encode(), t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()


async def test_the_signature_is_the_documented_hmac_of_the_raw_body(
    api: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    before = int(time.time())
    await send_hi(api)
    [hook] = await receiver.wait_count(1)
    after = int(time.time())

    header = hook.headers["x-parley-signature"]
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match, header
    t, v1 = match.groups()
    assert before <= int(t) <= after  # seconds since the epoch, when it was sent
    assert hmac.compare_digest(v1, documented_signature(sub["secret"], t, hook.body))

    # Any change to the body, the timestamp or the secret gives another MAC.
    tampered = hook.body.replace(b'"hi"', b'"HI"')
    assert tampered != hook.body
    assert documented_signature(sub["secret"], t, tampered) != v1
    assert documented_signature(sub["secret"], str(int(t) + 1), hook.body) != v1
    assert documented_signature(sub["secret"] + "x", t, hook.body) != v1
    # The shipped verifier agrees with the documented computation both ways.
    assert verify_webhook_signature(sub["secret"], hook.body, header)
    assert not verify_webhook_signature(sub["secret"], tampered, header)


@pytest.mark.parametrize("webhook_timeout", [5.0])  # the held retry must not time out
async def test_5xx_is_retried_with_backoff_and_every_attempt_is_visible(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    receiver.respond(500, HANG)
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    sent = await send_hi(api)

    # While the second try is held, the first shows as failed and the delivery as pending.
    await receiver.wait_for(lambda r: len(r.holding) == 1)
    page = await deliveries(api, sub)
    [first] = page["data"]
    assert (first["attempt"], first["ok"], first["status_code"]) == (1, False, 500)
    assert first["event"]["type"] == "message.created" and first["message_id"] == sent["message_id"]
    assert first["delivery"]["state"] == "pending"
    assert first["delivery"]["attempts"] == 2 and first["delivery"]["next_attempt_at"]

    receiver.release()  # the held try now answers 200
    await receiver.wait_for(lambda r: r.requests[-1].status == 200 and len(r.requests) == 2)
    await runtime.worker.drain()

    page = await deliveries(api, sub)
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in page["data"]] == [
        (2, True, 200),
        (1, False, 500),
    ]
    assert {d["delivery"]["state"] for d in page["data"]} == {"done"}
    assert page["data"][0]["delivery"]["next_attempt_at"] is None

    # A retry is the same delivery of the same event, signed at send time, after a backoff.
    a, b = receiver.requests
    assert a.json() == b.json()
    assert a.headers["x-parley-delivery"] == b.headers["x-parley-delivery"]
    assert all(
        verify_webhook_signature(sub["secret"], x.body, x.headers["x-parley-signature"])
        for x in (a, b)
    )
    assert b.at - a.at >= 0.9 * runtime.services.settings.retry_base_seconds

    msg = (await api.get(f"/v1/messages/{sent['message_id']}")).json()
    mine = [x for x in msg["delivery_attempts"] if x["target"] == sub["url"]]
    assert [(x["attempt"], x["status_code"]) for x in mine] == [(1, 500), (2, 200)]


@pytest.mark.parametrize("retry_base", [100.0])  # no retry comes by itself during the test
async def test_a_chain_of_5xx_backs_off_exponentially(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any, services: Any
) -> None:
    """Each failed attempt sets the next one base x 2^(n-1) seconds after it. The test
    reads that from the delivery log, then makes the retry due at once (time passing)
    instead of waiting for it."""
    receiver.respond(500, 502)
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    delays = []
    for attempt in (1, 2):
        page = await eventually(
            lambda: deliveries(api, sub),
            lambda p, n=attempt: len(p["data"]) == n
            and p["data"][0]["delivery"]["next_attempt_at"] is not None
            and when(p["data"][0]["delivery"]["next_attempt_at"]) > when(p["data"][0]["at"]),
        )
        latest = page["data"][0]
        assert latest["attempt"] == attempt and latest["ok"] is False
        delays.append(
            (when(latest["delivery"]["next_attempt_at"]) - when(latest["at"])).total_seconds()
        )
        async with services.db.write() as session:  # the backoff has passed
            await session.execute(
                update(m.OutboxEntry)
                .where(m.OutboxEntry.state == "pending")
                .values(due_at=utcnow())
            )
        runtime.worker.wake()
    await receiver.wait_for(lambda r: len(r.requests) == 3 and r.requests[-1].status == 200)
    await runtime.worker.drain()

    # 100 s, then 200 s: each at least its share and less than the next doubling.
    assert 100 <= delays[0] < 200 and 200 <= delays[1] < 400, delays
    page = await deliveries(api, sub)
    assert [d["status_code"] for d in page["data"]] == [200, 502, 500]
    assert page["data"][0]["delivery"]["state"] == "done"


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def test_a_timeout_is_retried(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any, webhook_timeout: float
) -> None:
    receiver.respond(HANG)
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    await receiver.wait_for(lambda r: [x.status for x in r.requests] == [None, 200])
    await runtime.worker.drain()

    assert receiver.requests[0].outcome == "caller left"
    page = await deliveries(api, sub)
    second, first = page["data"]
    assert (first["ok"], first["status_code"], first["error"]) == (False, None, "timeout")
    assert first["duration_ms"] >= 0.9 * webhook_timeout * 1000
    assert (second["attempt"], second["ok"], second["status_code"]) == (2, True, 200)
    assert second["delivery"]["state"] == "done"


async def test_a_receiver_trickling_an_endless_body_does_not_hold_the_delivery(
    api: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    receiver.respond(DRIP)  # 200, then a byte now and then, forever
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    page = await eventually(
        lambda: deliveries(api, sub),
        lambda p: bool(p["data"]) and p["data"][0]["delivery"]["state"] != "pending",
        timeout=5,
    )
    [only] = page["data"]
    assert (only["ok"], only["status_code"], only["delivery"]["state"]) == (True, 200, "done")
    await receiver.wait_for(lambda r: r.requests[0].outcome == "caller left")


async def test_a_4xx_is_not_retried(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    receiver.respond(400)
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    await receiver.wait_count(1)
    await runtime.worker.drain()

    [only] = (await deliveries(api, sub))["data"]
    assert (only["attempt"], only["ok"], only["status_code"]) == (1, False, 400)
    assert only["delivery"]["state"] == "failed"
    assert only["delivery"]["last_error"] == "HTTP 400"
    assert only["delivery"]["next_attempt_at"] is None
    assert len(receiver.requests) == 1


async def test_attempts_stop_at_the_maximum_and_the_delivery_fails(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    receiver.respond(*[500] * (MAX_ATTEMPTS + 2))
    sub = await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    await receiver.wait_count(MAX_ATTEMPTS)
    page = await eventually(
        lambda: deliveries(api, sub),
        lambda p: len(p["data"]) == MAX_ATTEMPTS and p["data"][0]["delivery"]["state"] != "pending",
    )
    await runtime.worker.drain()

    assert [d["attempt"] for d in page["data"]] == [3, 2, 1]
    assert {(d["ok"], d["status_code"]) for d in page["data"]} == {(False, 500)}
    assert page["data"][0]["delivery"] == {
        **page["data"][0]["delivery"],
        "state": "failed",
        "attempts": MAX_ATTEMPTS,
        "next_attempt_at": None,
        "last_error": "HTTP 500",
    }
    assert len(receiver.requests) == MAX_ATTEMPTS

    # The log pages newest first.
    head = await deliveries(api, sub, "?limit=2")
    tail = await deliveries(api, sub, f"?limit=2&cursor={head['next_cursor']}")
    assert [d["id"] for d in head["data"] + tail["data"]] == [d["id"] for d in page["data"]]
    assert tail["next_cursor"] is None


async def test_notify_url_gets_each_status_change_signed_with_the_workspace_secret(
    api: httpx.AsyncClient, receiver: WebhookReceiver, services: Any, workspace: dict[str, str]
) -> None:
    sent = await send_hi(
        api,
        to={"address": "u1", "correlation_id": "order-42"},
        callback_data={"order": 42, "tags": ["a"]},
        notify_url=receiver.url + "/notify",
    )
    await services.messages.set_status(
        workspace["workspace_id"], sent["message_id"], MessageStatus.DELIVERED
    )

    hooks = await receiver.wait_count(2, "/notify")
    assert [h.event_type for h in hooks] == ["message.status", "message.status"]
    assert sorted(h.json()["data"]["status"] for h in hooks) == ["delivered", "sent"]
    for hook in hooks:
        data = hook.json()["data"]
        assert data["message_id"] == sent["message_id"]
        assert data["correlation_id"] == "order-42"
        assert data["callback_data"] == {"order": 42, "tags": ["a"]}
        assert verify_webhook_signature(
            workspace["webhook_secret"], hook.body, hook.headers["x-parley-signature"]
        )


@pytest.mark.parametrize("webhook_timeout", [5.0])  # hold for as long as the test needs
async def test_the_send_returns_while_the_receiver_still_holds_the_webhook(
    api: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    receiver.respond(HANG)
    await subscribe(api, receiver.url + "/hooks", events=["message.created"])

    sending = asyncio.create_task(send_hi(api))
    await receiver.wait_for(lambda r: len(r.holding) == 1)
    sent = await asyncio.wait_for(sending, 10)  # a bound for failure only

    # The send is answered, and the webhook it caused is still unanswered.
    assert sent["status"] == "sent"
    [held] = receiver.requests
    assert held.outcome == "held" and held.status is None
    assert held.json()["data"]["message"]["id"] == sent["message_id"]
    receiver.release()
    await receiver.wait_for(lambda r: held.status == 200)


async def test_event_filters_choose_what_each_subscription_gets(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    await subscribe(api, receiver.url + "/conv", events=["conversation.*"])
    await subscribe(api, receiver.url + "/msg", events=["message.*"])
    await subscribe(api, receiver.url + "/status", events=["message.status"])
    await subscribe(api, receiver.url + "/all")
    sent = await send_hi(api)
    r = await api.patch(f"/v1/conversations/{sent['conversation_id']}", json={"status": "resolved"})
    assert r.status_code == 200

    await receiver.wait_count(4, "/all")
    await runtime.worker.drain()

    def types(path: str) -> set[str | None]:
        return {h.event_type for h in receiver.at(path)}

    assert types("/conv") == {"conversation.created", "conversation.updated"}
    assert types("/msg") == {"message.created", "message.status"}
    assert types("/status") == {"message.status"}
    assert types("/all") == types("/conv") | types("/msg")
    assert len(receiver.requests) == 2 + 2 + 1 + 4


async def test_workspaces_never_see_each_others_webhooks(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    mine = await subscribe(api, receiver.url + "/mine")
    theirs = await subscribe(other_api, receiver.url + "/theirs")
    await send_hi(api)
    await receiver.wait_count(3, "/mine")
    await runtime.worker.drain()
    assert receiver.at("/theirs") == []

    for path in (f"/v1/webhooks/{mine['id']}", f"/v1/webhooks/{mine['id']}/deliveries"):
        assert (await other_api.get(path)).status_code == 404
    assert (await other_api.delete(f"/v1/webhooks/{mine['id']}")).status_code == 404
    assert [s["id"] for s in (await other_api.get("/v1/webhooks")).json()["data"]] == [theirs["id"]]
    assert (await api.get(f"/v1/webhooks/{mine['id']}")).status_code == 200
    assert len((await deliveries(api, mine))["data"]) == 3

    [channel] = (await api.get("/v1/channels")).json()["data"]
    assert (await other_api.get(f"/v1/channels/{channel['id']}")).status_code == 404
