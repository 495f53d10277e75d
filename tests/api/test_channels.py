"""Channels over REST: per-type config validation, write-only secrets, merge on PATCH."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from chat.domain.channel_config import MASK
from chat.domain.channels import REGISTRY
from chat.domain.enums import AgentRole

P8 = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "acme-push",
    "client_email": "parley@acme-push.iam.gserviceaccount.com",
    "private_key": P8,
}

VALID: dict[str, dict[str, Any]] = {
    "inapp": {"allowed_origins": ["https://acme.com", "http://localhost:3000"]},
    "sms": {
        "account_sid": "AC" + "0a" * 16,
        "auth_token": "twilio-auth-token-0001",
        "from_number": "+14155550100",
        "status_callback_url": "https://acme.com/twilio/status",
        "api_base_url": "http://127.0.0.1:9/twilio",
    },
    "voice": {
        "account_sid": "AC" + "0b" * 16,
        "auth_token": "twilio-auth-token-0002",
        "from_number": "+14155550101",  # a Messaging Service cannot place calls
    },
    "whatsapp": {
        "phone_number_id": "106540352242922",
        "access_token": "EAAG-whatsapp-access-0003",
        "app_secret": "whatsapp-app-secret-0004",
        "verify_token": "whatsapp-verify-0005",
        "api_version": "v20.0",
    },
    "messenger": {
        "page_id": "1234567890",
        "page_access_token": "EAAG-page-access-0006",
        "app_secret": "messenger-app-secret-0007",
        "verify_token": "messenger-verify-0008",
    },
    "telegram": {
        "bot_token": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
        "secret_token": "tg_secret_0009",
    },
    "wechat": {
        "app_id": "wx1234567890abcdef",
        "app_secret": "wechat-app-secret-0010",
        "token": "wechattoken0011",
        "encoding_aes_key": "a" * 39 + "0012",
        "token_url": "http://127.0.0.1:9/cgi-bin/token",
    },
    "twitter": {
        "consumer_key": "twitter-consumer-key",
        "consumer_secret": "twitter-consumer-0013",
        "access_token": "twitter-access-token-0014",
        "access_token_secret": "twitter-access-secret-0015",
    },
    "email": {
        "smtp_host": "smtp.acme.com",
        "smtp_username": "bot@acme.com",
        "smtp_password": "smtp-password-0016",
        "smtp_security": "tls",
        "from_address": "Acme Support <support@acme.com>",
        "inbound": "smtp",
    },
    "apns": {
        "team_id": "ABCDE12345",
        "key_id": "KEY1234567",
        "private_key": P8,
        "topic": "com.acme.app",
        "environment": "sandbox",
    },
    "fcm": {"service_account": json.dumps(SERVICE_ACCOUNT)},
    "wns": {
        "client_id": "ms-app://s-1-15-2-1234",
        "client_secret": "wns-client-secret-0017",
        "token_url": "http://127.0.0.1:9/accesstoken.srf",
    },
    # The sample VAPID pair of Google's web push codelab.
    "webpush": {
        "vapid_public_key": (
            "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U"
        ),
        "vapid_private_key": "UUxI4O8-FbRouAevSmBQ6o18hgE4nSG3qwvJTfKc-ls",
        "subject": "mailto:push@acme.com",
    },
}
PROVIDER_CALLBACKS = {
    "sms",
    "voice",
    "whatsapp",
    "messenger",
    "telegram",
    "wechat",
    "twitter",
    "email",
}


async def add(
    api: httpx.AsyncClient, type_: str, config: dict[str, Any], name: str = "Main"
) -> httpx.Response:
    return await api.post("/v1/channels", json={"type": type_, "name": name, "config": config})


def test_every_channel_type_has_a_config_model() -> None:
    assert set(REGISTRY.types) == set(VALID)


@pytest.mark.parametrize("type_", sorted(VALID))
async def test_each_type_is_created_and_every_read_masks_its_secrets(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str], type_: str
) -> None:
    config = VALID[type_]
    r = await add(api, type_, config)
    assert r.status_code == 201, r.text
    created = r.json()
    secret_keys = REGISTRY.spec(created["type"]).config.secret_keys

    reads = [
        created,
        (await api.get(f"/v1/channels/{created['id']}")).json(),
        next(c for c in (await api.get("/v1/channels")).json()["data"] if c["id"] == created["id"]),
    ]
    for view in reads:
        assert (view["type"], view["name"]) == (type_, "Main")
        for key in secret_keys & set(config):
            assert view["config"][key].startswith(MASK)
            assert str(config[key]) not in json.dumps(view)
        for key in set(config) - secret_keys:
            assert view["config"][key] == config[key]
        if type_ in PROVIDER_CALLBACKS:
            assert view["webhook_url"] == f"http://parley.test/webhooks/{created['id']}"
        else:
            assert view["webhook_url"] is None

    # The connector side still gets the real values.
    real = await services.channels.config(workspace["workspace_id"], created["id"])
    for key in secret_keys & set(config):
        stored = getattr(real, key)
        assert stored == (json.loads(config[key]) if type_ == "fcm" else config[key])


async def test_defaults_are_filled_in(api: httpx.AsyncClient) -> None:
    email = (
        await add(api, "email", {"smtp_host": "mail.acme.com", "from_address": "a@acme.com"})
    ).json()
    assert email["config"] == {
        "smtp_host": "mail.acme.com",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "from_address": "a@acme.com",
        "inbound": "webhook",
    }
    fcm = (await add(api, "fcm", {"service_account": SERVICE_ACCOUNT})).json()
    assert fcm["config"]["project_id"] == "acme-push"
    assert fcm["config"]["service_account"] == MASK
    inapp = (await add(api, "inapp", {})).json()
    assert inapp["config"] == {"allowed_origins": ["*"]}


@pytest.mark.parametrize(
    ("type_", "config", "bad_key"),
    [
        ("sms", {"account_sid": "AC123", "auth_token": "t"}, None),  # no sender
        ("sms", {**VALID["sms"], "account_sid": "MG123"}, "account_sid"),
        ("voice", {**VALID["voice"], "from_number": "4155550100"}, "from_number"),
        (  # a call needs a number to call from
            "voice",
            {"account_sid": "AC123", "auth_token": "t", "messaging_service_sid": "MG123"},
            "from_number",
        ),
        ("voice", {**VALID["voice"], "language": "French"}, "language"),
        ("voice", {**VALID["voice"], "gather_digits": 0}, "gather_digits"),
        ("email", {**VALID["email"], "smtp_security": "ssl"}, "smtp_security"),
        ("email", {**VALID["email"], "inbound": "imap"}, "inbound"),
        (
            "email",
            {"smtp_host": "h.acme.com", "from_address": "a@acme.com", "smtp_username": "u"},
            None,
        ),
        ("apns", {**VALID["apns"], "environment": "staging"}, "environment"),
        ("apns", {**VALID["apns"], "private_key": "not a key"}, "private_key"),
        ("fcm", {"service_account": "{not json"}, "service_account"),
        ("fcm", {"service_account": {"client_email": "x@y.z"}}, "service_account"),
        ("telegram", {**VALID["telegram"], "bot_token": "no-colon"}, "bot_token"),
        ("wechat", {**VALID["wechat"], "encoding_aes_key": "short"}, "encoding_aes_key"),
        ("whatsapp", {**VALID["whatsapp"], "api_version": "21"}, "api_version"),
        ("inapp", {"allowed_origins": ["https://acme.com/path"]}, "allowed_origins"),
        ("twitter", {**VALID["twitter"], "api_base_url": "ftp://127.0.0.1"}, "api_base_url"),
        ("wns", {**VALID["wns"], "extra_key": 1}, "extra_key"),
        ("messenger", {"page_id": "1"}, "page_access_token"),
        ("webpush", {**VALID["webpush"], "subject": "push@acme.com"}, "subject"),
        ("webpush", {**VALID["webpush"], "subject": "http://acme.com/push"}, "subject"),
        ("webpush", {**VALID["webpush"], "subject": "mailto:not-an-address"}, "subject"),
        ("webpush", {**VALID["webpush"], "vapid_public_key": "A" * 87}, "vapid_public_key"),
        ("webpush", {**VALID["webpush"], "vapid_private_key": "c2hvcnQ" * 6}, "vapid_private_key"),
        ("webpush", {k: v for k, v in VALID["webpush"].items() if k != "subject"}, "subject"),
    ],
)
async def test_bad_config_is_refused_with_the_key_named(
    api: httpx.AsyncClient, type_: str, config: dict[str, Any], bad_key: str | None
) -> None:
    r = await add(api, type_, config)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_config"
    if bad_key:
        assert any(d["loc"][:2] == ["config", bad_key] for d in error["details"]), error


@pytest.mark.parametrize(
    "body",
    [
        {"type": "pigeon", "name": "x", "config": {}},
        {"type": "sms", "config": VALID["sms"]},
        {"type": "sms", "name": "", "config": VALID["sms"]},
        {"type": "sms", "name": "x", "config": VALID["sms"], "active": True},
    ],
)
async def test_bad_body_is_refused(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await api.post("/v1/channels", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_a_masked_value_is_never_stored_as_a_secret(api: httpx.AsyncClient) -> None:
    r = await add(api, "telegram", {**VALID["telegram"], "bot_token": MASK + "ew11"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "masked_secret"


async def test_patch_merges_keys_and_keeps_secrets_sent_back_masked(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ch = (await add(api, "sms", VALID["sms"])).json()
    url = f"/v1/channels/{ch['id']}"

    # Send the config back exactly as read, with one change: the secret survives.
    shown = (await api.get(url)).json()["config"]
    r = await api.patch(url, json={"config": {**shown, "from_number": "+14155550199"}})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["from_number"] == "+14155550199"
    assert r.json()["config"]["auth_token"] == shown["auth_token"]
    real = await services.channels.config(workspace["workspace_id"], ch["id"])
    assert real.auth_token == VALID["sms"]["auth_token"]

    # Only the keys given change; null removes an optional key.
    r = await api.patch(url, json={"name": "US numbers", "config": {"status_callback_url": None}})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "US numbers"
    assert "status_callback_url" not in r.json()["config"]
    assert r.json()["config"]["account_sid"] == VALID["sms"]["account_sid"]

    # A new secret replaces the old one.
    r = await api.patch(url, json={"config": {"auth_token": "rotated-auth-token-9999"}})
    assert r.json()["config"]["auth_token"] == MASK + "9999"
    real = await services.channels.config(workspace["workspace_id"], ch["id"])
    assert real.auth_token == "rotated-auth-token-9999"


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"config": {"auth_token": MASK + "zzzz"}}, "masked_secret"),  # not what is stored
        ({"config": {"auth_token": None}}, "invalid_config"),  # required
        ({"config": {"from_number": None}}, "invalid_config"),  # then no sender at all
        ({"config": {"smtp_host": "x"}}, "invalid_config"),  # not an sms key
        ({"type": "email"}, "validation_error"),  # the type is fixed
        ({}, "validation_error"),
    ],
)
async def test_bad_patch_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, patch: dict[str, Any], code: str
) -> None:
    ch = (await add(api, "sms", VALID["sms"])).json()
    r = await api.patch(f"/v1/channels/{ch['id']}", json=patch)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert (await api.get(f"/v1/channels/{ch['id']}")).json() == ch


async def test_list_filters_by_type(api: httpx.AsyncClient) -> None:
    await add(api, "sms", VALID["sms"])
    await add(api, "telegram", VALID["telegram"])
    everything = (await api.get("/v1/channels")).json()["data"]
    assert sorted(c["type"] for c in everything) == ["inapp", "sms", "telegram"]
    only_sms = (await api.get("/v1/channels?type=sms")).json()["data"]
    assert [c["type"] for c in only_sms] == ["sms"]
    assert (await api.get("/v1/channels?type=pigeon")).status_code == 422


async def test_delete_an_unused_channel(api: httpx.AsyncClient) -> None:
    ch = (await add(api, "telegram", VALID["telegram"])).json()
    r = await api.delete(f"/v1/channels/{ch['id']}")
    assert r.status_code == 204
    assert (await api.get(f"/v1/channels/{ch['id']}")).status_code == 404
    assert (await api.delete(f"/v1/channels/{ch['id']}")).status_code == 404


async def test_a_channel_with_conversations_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/v1/messages",
        json={
            "channel": "inapp",
            "to": {"address": "u1"},
            "content": {"type": "text", "text": "hi"},
        },
    )
    conversation = (
        await api.get(f"/v1/conversations/{r.json()['messages'][0]['conversation_id']}")
    ).json()
    r = await api.delete(f"/v1/channels/{conversation['channel_id']}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "channel_in_use"
    assert r.json()["error"]["details"] == {"conversations": 1}
    assert (await api.get(f"/v1/channels/{conversation['channel_id']}")).status_code == 200


async def test_agents_read_channels_but_only_admins_change_them(
    app: Any, api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    _, password = await services.agents.create(ws, "agent@acme.com", "Ann", role=AgentRole.AGENT)
    token = (await services.agents.login("agent@acme.com", password, ws))["token"]
    ch = (await add(api, "sms", VALID["sms"])).json()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://parley.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as agent:
        assert (
            (await agent.get(f"/v1/channels/{ch['id']}"))
            .json()["config"]["auth_token"]
            .startswith(MASK)
        )
        assert (await add(agent, "telegram", VALID["telegram"])).status_code == 403
        assert (
            await agent.patch(f"/v1/channels/{ch['id']}", json={"name": "x"})
        ).status_code == 403
        assert (await agent.delete(f"/v1/channels/{ch['id']}")).status_code == 403


async def test_another_workspace_cannot_see_or_touch_a_channel(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    ch = (await add(api, "sms", VALID["sms"])).json()
    url = f"/v1/channels/{ch['id']}"
    assert (await other_api.get(url)).status_code == 404
    assert (await other_api.patch(url, json={"name": "mine now"})).status_code == 404
    assert (await other_api.delete(url)).status_code == 404
    theirs = (await other_api.get("/v1/channels")).json()["data"]
    assert ch["id"] not in {c["id"] for c in theirs}
    assert (await api.get(url)).json() == ch
