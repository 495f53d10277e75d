"""Hashing and signing: API keys, passwords, tokens and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# The webhook signature lives in a leaf that bots (the HTTP bot) share; re-exported here.
from bots.signing import verify_webhook_signature, webhook_signature

__all__ = ["hash_api_key", "hash_password", "identity_hmac", "read_token", "sign_token", "verify_password", "verify_webhook_signature", "webhook_signature"]

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


