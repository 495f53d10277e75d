"""Channel addresses in their one stored form, so lookups find the same identity however
the address was written. Each normaliser raises ``ValueError`` with a message fit for
a 422 (``invalid_address``); the channel registry (chat.domain.channels) names which
one each channel type uses.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from chat.domain.emails import normalise_email

_NO_SPACE = re.compile(r"^\S+$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


# Parsing a number costs ~15 µs and sends repeat the same numbers (a batch, a campaign).
@functools.lru_cache(maxsize=65_536)
def normalise_phone(raw: str, region: str | None = None) -> str:
    """E.164 (``+14155550100``); without a leading ``+`` the number needs ``region``."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region else " (start with + and the country code, or give country)"
        raise ValueError(f"not a phone number{hint}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def e164(address: str) -> str:
    """A phone address: E.164 only, since a channel address has no country to read it in."""
    address = address.strip()
    if not address.startswith("+"):
        raise ValueError("a phone address must be in E.164 form, e.g. +14155550100")
    return normalise_phone(address)


def whatsapp_number(address: str) -> str:
    """E.164; also takes Twilio's ``whatsapp:+1...`` and the Cloud API's ``wa_id`` (no ``+``)."""
    address = address.strip().removeprefix("whatsapp:")
    if address.isdigit():
        address = "+" + address
    return e164(address)


def email_address(address: str) -> str:
    return normalise_email(address)


def opaque(address: str) -> str:
    """An id the provider chose (a PSID, a chat id, a device token ...): kept as given."""
    address = address.strip()
    if not _NO_SPACE.match(address):
        raise ValueError("an address must not be empty or contain spaces")
    return address


def _base64url_bytes(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not _BASE64URL.match(value):
        raise ValueError(f"{name} must be URL-safe base64")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} must be URL-safe base64") from exc


def web_push_subscription(address: str) -> str:
    """A browser's ``PushSubscription`` (its JSON: ``endpoint`` and ``keys.p256dh``,
    ``keys.auth``), stored as compact JSON with sorted keys; a send needs all three."""
    try:
        sub = json.loads(address)
    except ValueError as exc:
        raise ValueError("a webpush address is the browser's PushSubscription as JSON") from exc
    if not isinstance(sub, dict) or not isinstance(sub.get("keys"), dict):
        # ValueError, not TypeError: validators turn it into a 422 naming the field.
        raise ValueError("a webpush address needs endpoint and keys {p256dh, auth}")  # noqa: TRY004
    endpoint = sub.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith("https://") or len(endpoint) > 400:
        raise ValueError("the subscription's endpoint must be an https URL (at most 400 chars)")
    try:
        _HTTP_URL.validate_python(endpoint)
    except ValidationError as exc:
        raise ValueError("the subscription's endpoint is not a valid URL") from exc
    keys = sub["keys"]
    p256dh = _base64url_bytes(keys.get("p256dh"), "keys.p256dh")
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise ValueError("keys.p256dh must be an uncompressed P-256 public key (65 bytes)")
    if len(_base64url_bytes(keys.get("auth"), "keys.auth")) != 16:
        raise ValueError("keys.auth must be 16 bytes")
    canonical = {"endpoint": endpoint, "keys": {"auth": keys["auth"], "p256dh": keys["p256dh"]}}
    return json.dumps(canonical, separators=(",", ":"), sort_keys=True)


ProfileField = Literal["phone", "email"]


@dataclass(frozen=True, slots=True)
class AddressRule:
    """How one channel type writes addresses, and which profile field an address fills
    when a contact is first created from it."""

    normalise: Callable[[str], str]
    profile_field: ProfileField | None = None


PHONE = AddressRule(e164, "phone")
WHATSAPP = AddressRule(whatsapp_number, "phone")
EMAIL = AddressRule(email_address, "email")
OPAQUE = AddressRule(opaque)
WEB_PUSH = AddressRule(web_push_subscription)
