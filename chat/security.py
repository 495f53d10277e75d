"""Hashing and signing: API keys, passwords, tokens and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_api_key(key: str) -> str:
    # API keys are long random strings, so a fast digest is enough to make a stolen
    # table useless; slow hashing is for human-chosen passwords.
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_token(secret: str, claims: dict[str, Any], ttl_seconds: int) -> str:
    now = int(time.time())
    return jwt.encode({**claims, "iat": now, "exp": now + ttl_seconds}, secret, algorithm="HS256")


def read_token(secret: str, token: str, kind: str) -> dict[str, Any] | None:
    """The token's claims if it is ours, unexpired and of ``kind``; else None."""
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if claims.get("kind") == kind else None


def identity_hmac(identity_secret: str, external_id: str) -> str:
    return hmac.new(identity_secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def webhook_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``X-Parley-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_webhook_signature(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does; shipped so integrators and tests can reuse it."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = webhook_signature(secret, body, t)
    return hmac.compare_digest(expected, header)
