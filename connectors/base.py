"""The seam between Parley and a provider: what a connector is given and gives back.

A connector is a leaf. It receives its channel's validated ``config`` and a shared
``httpx.AsyncClient``, and deals only in the typed values below: it never touches the
database, never imports ``chat``, and reports failures with ``connectors.errors``
(``RetryLater`` or ``GiveUp``, carrying the provider's own code and message).

Outbound: ``send(Outbound) -> SendResult``.
Inbound: the web edge hands every request to ``/webhooks/{channel_id}`` over as a
``WebhookRequest``; ``verify`` raises ``WebhookRejected`` on a bad signature (nothing is
stored), ``challenge`` answers a provider's verification handshake, and ``parse`` turns
the body into normalised ``Inbound`` messages, ``StatusUpdate`` values, ``Watermark``s,
``Reaction``s and ``ContactEvent``s (something the customer did that is not a message, e.g.
keys pressed in a call: recorded as an event on the contact, which flows react to).

Access tokens: a connector whose provider hands out short-lived tokens (WeChat; FCM and
WNS OAuth) implements ``KeepsTokens``; whoever builds it (the delivery listener) hands it
the app's ``TokenCache``, so the token outlives the connector, which is built per send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import httpx


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to hand to the provider."""

    message_id: str  # Parley's id; connectors whose provider takes an idempotency key use it
    to: str  # the recipient address on this channel (E.164, PSID, chat id, token ...)
    content: Mapping[str, Any]  # Parley's content: {"type": "text"|"media"|"buttons"|..., ...}
    # The provider's id of the customer's latest inbound message, for reply threading.
    reply_to: str | None = None
    # Extra, per-type hints (e.g. a Messenger message tag); never secrets.
    options: Mapping[str, Any] = field(default_factory=dict)
    # The contact's locale as its profile has it (``fr-CA``, ``de``), if known: the
    # language a spoken or templated message should use.
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str
    # Some providers confirm more than acceptance in the send answer.
    status: Literal["sent", "delivered"] = "sent"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A provider's HTTP request, as the web edge received it (headers lower-cased)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What to answer the provider (a verification challenge, or a reply in the response)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message a customer sent, normalised."""

    provider_message_id: str  # unique per channel: repeats of a webhook are dropped on it
    sender: str  # the customer's address on this channel
    content: Mapping[str, Any]  # Parley's content shape
    sent_at: datetime | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"name": ...}
    reply_to: str | None = None  # provider id of the message it answers, if any


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """The provider's news about a message Parley sent."""

    provider_message_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    error_code: str | None = None
    error_message: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Watermark:
    """The provider's news about every message Parley sent to ``sender`` up to a time.

    Messenger's ``read`` and ``delivery`` events name no message, only a ``watermark``:
    everything sent to that customer at or before ``up_to`` (the provider's clock) is
    read, or delivered. Parley moves each such message of the sender's conversation on
    the channel forward, as it would for a ``StatusUpdate`` naming it."""

    sender: str  # the customer's address on this channel
    status: Literal["delivered", "read"]
    up_to: datetime  # timezone-aware


@dataclass(frozen=True, slots=True)
class Reaction:
    provider_message_id: str  # the message reacted to
    sender: str
    emoji: str | None  # None removes the reaction


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """Something the sender of an ``Inbound`` in the same callback did, recorded as a
    trigger event on their contact (``{"name", "contact_id", "payload"}``).

    It goes with that message: recorded when the message is stored, and once however
    often the provider repeats the callback."""

    provider_message_id: str  # the Inbound it goes with (same callback)
    name: str  # dotted lower-case words: ``voice.digits``
    payload: Mapping[str, Any] = field(default_factory=dict)


Parsed = Inbound | StatusUpdate | Watermark | Reaction | ContactEvent


class WebhookRejected(Exception):
    """A request that did not come from the provider (401) or is not allowed (403)."""

    def __init__(self, message: str, status: Literal[401, 403] = 401) -> None:
        super().__init__(message)
        self.status = status


@runtime_checkable
class AnswersCallbacks(Protocol):
    """A connector whose provider wants a body in the answer to a callback (TwiML for
    Twilio, a Bot API call for Telegram), given once the callback is stored."""

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        """The 200 answer to a verified, stored callback; None for an empty 200."""
        ...


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token as the provider issued it."""

    value: str
    expires_in: float  # seconds it is valid for, counted from when it was fetched


class TokenCache(Protocol):
    """Provider access tokens shared by every connector instance of a process (one
    implementation: ``connectors.tokens.MemoryTokenCache``, owned by the app's lifespan).

    ``key`` names the credentials (``"wechat:<app_id>"``), never holds a secret."""

    async def get(
        self,
        key: str,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        refused: str | None = None,
    ) -> str:
        """The cached token for ``key`` while it is fresh, else the one ``fetch`` returns.
        One ``fetch`` at a time per key: callers that arrive meanwhile get its token.
        ``refused`` is a token the provider turned down: it is fetched anew, unless
        another caller has already replaced it."""
        ...


@runtime_checkable
class KeepsTokens(Protocol):
    """A connector that wants the shared ``TokenCache`` (given right after it is built)."""

    def use_tokens(self, tokens: TokenCache) -> None: ...


class Connector(Protocol):
    """One provider. ``type`` is the channel registry's key (``sms``, ``whatsapp`` ...)."""

    type: ClassVar[str]

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None: ...

    async def send(self, message: Outbound) -> SendResult:
        """Hand one message over; raise ``RetryLater`` or ``GiveUp`` when it fails."""
        ...

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``WebhookRejected`` unless the request is the provider's, signed."""
        ...

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        """The answer to a verification handshake, or None if this is not one."""
        ...

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        """The messages, statuses and reactions in a verified request."""
        ...
