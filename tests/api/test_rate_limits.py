"""A flood gets 429 with Retry-After: per workspace's API keys or agent, and per login."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chat.services.throttle import MemoryBuckets, RedisBuckets, Throttle
from chat.settings import Settings
from tests.conftest import need_redis
from tests.conftest import test_settings as settings_for


@pytest.fixture
def settings(db_url: str) -> Settings:
    return settings_for(
        db_url, api_rate_per_second=20.0, api_rate_burst=3, login_attempts_per_minute=3
    )


def assert_limited(resp: httpx.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock(services: Any) -> AsyncIterator[Clock]:
    """The app's rate-limit buckets on a clock the test moves (20 tokens a second)."""
    fake = Clock()
    real = services.throttle.buckets
    services.throttle.buckets = MemoryBuckets(clock=fake)
    yield fake
    services.throttle.buckets = real


async def test_a_flood_of_api_calls_gets_429_and_recovers(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, clock: Clock
) -> None:
    statuses = [(await api.get("/v1/contacts")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert_limited(await api.get("/v1/contacts"))
    # Another workspace has buckets of its own.
    assert (await other_api.get("/v1/contacts")).status_code == 200
    clock.now += 0.125  # 20 a second: two and a half tokens back
    assert [(await api.get("/v1/contacts")).status_code for _ in range(3)] == [200, 200, 429]
    clock.now += 10  # never more than the burst
    assert [(await api.get("/v1/contacts")).status_code for _ in range(4)] == [200] * 3 + [429]


async def test_a_refused_call_changes_nothing(api: httpx.AsyncClient, clock: Clock) -> None:
    for _ in range(3):
        await api.get("/v1/contacts")
    resp = await api.post("/v1/contacts", json={"external_id": "flood", "name": "Flood"})
    assert_limited(resp)
    clock.now += 0.125
    listed = (await api.get("/v1/contacts")).json()
    assert all(c.get("external_id") != "flood" for c in listed["data"])


async def test_login_attempts_are_limited_per_account_and_address(
    client: httpx.AsyncClient, services: Any, workspace: dict[str, str], clock: Clock
) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    _, password = await services.agents.create(workspace["workspace_id"], email, "Ada")
    for _ in range(3):
        wrong = await client.post("/v1/auth/login", json={"email": email, "password": "nope"})
        assert wrong.status_code == 401
    # Past the limit even the right password waits: guessing gains nothing.
    assert_limited(await client.post("/v1/auth/login", json={"email": email, "password": password}))
    # Another account from the same address is still let in.
    other = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    _, other_password = await services.agents.create(workspace["workspace_id"], other, "Bob")
    ok = await client.post("/v1/auth/login", json={"email": other, "password": other_password})
    assert ok.status_code == 200


async def test_memory_buckets_refill_and_forget_the_oldest() -> None:
    now = [0.0]
    buckets = MemoryBuckets(max_keys=2, clock=lambda: now[0])
    assert [await buckets.take("a", 1.0, 2) for _ in range(3)] == [0.0, 0.0, 1.0]
    now[0] = 0.5
    assert await buckets.take("a", 1.0, 2) == pytest.approx(0.5)
    now[0] = 2.0
    assert await buckets.take("a", 1.0, 2) == 0.0
    await buckets.take("b", 1.0, 2)
    await buckets.take("c", 1.0, 2)  # "a" is the least recently used: dropped
    assert "a" not in buckets._state and len(buckets._state) == 2


async def test_processes_sharing_redis_share_the_buckets() -> None:
    url = need_redis()
    settings = Settings(_env_file=None, api_rate_per_second=1.0, api_rate_burst=2)
    prefix = f"parley:test-rl:{uuid.uuid4().hex}:"
    first = Throttle(RedisBuckets(url, prefix=prefix), settings)
    second = Throttle(RedisBuckets(url, prefix=prefix), settings)
    try:
        await first.api("workspace:w1")
        await second.api("workspace:w1")
        with pytest.raises(Exception) as refused:
            await first.api("workspace:w1")
        assert getattr(refused.value, "code", None) == "rate_limited"
        assert 0 < refused.value.retry_after <= 1.0  # type: ignore[attr-defined]
        await second.api("workspace:w2")  # another caller, another bucket
    finally:
        await first.close()
        await second.close()
