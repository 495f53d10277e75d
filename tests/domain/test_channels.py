"""The channel registry: every contract type has one entry, and each entry's rules."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from chat.domain import channel_config as cc
from chat.domain.channels import INAPP, REGISTRY, Registry, UnknownChannelType
from tests.fakes.connector import FakeVoice, FakeWhatsApp

# ../shared/CONTRACT.md, "Words": the channel types, as the contract spells them.
CONTRACT_TYPES = [
    "inapp", "sms", "voice", "whatsapp", "messenger", "telegram", "wechat", "twitter", "email",
    "apns", "fcm", "wns", "webpush",
]

WEBPUSH_CONFIG = {
    "vapid_public_key": (
        "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U"
    ),
    "vapid_private_key": "UUxI4O8-FbRouAevSmBQ6o18hgE4nSG3qwvJTfKc-ls",
    "subject": "https://acme.com/contact",
}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SUBSCRIPTION = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHqjZxM0VImWWqDRN",
    "expirationTime": None,
    "keys": {"p256dh": b64url(b"\x04" + bytes(range(64))), "auth": b64url(bytes(range(16)))},
}


def test_every_contract_type_has_exactly_one_entry() -> None:
    assert list(REGISTRY.types) == CONTRACT_TYPES
    for type_ in CONTRACT_TYPES:
        spec = REGISTRY.spec(type_)
        assert spec.type == type_
        assert issubclass(spec.config, cc.ChannelConfig)
        assert spec.capabilities.text


def test_a_type_cannot_have_two_entries() -> None:
    with pytest.raises(ValueError, match="two entries for channel type 'sms'"):
        Registry([REGISTRY.spec("sms"), REGISTRY.spec("sms")])


def test_an_unknown_type_is_named_in_the_error() -> None:
    with pytest.raises(UnknownChannelType, match="'pigeon'; one of inapp, sms"):
        REGISTRY.spec("pigeon")
    assert "pigeon" not in REGISTRY
    assert "sms" in REGISTRY


def test_a_type_is_sendable_when_it_reaches_the_socket_or_has_a_connector() -> None:
    assert REGISTRY.socket_types == {INAPP}
    assert REGISTRY.sendable == {s.type for s in REGISTRY if s.socket or s.connector}
    assert INAPP in REGISTRY.sendable
    assert REGISTRY.push_types == {"apns", "fcm", "wns", "webpush"}


def test_provider_callbacks_are_offered_where_the_provider_calls_back() -> None:
    calling_back = {s.type for s in REGISTRY if s.receives_webhooks}
    assert calling_back == {
        "sms", "voice", "whatsapp", "messenger", "telegram", "wechat", "twitter", "email",
    }


def test_capabilities_carry_each_providers_rules() -> None:
    whatsapp = REGISTRY.spec("whatsapp").capabilities
    assert (whatsapp.templates, whatsapp.buttons, whatsapp.window_hours) == (True, True, 24)
    assert REGISTRY.spec("messenger").capabilities.window_hours == 24
    assert REGISTRY.spec("wechat").capabilities.window_hours == 48
    assert REGISTRY.spec("sms").capabilities.max_text_length == 1600
    assert REGISTRY.spec("sms").capabilities.buttons is False
    assert REGISTRY.spec(INAPP).capabilities.window_hours is None


def test_a_registry_with_a_connector_is_a_new_registry() -> None:
    registry = REGISTRY.with_connector(FakeWhatsApp).with_connector(FakeVoice)
    assert registry.spec("whatsapp").connector is FakeWhatsApp
    assert registry.spec("voice").sendable
    assert registry.sendable == REGISTRY.sendable | {"whatsapp", "voice"}
    assert registry.types == REGISTRY.types
    # the production table is untouched
    assert REGISTRY.spec("voice").connector is not FakeVoice


def test_a_connector_for_a_type_the_registry_lacks_is_refused() -> None:
    class Pigeon(FakeWhatsApp):
        type = "pigeon"

    with pytest.raises(UnknownChannelType):
        REGISTRY.with_connector(Pigeon)
    with pytest.raises(UnknownChannelType):
        Registry([REGISTRY.spec("sms")]).with_connector(FakeWhatsApp)


@pytest.mark.parametrize(
    ("type_", "written", "stored"),
    [
        ("sms", "+1 (415) 555-0100", "+14155550100"),
        ("voice", "+44 20 7946 0958", "+442079460958"),
        ("whatsapp", "+1 415 555 0100", "+14155550100"),
        ("whatsapp", "14155550100", "+14155550100"),  # the Cloud API's wa_id
        ("whatsapp", "whatsapp:+14155550100", "+14155550100"),  # Twilio's form
        ("email", " Ann@Example.COM ", "ann@example.com"),
        ("messenger", " 1254459154682919 ", "1254459154682919"),
        ("telegram", "123456789", "123456789"),
        ("apns", "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad", None),
        (INAPP, "user-42", "user-42"),
    ],
)
def test_addresses_are_stored_in_one_form(type_: str, written: str, stored: str | None) -> None:
    assert REGISTRY.spec(type_).normalise(written) == (stored or written)


@pytest.mark.parametrize(
    ("type_", "written"),
    [
        ("sms", "4155550100"),  # no country: not E.164
        ("voice", "0612345678"),
        ("whatsapp", "+1415"),
        ("email", "ann@"),
        ("telegram", "two words"),
        ("fcm", " "),
        ("webpush", "https://push.example/123"),  # an endpoint alone cannot be sent to
    ],
)
def test_addresses_that_do_not_fit_the_type_are_refused(type_: str, written: str) -> None:
    with pytest.raises(ValueError):
        REGISTRY.spec(type_).normalise(written)


def test_phone_types_fill_the_phone_and_email_fills_the_email() -> None:
    fields = {s.type: s.address.profile_field for s in REGISTRY}
    assert {t for t, f in fields.items() if f == "phone"} == {"sms", "voice", "whatsapp"}
    assert {t for t, f in fields.items() if f == "email"} == {"email"}


def test_a_web_push_subscription_is_stored_as_compact_json() -> None:
    spec = REGISTRY.spec("webpush")
    stored = spec.normalise(json.dumps(SUBSCRIPTION, indent=2))
    assert stored == json.dumps(
        {"endpoint": SUBSCRIPTION["endpoint"], "keys": SUBSCRIPTION["keys"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    assert spec.normalise(stored) == stored


@pytest.mark.parametrize(
    "broken",
    [
        {**SUBSCRIPTION, "endpoint": "http://push.example/1"},
        {**SUBSCRIPTION, "keys": {"auth": SUBSCRIPTION["keys"]["auth"]}},
        {**SUBSCRIPTION, "keys": {**SUBSCRIPTION["keys"], "p256dh": b64url(b"\x02" + bytes(32))}},
        {**SUBSCRIPTION, "keys": {**SUBSCRIPTION["keys"], "auth": "not base64!"}},
        [SUBSCRIPTION],
    ],
)
def test_a_broken_web_push_subscription_is_refused(broken: object) -> None:
    with pytest.raises(ValueError):
        REGISTRY.spec("webpush").normalise(json.dumps(broken))


def test_the_web_push_config_validates_and_masks_its_private_key() -> None:
    model = REGISTRY.spec("webpush").config
    config = cc.to_stored(cc.parse(model, WEBPUSH_CONFIG))
    assert config == WEBPUSH_CONFIG
    shown = cc.masked(model, config)
    assert shown["vapid_private_key"] == cc.MASK + WEBPUSH_CONFIG["vapid_private_key"][-4:]
    assert shown["vapid_public_key"] == WEBPUSH_CONFIG["vapid_public_key"]
    assert shown["subject"] == WEBPUSH_CONFIG["subject"]
    # a masked value sent back keeps the secret
    assert cc.merged(model, config, shown) == config
    with pytest.raises(ValidationError, match="subject"):
        cc.parse(model, {**WEBPUSH_CONFIG, "subject": "ftp://acme.com"})
