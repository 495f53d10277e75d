"""Webhook delivery honours a receiver's ``Retry-After``.

The rest of webhook delivery is proven in tests/api/test_webhooks.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chat.settings import Settings
from tests.api.test_webhooks import send_hi, subscribe
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_delivery_attempts": 3})


@pytest.fixture
async def receiver(runtime: Any) -> AsyncIterator[WebhookReceiver]:
    fake = await WebhookReceiver().start()
    yield fake
    await fake.stop()


async def test_a_429_is_retried_no_sooner_than_its_retry_after(
    api: httpx.AsyncClient, receiver: WebhookReceiver, runtime: Any
) -> None:
    retry_after = 0.6  # far above the test settings' backoff (retry_base_seconds 0.05)
    receiver.respond((429, {"Retry-After": str(retry_after)}))
    await subscribe(api, receiver.url + "/hooks", events=["message.created"])
    await send_hi(api)
    first, second = await receiver.wait_count(2)
    await receiver.wait_for(lambda r: second.status == 200)
    assert first.status == 429
    assert second.at - first.at >= retry_after
