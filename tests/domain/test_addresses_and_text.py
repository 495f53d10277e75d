"""The pure rules behind addresses, emails, NUL refusal and status compare-and-set: fast
tests with no database, the ones mutation testing runs (docs/testing.md)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from chat.domain import addresses as a
from chat.domain.emails import normalise_email
from chat.domain.enums import MessageStatus, status_can_move, statuses_before
from chat.domain.text import nul_at

# -- statuses: the compare of every compare-and-set ---------------------------------------


@pytest.mark.parametrize("new", list(MessageStatus))
def test_statuses_before_are_exactly_those_the_rule_lets_move(new: MessageStatus) -> None:
    expected = {s.value for s in MessageStatus if status_can_move(s, new)}
    assert set(statuses_before(new)) == expected
    assert len(statuses_before(new)) == len(expected)  # no repeats


def test_statuses_before_spelled_out() -> None:
    assert statuses_before(MessageStatus.CANCELLED) == ("scheduled",)
    assert statuses_before(MessageStatus.FAILED) == ("scheduled", "queued", "sent")
    assert statuses_before(MessageStatus.READ) == ("scheduled", "queued", "sent", "delivered")
    assert statuses_before(MessageStatus.DELIVERED) == ("scheduled", "queued", "sent")
    assert statuses_before(MessageStatus.SENT) == ("scheduled", "queued")
    assert statuses_before(MessageStatus.QUEUED) == ("scheduled",)
    assert statuses_before(MessageStatus.SCHEDULED) == ()


# -- NUL ----------------------------------------------------------------------------------


def test_nul_at_names_the_path_to_the_first_nul() -> None:
    assert nul_at("a\x00b") == []
    assert nul_at("clean") is None
    assert nul_at({"a": "x", "b": {"c": ["ok", "n\x00"]}}) == ["b", "c", 1]
    assert nul_at({"k\x00": "v"}) == ["k\x00"]
    assert nul_at(["ok", ("fine", "\x00")]) == [1, 1]
    assert nul_at({"a": 1, "b": None, "c": 2.5, "d": True}) is None
    assert nul_at([]) is None and nul_at({}) is None
    assert nul_at({"first": "\x00", "second": "\x00"}) == ["first"]
    assert nul_at({1: "x"}) is None  # a key that is no string cannot hold one


# -- emails -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, stored",
    [
        ("Ann@Acme.COM", "ann@acme.com"),
        ("  ann@acme.com ", "ann@acme.com"),
        ("ann@acme.test", "ann@acme.test"),
        ("Demo@Parley.LOCAL", "demo@parley.local"),
        ("x@example.example", "x@example.example"),
        ("x@host.invalid", "x@host.invalid"),
        ("x@box.localhost", "x@box.localhost"),
        ("first.last+tag@sub.acme.co.uk", "first.last+tag@sub.acme.co.uk"),
    ],
)
def test_emails_are_stored_in_one_form(raw: str, stored: str) -> None:
    assert normalise_email(raw) == stored


@pytest.mark.parametrize(
    "raw", ["ann", "ann@", "@acme.com", "ann@acme", "ann@x.onion", "a b@acme.com", "ann@@acme.com", ""]
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalise_email(raw)


# -- phone numbers ----------------------------------------------------------------------------


def test_phones_are_e164() -> None:
    assert a.normalise_phone("+1 415-555-0100") == "+14155550100"
    assert a.normalise_phone("(415) 555-0100", "US") == "+14155550100"
    assert a.e164(" +44 20 7946 0958 ") == "+442079460958"
    assert a.whatsapp_number("whatsapp:+14155550100") == "+14155550100"
    assert a.whatsapp_number("14155550100") == "+14155550100"


def test_bad_phones_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match=r"^not a phone number \(start with \+ and the country code, or give country\)$"):
        a.normalise_phone("415 555 0100")
    with pytest.raises(ValueError, match="^not a phone number$"):
        a.normalise_phone("nonsense", "US")
    with pytest.raises(ValueError, match="^not a valid phone number$"):
        a.normalise_phone("+1 000 000 0000")
    e164_only = "^a phone address must be in E\\.164 form, e\\.g\\. \\+14155550100$"
    with pytest.raises(ValueError, match=e164_only):
        a.e164("4155550100")
    with pytest.raises(ValueError, match=e164_only):
        a.whatsapp_number("whatsapp:4155x")


def test_opaque_addresses_are_kept_but_not_blank_or_spaced() -> None:
    assert a.opaque("  PSID-123 ") == "PSID-123"
    for bad in ("", "   ", "a b"):
        with pytest.raises(ValueError, match="^an address must not be empty or contain spaces$"):
            a.opaque(bad)


# -- web push subscriptions -------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


P256DH = b64(b"\x04" + b"k" * 64)
AUTH = b64(b"s" * 16)
ENDPOINT = "https://push.example.com/send/abc"


def subscription(**over: object) -> str:
    sub: dict[str, object] = {"endpoint": ENDPOINT, "keys": {"p256dh": P256DH, "auth": AUTH}}
    sub.update(over)
    return json.dumps(sub)


def test_a_subscription_is_stored_as_compact_sorted_json() -> None:
    stored = a.web_push_subscription(
        json.dumps({"keys": {"auth": AUTH, "p256dh": P256DH}, "expirationTime": None, "endpoint": ENDPOINT})
    )
    assert stored == json.dumps(
        {"endpoint": ENDPOINT, "keys": {"auth": AUTH, "p256dh": P256DH}}, separators=(",", ":"), sort_keys=True
    )
    assert a.web_push_subscription(stored) == stored
    padded = b64(b"s" * 16) + "=="
    assert json.loads(a.web_push_subscription(subscription(keys={"p256dh": P256DH, "auth": padded})))["keys"]["auth"] == padded


@pytest.mark.parametrize(
    "address, reason",
    [
        ("not json", "a webpush address is the browser's PushSubscription as JSON"),
        ("[]", "a webpush address needs endpoint and keys {p256dh, auth}"),
        (json.dumps({"endpoint": ENDPOINT}), "a webpush address needs endpoint and keys {p256dh, auth}"),
        (json.dumps({"endpoint": ENDPOINT, "keys": []}), "a webpush address needs endpoint and keys {p256dh, auth}"),
        (subscription(endpoint="http://push.example.com/x"), "the subscription's endpoint must be an https URL (at most 400 chars)"),
        (subscription(endpoint=None), "the subscription's endpoint must be an https URL (at most 400 chars)"),
        (subscription(endpoint="https://" + "a" * 400), "the subscription's endpoint must be an https URL (at most 400 chars)"),
        (subscription(endpoint="https://exa mple.com/x"), "the subscription's endpoint is not a valid URL"),
        (subscription(keys={"p256dh": P256DH}), "keys.auth must be URL-safe base64"),
        (subscription(keys={"auth": AUTH}), "keys.p256dh must be URL-safe base64"),
        (subscription(keys={"p256dh": "not base64!", "auth": AUTH}), "keys.p256dh must be URL-safe base64"),
        (subscription(keys={"p256dh": b64(b"\x04" + b"k" * 63), "auth": AUTH}), "keys.p256dh must be an uncompressed P-256 public key (65 bytes)"),
        (subscription(keys={"p256dh": b64(b"\x03" + b"k" * 64), "auth": AUTH}), "keys.p256dh must be an uncompressed P-256 public key (65 bytes)"),
        (subscription(keys={"p256dh": P256DH, "auth": b64(b"s" * 15)}), "keys.auth must be 16 bytes"),
        (subscription(keys={"p256dh": P256DH, "auth": 16}), "keys.auth must be URL-safe base64"),
    ],
)
def test_a_bad_subscription_is_refused_saying_why(address: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        a.web_push_subscription(address)


def test_an_endpoint_of_400_characters_is_the_longest_taken() -> None:
    longest = "https://push.example.com/" + "a" * (400 - len("https://push.example.com/"))
    assert json.loads(a.web_push_subscription(subscription(endpoint=longest)))["endpoint"] == longest
    with pytest.raises(ValueError, match="at most 400"):
        a.web_push_subscription(subscription(endpoint=longest + "a"))
