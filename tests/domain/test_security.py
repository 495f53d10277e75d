"""chat/security.py on its own: digests, passwords, tokens and signatures, each computed
independently here where the format is a contract (webhook and identity HMACs)."""

from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace

import jwt
import pytest

from bots import signing
from chat import security

SECRET = "whsec_test-secret"
BODY = b'{"type":"message.created","data":{}}'


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """security's clock (and that of bots.signing, where the webhook signature lives, shared
    with HTTP bots), set by the test."""
    clock = SimpleNamespace(value=1_800_000_000.0)
    monkeypatch.setattr(security, "time", SimpleNamespace(time=lambda: clock.value))
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: clock.value))
    return clock


def mac(t: int, body: bytes = BODY, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_an_api_key_is_stored_as_its_sha256() -> None:
    assert security.hash_api_key("pk_abc") == hashlib.sha256(b"pk_abc").hexdigest()
    assert security.hash_api_key("pk_abc") != security.hash_api_key("pk_abd")


def test_passwords_verify_only_against_their_own_hash() -> None:
    stored = security.hash_password("correct horse")
    assert stored != "correct horse" and stored.startswith("$argon2")
    assert security.verify_password(stored, "correct horse") is True
    assert security.verify_password(stored, "correct horsE") is False
    assert security.verify_password("not a hash", "correct horse") is False


def test_a_token_carries_its_claims_kind_and_lifetime(now: SimpleNamespace) -> None:
    token = security.sign_token("k" * 32, {"sub": "ag_1", "kind": "agent"}, ttl_seconds=60)
    raw = jwt.decode(token, "k" * 32, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert raw == {"sub": "ag_1", "kind": "agent", "iat": 1_800_000_000, "exp": 1_800_000_060}


def test_a_token_is_read_only_if_ours_unexpired_and_of_the_kind() -> None:
    token = security.sign_token("k" * 32, {"sub": "ag_1", "kind": "agent"}, ttl_seconds=60)
    claims = security.read_token("k" * 32, token, "agent")
    assert claims is not None and claims["sub"] == "ag_1"
    assert security.read_token("k" * 32, token, "session") is None
    assert security.read_token("x" * 32, token, "agent") is None
    assert security.read_token("k" * 32, "not.a.token", "agent") is None
    expired = security.sign_token("k" * 32, {"kind": "agent"}, ttl_seconds=-10)
    assert security.read_token("k" * 32, expired, "agent") is None
    kindless = security.sign_token("k" * 32, {"sub": "ag_1"}, ttl_seconds=60)
    assert security.read_token("k" * 32, kindless, "agent") is None


def test_the_identity_hmac_is_hex_hmac_sha256_of_the_external_id() -> None:
    expected = hmac.new(b"id-secret", b"user-42", hashlib.sha256).hexdigest()
    assert security.identity_hmac("id-secret", "user-42") == expected


def test_the_webhook_signature_is_the_documented_header(now: SimpleNamespace) -> None:
    assert security.webhook_signature(SECRET, BODY, 1234) == f"t=1234,v1={mac(1234)}"
    assert security.webhook_signature(SECRET, BODY) == f"t=1800000000,v1={mac(1_800_000_000)}"


@pytest.mark.parametrize(
    ("age", "accepted"), [(0, True), (300, True), (301, False), (-300, True), (-301, False)]
)
def test_a_signature_is_accepted_within_five_minutes_either_way(
    now: SimpleNamespace, age: int, accepted: bool
) -> None:
    t = 1_800_000_000 - age
    header = f"t={t},v1={mac(t)}"
    assert security.verify_webhook_signature(SECRET, BODY, header) is accepted


def test_the_tolerance_can_be_chosen(now: SimpleNamespace) -> None:
    t = 1_800_000_000 - 10
    header = f"t={t},v1={mac(t)}"
    assert security.verify_webhook_signature(SECRET, BODY, header, tolerance=10) is True
    assert security.verify_webhook_signature(SECRET, BODY, header, tolerance=9) is False


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=00",
        "t=1800000000",
        "t=1800000000,v1=" + "0" * 64,
        f"t=1800000000,v1={mac(1_800_000_000).upper()}",
        f"t=1800000000,v1={mac(1_800_000_000)},v0=extra",
        f"t=1800000000,v1={mac(1_800_000_000, secret='other')}",
        f"t=1800000000,v1={mac(1_800_000_000, body=BODY + b' ')}",
    ],
)
def test_malformed_or_wrong_signatures_are_refused(now: SimpleNamespace, header: str) -> None:
    assert security.verify_webhook_signature(SECRET, BODY, header) is False


def test_the_right_signature_is_accepted(now: SimpleNamespace) -> None:
    header = f"t=1800000000,v1={mac(1_800_000_000)}"
    assert security.verify_webhook_signature(SECRET, BODY, header) is True
