"""WeChat's signatures and its "safe mode" message encryption.

Signatures: the SHA-1 hex digest of the strings sorted lexicographically and joined:
``signature = sha1(sorted([token, timestamp, nonce]))`` on every callback, and in safe
mode ``msg_signature = sha1(sorted([token, timestamp, nonce, Encrypt]))``.

Safe mode (``encrypt_type=aes``): the body's ``<Encrypt>`` is base64 of AES-256-CBC with
key ``base64decode(EncodingAESKey + "=")`` (43 characters -> 32 bytes) and IV = the key's
first 16 bytes, PKCS#7-padded to a 32-byte block, over
``random(16) + len(xml) (4 bytes, big-endian) + xml + appid``. The appid at the end
must be the channel's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16


class DecryptError(ValueError):
    """An ``Encrypt`` value that is not ours: bad base64, padding, length or appid."""


def signature(*parts: str) -> str:
    """WeChat's signature of ``parts``: SHA-1 hex of the sorted, joined strings."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(given: str, *parts: str) -> bool:
    """Whether ``given`` is the signature of ``parts``, compared in constant time."""
    return hmac.compare_digest(given.lower().encode(), signature(*parts).encode())


class MessageCrypto:
    """Encrypts and decrypts safe-mode messages of one official account."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("encoding_aes_key is not base64") from exc
        if len(key) != 32:
            raise ValueError("encoding_aes_key must be the 43 characters WeChat shows")
        self.key = key
        self.app_id = app_id

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        """The XML inside ``encrypted``; ``DecryptError`` unless it is this account's."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error as exc:
            raise DecryptError("Encrypt is not base64") from exc
        if not data or len(data) % 16:
            raise DecryptError("Encrypt is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad padding (wrong encoding_aes_key?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise DecryptError("too short")
        (length,) = struct.unpack(">I", plain[16:20])
        xml, app_id = plain[20 : 20 + length], plain[20 + length :]
        if len(xml) != length:
            raise DecryptError("the message length does not fit")
        if not hmac.compare_digest(app_id, self.app_id.encode()):
            raise DecryptError("the message is for another appid")
        return xml

    def encrypt(self, xml: bytes, random: bytes | None = None) -> str:
        """``xml`` as an ``Encrypt`` value (for replies, and for tests and fakes)."""
        prefix = random if random is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        plain = prefix + struct.pack(">I", len(xml)) + xml + self.app_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
