"""The channel registry: one entry per channel type, the only place a type is spelled out.

| field | what |
| --- | --- |
| ``type`` | the contract's name (``sms``, ``whatsapp`` ...) |
| ``config`` | the pydantic model of a channel's ``config`` (chat.domain.channel_config) |
| ``address`` | how addresses are normalised (``spec.normalise``) and which profile field a new contact's address fills (E.164 ``phone`` for sms, voice and whatsapp) |
| ``capabilities`` | what the channel can carry (text, media, buttons, templates, read receipts, reactions, max text length) and the send-time rules it is under (a customer-service window and the message tags that pass it, a country allow-list, SMS segments) |
| ``socket`` | customers are reached through the socket fan-out (``inapp``) |
| ``push`` | addresses are device tokens or browser subscriptions an app registers (``register_push``) |
| ``connector`` | the class in ``connectors/`` that talks to the provider; None until one exists |

A type is ``sendable`` when it is socket-delivered or has a connector.

``REGISTRY`` is the production table; it is immutable. The composition root passes a
registry to the services (``create_app(registry=...)``), and tests build their own with
``REGISTRY.with_connector(TestConnector)``. Facts that do not depend on the connector
(types, config models, addresses, capabilities) may be read from ``REGISTRY`` anywhere;
what depends on it (``connector``, ``sendable``) must come from the injected registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import AfterValidator, WithJsonSchema

from chat.domain import addresses as a
from chat.domain import channel_config as cc
from connectors.messenger import MessengerConnector
from connectors.telegram import TelegramConnector
from connectors.twilio_sms import TwilioSms
from connectors.twilio_voice import TwilioVoice
from connectors.wechat import WeChatConnector
from connectors.whatsapp import WhatsAppCloud
from connectors.x_dm import XDirectMessages

if TYPE_CHECKING:
    from connectors.base import Connector


@dataclass(frozen=True, slots=True)
class Capabilities:
    text: bool = True
    media: bool = False
    buttons: bool = False
    templates: bool = False
    read_receipts: bool = False
    reactions: bool = False
    # Hours after the customer's last message in which a free-form reply may go out
    # (outside it, only a template); None when the channel has no such rule.
    window_hours: int | None = None
    # Messenger's message tags: a tag lets a free-form message out after the window,
    # for as many hours after the customer's last message (None: with no limit).
    message_tags: Mapping[str, int | None] = field(default_factory=lambda: MappingProxyType({}))
    max_text_length: int | None = None
    # Sends go only to the countries of the workspace's allow-list (chat.domain.countries).
    country_restricted: bool = False
    # Texts are billed in SMS parts: the write path stores each message's segment count.
    sms_segments: bool = False


ConfigModel = type[cc.ChannelConfig]
ConnectorClass = type["Connector"]


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    type: str
    config: ConfigModel
    address: a.AddressRule
    capabilities: Capabilities
    socket: bool = False
    push: bool = False
    connector: ConnectorClass | None = None

    def normalise(self, address: str) -> str:
        """The stored form of ``address``; raises ``ValueError`` with a readable reason."""
        return self.address.normalise(address)

    @property
    def sendable(self) -> bool:
        return self.socket or self.connector is not None

    @property
    def receives_webhooks(self) -> bool:
        """Whether the provider calls back into ``/webhooks/{channel_id}``."""
        return self.config.receives_webhooks


class UnknownChannelType(ValueError):
    def __init__(self, channel_type: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown channel type {channel_type!r}; one of {', '.join(known)}")
        self.channel_type = channel_type


class Registry:
    """Channel types by name. Immutable: ``with_connector`` returns a new registry."""

    def __init__(self, specs: Iterable[ChannelSpec]) -> None:
        table: dict[str, ChannelSpec] = {}
        for spec in specs:
            if spec.type in table:
                raise ValueError(f"two entries for channel type {spec.type!r}")
            table[spec.type] = spec
        self._specs: Mapping[str, ChannelSpec] = MappingProxyType(table)
        self.types: tuple[str, ...] = tuple(table)
        self.sendable: frozenset[str] = frozenset(t for t, s in table.items() if s.sendable)
        self.socket_types: frozenset[str] = frozenset(t for t, s in table.items() if s.socket)
        self.push_types: frozenset[str] = frozenset(t for t, s in table.items() if s.push)

    def spec(self, channel_type: str) -> ChannelSpec:
        try:
            return self._specs[channel_type]
        except KeyError:
            raise UnknownChannelType(channel_type, self.types) from None

    def __contains__(self, channel_type: object) -> bool:
        return channel_type in self._specs

    def __iter__(self) -> Iterator[ChannelSpec]:
        return iter(self._specs.values())

    def with_connector(self, connector: ConnectorClass) -> Registry:
        """This registry with ``connector`` serving its ``type``."""
        current = self.spec(connector.type)
        replaced = dataclasses.replace(current, connector=connector)
        return Registry(replaced if s.type == current.type else s for s in self)


INAPP: Final = "inapp"

REGISTRY: Final = Registry(
    [
        ChannelSpec(
            INAPP,
            cc.InAppConfig,
            a.OPAQUE,
            Capabilities(media=True, buttons=True, read_receipts=True, max_text_length=10_000),
            socket=True,
        ),
        # Twilio joins up to ten segments: 1,600 characters.
        ChannelSpec(
            "sms",
            cc.SmsConfig,
            a.PHONE,
            Capabilities(
                media=True, max_text_length=1600, country_restricted=True, sms_segments=True
            ),
            connector=TwilioSms,
        ),
        # The text is spoken in a call; buttons become "press 1 for ...". The TwiML
        # Twilio takes inline is at most 4,000 characters, markup included.
        ChannelSpec(
            "voice",
            cc.VoiceConfig,
            a.PHONE,
            Capabilities(max_text_length=3500, country_restricted=True),
            connector=TwilioVoice,
        ),
        ChannelSpec(
            "whatsapp",
            cc.WhatsAppConfig,
            a.WHATSAPP,
            Capabilities(
                media=True,
                buttons=True,
                templates=True,
                read_receipts=True,
                reactions=True,
                window_hours=24,
                max_text_length=4096,
            ),
            connector=WhatsAppCloud,
        ),
        ChannelSpec(
            "messenger",
            cc.MessengerConfig,
            a.OPAQUE,
            Capabilities(
                media=True,
                buttons=True,
                read_receipts=True,
                reactions=True,
                window_hours=24,
                message_tags=MappingProxyType(
                    {
                        # An agent's answer, up to 7 days after the customer wrote.
                        "HUMAN_AGENT": 7 * 24,
                        # Non-promotional updates the customer asked for: any time.
                        "CONFIRMED_EVENT_UPDATE": None,
                        "POST_PURCHASE_UPDATE": None,
                        "ACCOUNT_UPDATE": None,
                    }
                ),
                max_text_length=2000,
            ),
            connector=MessengerConnector,
        ),
        ChannelSpec(
            "telegram",
            cc.TelegramConfig,
            a.OPAQUE,
            Capabilities(media=True, buttons=True, reactions=True, max_text_length=4096),
            connector=TelegramConnector,
        ),
        ChannelSpec(
            "wechat",
            cc.WeChatConfig,
            a.OPAQUE,
            Capabilities(
                media=True, buttons=True, templates=True, window_hours=48, max_text_length=2048
            ),
            connector=WeChatConnector,
        ),
        # X's direct messages; the public type keeps the contract's name.
        ChannelSpec(
            "twitter",
            cc.TwitterConfig,
            a.OPAQUE,
            Capabilities(
                media=True, buttons=True, read_receipts=True, reactions=True, max_text_length=10_000
            ),
            connector=XDirectMessages,
        ),
        ChannelSpec("email", cc.EmailConfig, a.EMAIL, Capabilities(media=True)),
        # Push notifications: a short text on a device; the payload is about 4 KB.
        ChannelSpec("apns", cc.ApnsConfig, a.OPAQUE, Capabilities(max_text_length=2000), push=True),
        ChannelSpec("fcm", cc.FcmConfig, a.OPAQUE, Capabilities(max_text_length=2000), push=True),
        ChannelSpec("wns", cc.WnsConfig, a.OPAQUE, Capabilities(max_text_length=2000), push=True),
        ChannelSpec(
            "webpush", cc.WebPushConfig, a.WEB_PUSH, Capabilities(max_text_length=2000), push=True
        ),
    ]
)

TYPES: Final = REGISTRY.types
MESSAGE_TAGS: Final = tuple(sorted({tag for s in REGISTRY for tag in s.capabilities.message_tags}))
SOCKET_TYPES: Final = REGISTRY.socket_types


def _known(channel_type: str) -> str:
    REGISTRY.spec(channel_type)
    return channel_type


def _known_tag(tag: str) -> str:
    if tag not in MESSAGE_TAGS:
        raise ValueError(f"unknown message tag {tag!r}; one of {', '.join(MESSAGE_TAGS)}")
    return tag


# A request field naming a message tag: one some channel type takes (whether the
# message's channel takes it is the write path's rule).
MessageTagName = Annotated[
    str, AfterValidator(_known_tag), WithJsonSchema({"type": "string", "enum": list(MESSAGE_TAGS)})
]


# A request field naming a channel type: validated against the registry, and shown in
# the OpenAPI document as the enum of the registry's types.
ChannelTypeName = Annotated[
    str, AfterValidator(_known), WithJsonSchema({"type": "string", "enum": list(TYPES)})
]
