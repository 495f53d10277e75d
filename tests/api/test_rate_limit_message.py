"""A 429 says the same wait in its message as in ``Retry-After``: whole seconds, rounded up."""

from __future__ import annotations

import httpx
import pytest

from chat.domain.errors import RateLimited
from chat.services.throttle import MemoryBuckets, Throttle
from chat.settings import Settings
from tests.conftest import test_settings as settings_for


@pytest.fixture
def settings(db_url: str) -> Settings:
    # One request, then one more every 1000 s: the second waits ~999.99 s, never less.
    return settings_for(db_url, api_rate_per_second=0.001, api_rate_burst=1)


async def test_the_429_message_and_retry_after_name_the_same_seconds(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/contacts")).status_code == 200
    refused = await api.get("/v1/contacts")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1000"
    assert refused.json()["error"]["message"] == "too many requests; try again in 1000 s"


async def test_a_wait_under_a_second_is_reported_as_one_second_not_zero() -> None:
    settings = Settings(_env_file=None, api_rate_per_second=20.0, api_rate_burst=1)
    throttle = Throttle(MemoryBuckets(clock=lambda: 0.0), settings)  # time stands still
    await throttle.api("ws_1")
    with pytest.raises(RateLimited) as refused:
        await throttle.api("ws_1")  # 0.05 s to wait
    assert refused.value.message == "too many requests; try again in 1 s"
    assert refused.value.headers == {"Retry-After": "1"}
