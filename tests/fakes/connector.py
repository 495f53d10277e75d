"""A test-only connector: a provider that signs its callbacks like most real ones do.

POST callbacks carry ``X-Test-Signature: <hex HMAC-SHA256(secret, raw body)>``, where
the secret is one key of the channel's config (``secret_key``). A GET with
``?challenge=<value>&token=<secret>`` is a verification handshake, answered with the
value. The body is ``{"messages": [{"id", "from", "text", "name"?}], "statuses":
[{"id", "status"}]}``. It never sends: outbound delivery is not what these tests prove.

Subclasses bind it to a channel type; tests put them in a registry with
``REGISTRY.with_connector(...)`` and pass that registry to ``create_app``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from connectors.base import (
    Inbound,
    Outbound,
    Parsed,
    SendResult,
    StatusUpdate,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SignedTestConnector:
    type: ClassVar[str]
    secret_key: ClassVar[str]

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.secret = str(config[self.secret_key])
        self.http = http

    async def send(self, message: Outbound) -> SendResult:
        raise GiveUp("the test connector does not send", code="test_connector")

    def verify(self, request: WebhookRequest) -> None:
        if request.method == "GET":
            given = request.query.get("token", "")
        else:
            given = request.headers.get("x-test-signature", "")
            if given:
                expected = sign(self.secret, request.body)
                if hmac.compare_digest(given, expected):
                    return
                raise WebhookRejected("bad signature")
        if not given:
            raise WebhookRejected("unsigned")
        if not hmac.compare_digest(given, self.secret):
            raise WebhookRejected("wrong verify token", status=403)

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        if request.method == "GET" and "challenge" in request.query:
            return WebhookAnswer(body=request.query["challenge"].encode())
        return None

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        data = json.loads(request.body)
        found: list[Parsed] = [
            Inbound(
                provider_message_id=m["id"],
                sender=m["from"],
                content={"type": "text", "text": m["text"]},
                profile={"name": m["name"]} if "name" in m else {},
            )
            for m in data.get("messages", [])
        ]
        found += [StatusUpdate(s["id"], s["status"]) for s in data.get("statuses", [])]
        return found


class FakeWhatsApp(SignedTestConnector):
    type = "whatsapp"
    secret_key = "app_secret"


class FakeVoice(SignedTestConnector):
    type = "voice"
    secret_key = "auth_token"
