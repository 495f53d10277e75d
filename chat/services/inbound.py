"""Provider callbacks (``/webhooks/{channel_id}``): verified, parsed, stored.

| step | what happens |
| --- | --- |
| channel | unknown id: 404; a type with no connector: 422 ``channel_not_supported`` |
| ``verify`` | ``WebhookRejected``: 401/403 ``webhook_rejected``, nothing stored |
| ``challenge`` | a verification handshake is answered as the connector says |
| ``parse`` | every ``Inbound`` sender is normalised first (422 ``invalid_address``) |
| messages | contact found or created by its identity, then ``conversations.post_message`` with ``client_message_id = "<channel_id>:<provider_message_id>"``, so a provider's retry finds the first message instead of storing a second |
| news | ``StatusUpdate``, ``Watermark`` and ``Reaction`` values go to the ``NewsHandler`` the composition root gives |
| contact events | each ``ContactEvent`` is recorded (``Events.record``) on the contact of the message it goes with, its payload with ``channel_id`` and ``message_id`` added; its id is derived from the stored message's, so a repeated callback (which finds the first message) records it once, even after a crash between the two writes |

The connector is built for each request from the channel's stored config (unmasked)
and the shared HTTP client; verifying and parsing do no I/O.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.channels import ChannelSpec, Registry
from chat.domain.content import Content
from chat.domain.enums import AuthorType, Direction
from chat.domain.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from chat.domain.ids import new_id
from chat.services.conversations import Conversations, NewMessage, Posted
from chat.services.events import NAME as EVENT_NAME
from chat.services.events import Events
from chat.services.identities import contact_for_address
from connectors.base import (
    AnswersCallbacks,
    Connector,
    ContactEvent,
    Inbound,
    Reaction,
    StatusUpdate,
    Watermark,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)

News = StatusUpdate | Watermark | Reaction

_CONTENT: TypeAdapter[Any] = TypeAdapter(Content)
_MAX_CLIENT_MESSAGE_ID = 200  # the column's width


log = logging.getLogger(__name__)

# A callback the connector cannot read is kept, as an event, with this much of its body.
UNPARSED_EVENT = "webhook.unparsed"
UNPARSED_KEPT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProviderChannel:
    """The channel a callback came in on."""

    id: str
    workspace_id: str
    type: str


class NewsHandler(Protocol):
    async def __call__(self, channel: ProviderChannel, news: Sequence[News]) -> None:
        """Apply the provider's status updates, watermarks and reactions (in order);
        raise a ``ParleyError`` to answer the provider with an error (it retries)."""
        ...


@dataclass(frozen=True, slots=True)
class Received:
    """What one callback did: the answer for the provider, the messages stored."""

    answer: WebhookAnswer
    posted: list[Posted]
    news: int = 0


def provider_key(channel_id: str, provider_message_id: str) -> str:
    """The ``client_message_id`` of an inbound message: one per channel and provider id
    (hashed when the provider's id is too long for the column)."""
    key = f"{channel_id}:{provider_message_id}"
    if len(key) <= _MAX_CLIENT_MESSAGE_ID:
        return key
    return f"{channel_id}:sha256:{hashlib.sha256(provider_message_id.encode()).hexdigest()}"


class InboundWebhooks:
    def __init__(
        self,
        db: Database,
        conversations: Conversations,
        registry: Registry,
        news: NewsHandler,
        http: httpx.AsyncClient | None = None,
        *,
        events: Events,
    ) -> None:
        self.db = db
        self.conversations = conversations
        self.registry = registry
        self.news = news
        self.events = events
        self.http = http  # the app's shared client; None (CLI, benchmarks) makes one per call

    async def receive(self, channel_id: str, request: WebhookRequest) -> Received:
        channel, config = await self._channel(channel_id)
        spec = self.registry.spec(channel.type)
        if spec.connector is None:
            raise Unprocessable(
                f"'{channel.type}' channels do not take provider callbacks yet: "
                "no connector serves this type",
                code="channel_not_supported",
            )
        if self.http is not None:
            return await self._receive(channel, spec, spec.connector(config, self.http), request)
        async with httpx.AsyncClient() as http:
            return await self._receive(channel, spec, spec.connector(config, http), request)

    async def _receive(
        self,
        channel: ProviderChannel,
        spec: ChannelSpec,
        connector: Connector,
        request: WebhookRequest,
    ) -> Received:
        try:
            connector.verify(request)
        except WebhookRejected as exc:
            refused = Forbidden if exc.status == 403 else Unauthorized
            raise refused(str(exc), code="webhook_rejected") from exc
        answer = connector.challenge(request)
        if answer is not None:
            return Received(answer, [])
        try:
            parsed = connector.parse(request)
        except Exception as exc:  # noqa: BLE001 - the provider would retry it forever
            await self._keep_unparsed(channel, request, exc)
            return Received(WebhookAnswer(), [])
        messages = [p for p in parsed if isinstance(p, Inbound)]
        news = [p for p in parsed if isinstance(p, News)]  # the one list of what news is
        contact_events = _contact_events(channel, parsed, messages)
        # Check every message before storing any, so a refused callback stores nothing.
        prepared = [(msg, _address(spec, msg), _content(msg)) for msg in messages]
        posted = []
        stored: dict[str, tuple[str, Posted]] = {}  # provider id -> (contact id, message)
        for msg, address, content in prepared:
            contact_id = await self._contact(channel, address, msg.profile)
            posted.append(
                await self.conversations.post_message(
                    NewMessage(
                        workspace_id=channel.workspace_id,
                        content=content,
                        direction=Direction.INBOUND,
                        author_type=AuthorType.CONTACT.value,
                        author_id=contact_id,
                        contact_id=contact_id,
                        channel_id=channel.id,
                        client_message_id=provider_key(channel.id, msg.provider_message_id),
                    )
                )
            )
            stored[msg.provider_message_id] = (contact_id, posted[-1])
        await self._record_events(channel, contact_events, stored)
        if news:
            await self.news(channel, news)
        answer = connector.callback_answer(request) if isinstance(connector, AnswersCallbacks) else None
        return Received(answer or WebhookAnswer(), posted, len(news))

    async def _record_events(
        self,
        channel: ProviderChannel,
        events: Sequence[ContactEvent],
        stored: Mapping[str, tuple[str, Posted]],
    ) -> None:
        count: dict[str, int] = {}
        for event in events:
            contact_id, first = stored[event.provider_message_id]
            message_id = str(first.message["id"])
            n = count[message_id] = count.get(message_id, -1) + 1
            suffix = message_id.partition("_")[2]
            await self.events.record(
                channel.workspace_id,
                event.name,
                contact_id,
                {"channel_id": channel.id, "message_id": message_id, **event.payload},
                event_id=f"ev_{suffix}" if n == 0 else f"ev_{suffix}_{n}",
            )

    async def _keep_unparsed(
        self, channel: ProviderChannel, request: WebhookRequest, exc: Exception
    ) -> None:
        """A verified callback the connector cannot read: answered 200 (the provider would
        retry it forever) and kept as a ``webhook.unparsed`` event for inspection."""
        log.warning(
            "channel %s (%s): a callback could not be parsed: %s: %s",
            channel.id, channel.type, type(exc).__name__, str(exc)[:200],
        )
        body = request.body[:UNPARSED_KEPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")
        async with self.db.write() as session:
            session.add(
                m.Event(
                    id=new_id("evt"),
                    workspace_id=channel.workspace_id,
                    name=UNPARSED_EVENT,
                    payload={
                        "channel_id": channel.id,
                        "channel_type": channel.type,
                        "error": f"{type(exc).__name__}: {str(exc)[:500]}",
                        "content_type": request.headers.get("content-type"),
                        "body": body,
                        "truncated": len(request.body) > UNPARSED_KEPT_BYTES,
                    },
                )
            )

    async def _channel(self, channel_id: str) -> tuple[ProviderChannel, dict[str, Any]]:
        async with self.db.read() as session:
            row = await session.get(m.Channel, channel_id)
            if row is None:
                raise NotFound("channel not found")
            return ProviderChannel(row.id, row.workspace_id, row.type), dict(row.config or {})

    async def _contact(
        self, channel: ProviderChannel, address: str, profile: Mapping[str, Any]
    ) -> str:
        name = profile.get("name")
        for attempt in (1, 2):  # a concurrent first message from the same sender may win
            try:
                async with self.db.write() as session:
                    contact = await contact_for_address(
                        session,
                        channel.workspace_id,
                        channel.type,
                        address,
                        name=name[:200] if isinstance(name, str) and name else None,
                    )
                    return contact.id
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _contact_events(
    channel: ProviderChannel, parsed: Sequence[object], messages: Sequence[Inbound]
) -> list[ContactEvent]:
    """The callback's contact events, each going with one of its messages."""
    ids = {msg.provider_message_id for msg in messages}
    found = []
    for event in parsed:
        if not isinstance(event, ContactEvent):
            continue
        if event.provider_message_id not in ids or not EVENT_NAME.match(event.name):
            log.warning(
                "channel %s (%s): dropped the contact event %r: no message %r in the callback "
                "or not an event name",
                channel.id, channel.type, event.name, event.provider_message_id,
            )
            continue
        found.append(event)
    return found


def _address(spec: ChannelSpec, msg: Inbound) -> str:
    try:
        return spec.normalise(msg.sender)
    except ValueError as exc:
        raise Unprocessable(
            f"the sender of {msg.provider_message_id!r} is not a {spec.type} address: {exc}",
            code="invalid_address",
        ) from exc


def _content(msg: Inbound) -> dict[str, Any]:
    try:
        content = _CONTENT.validate_python(dict(msg.content))
    except ValidationError as exc:
        raise Unprocessable(
            f"the content of {msg.provider_message_id!r} is not Parley content",
            code="invalid_content",
            details=[
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ],
        ) from exc
    dumped: dict[str, Any] = content.model_dump(mode="json", exclude_none=True)
    return dumped
