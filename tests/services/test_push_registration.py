"""Registering a device for push: the registry's push types, each address normalised."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.domain.errors import Unprocessable
from chat.realtime.protocol import RegisterPush
from tests.domain.test_channels import SUBSCRIPTION


async def test_a_browser_subscription_is_a_webpush_identity(
    services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    contact = await services.contacts.create(ws, {"name": "Ann"})
    identity = await services.visitors.register_push(
        ws, contact["id"], "webpush", json.dumps(SUBSCRIPTION, indent=2)
    )
    assert identity["channel_type"] == "webpush"
    assert json.loads(identity["address"]) == {
        "endpoint": SUBSCRIPTION["endpoint"], "keys": SUBSCRIPTION["keys"]
    }
    # the same subscription written differently is the same identity
    again = await services.visitors.register_push(
        ws, contact["id"], "webpush", json.dumps(SUBSCRIPTION)
    )
    assert again["id"] == identity["id"]


@pytest.mark.parametrize(
    ("channel_type", "token", "code"),
    [
        ("sms", "+14155550100", "invalid_channel_type"),
        ("webpush", "https://push.example/1", "invalid_address"),
        ("fcm", "two words", "invalid_address"),
    ],
)
async def test_what_is_not_a_push_address_is_refused(
    services: Any, workspace: dict[str, str], channel_type: str, token: str, code: str
) -> None:
    ws = workspace["workspace_id"]
    contact = await services.contacts.create(ws, {"name": "Ann"})
    with pytest.raises(Unprocessable) as refused:
        await services.visitors.register_push(ws, contact["id"], channel_type, token)
    assert refused.value.code == code


def test_the_socket_payload_takes_the_registrys_push_types() -> None:
    assert RegisterPush(channel_type="webpush", token="{}").channel_type == "webpush"
    with pytest.raises(ValueError, match="one of apns, fcm, webpush, wns"):
        RegisterPush(channel_type="sms", token="t")
