"""Per-type channel ``config``: one pydantic model per channel type, and secret masking.

The channel registry (chat.domain.channels) names each type's model.

Key names follow each provider's own terms (see the contract's "Channel config
keys"). Every model takes ``api_base_url`` so tests and self-hosted gateways can
point a connector anywhere; providers with a separate token endpoint also take
``token_url``. Each model names its secret keys: those are write-only, so every
read shows them masked, and a masked value sent back unchanged keeps the secret.
"""

from __future__ import annotations

import base64
import json
import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from connectors import twilio_voice

MASK = "••••"

_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    """Checked as an http(s) URL but kept exactly as written (no added trailing slash)."""
    _HTTP_URL.validate_python(value)
    return value


Url = Annotated[str, Field(max_length=2000), AfterValidator(_http_url)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Secret = Annotated[str, Field(min_length=1, max_length=4000)]
E164 = r"^\+[1-9]\d{6,14}$"
GraphVersion = Annotated[str, Field(pattern=r"^v\d+\.\d+$")]


class ChannelConfig(BaseModel):
    """What every type accepts; subclasses add the provider's keys."""

    model_config = ConfigDict(extra="forbid")

    secret_keys: ClassVar[frozenset[str]] = frozenset()
    # Whether the provider calls back into ``/webhooks/{channel_id}``.
    receives_webhooks: ClassVar[bool] = True

    api_base_url: Url | None = None


class _TwilioConfig(ChannelConfig):
    secret_keys = frozenset({"auth_token"})

    account_sid: str = Field(pattern=r"^AC[A-Za-z0-9]+$", max_length=64)
    auth_token: Secret
    from_number: str | None = Field(default=None, pattern=E164)
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG[A-Za-z0-9]+$", max_length=64
    )
    status_callback_url: Url | None = None

    @model_validator(mode="after")
    def _one_sender(self) -> _TwilioConfig:
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("give from_number or messaging_service_sid")
        return self


_SMS_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|\d{3,8}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")


class SmsConfig(_TwilioConfig):
    from_number: str | None = Field(default=None, max_length=16)

    @field_validator("from_number")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not _SMS_SENDER.match(value):
            raise ValueError("an E.164 number, a short code or an alphanumeric sender id")
        return value


class VoiceConfig(_TwilioConfig):
    """Twilio Programmable Voice. A call is placed from ``from_number`` (a Messaging
    Service cannot call). Inbound calls hear ``greeting`` and are asked for
    ``gather_digits`` keys; ``language`` is the language of the greeting and of calls to
    contacts with no known locale; ``say_voice`` picks a Twilio voice (``Polly.Joanna``,
    ``Google.en-US-Standard-C``; Twilio's default when absent). After a key the caller
    hears ``thanks`` and may press another; silence ends the call with ``goodbye``."""

    from_number: str = Field(pattern=E164)
    greeting: str = Field(default=twilio_voice.DEFAULT_GREETING, min_length=1, max_length=1000)
    thanks: str = Field(default=twilio_voice.DEFAULT_THANKS, min_length=1, max_length=1000)
    goodbye: str = Field(default=twilio_voice.DEFAULT_GOODBYE, min_length=1, max_length=1000)
    language: str = Field(default="en-US", pattern=r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")
    gather_digits: int = Field(default=1, ge=1, le=20)
    say_voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class _GraphConfig(ChannelConfig):
    """Meta's Graph API (WhatsApp Cloud, Messenger): signed webhooks and a verify token."""

    secret_keys = frozenset({"app_secret", "verify_token"})

    app_secret: Secret
    verify_token: Secret
    api_version: GraphVersion = "v21.0"


class WhatsAppConfig(_GraphConfig):
    secret_keys = _GraphConfig.secret_keys | {"access_token"}

    phone_number_id: str = Field(pattern=r"^\d+$", max_length=64)
    access_token: Secret


class MessengerConfig(_GraphConfig):
    secret_keys = _GraphConfig.secret_keys | {"page_access_token"}

    page_id: str = Field(pattern=r"^\d+$", max_length=64)
    page_access_token: Secret


class TelegramConfig(ChannelConfig):
    secret_keys = frozenset({"bot_token", "secret_token"})

    bot_token: str = Field(pattern=r"^\d+:[A-Za-z0-9_-]+$", max_length=200)
    # Telegram's own rule for the X-Telegram-Bot-Api-Secret-Token header.
    secret_token: str = Field(pattern=r"^[A-Za-z0-9_-]{1,256}$")


class WeChatConfig(ChannelConfig):
    secret_keys = frozenset({"app_secret", "token", "encoding_aes_key"})

    app_id: Text
    app_secret: Secret
    token: str = Field(pattern=r"^[A-Za-z0-9]{3,32}$")
    encoding_aes_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{43}$")
    token_url: Url | None = None


class TwitterConfig(ChannelConfig):
    secret_keys = frozenset({"consumer_secret", "access_token", "access_token_secret"})

    consumer_key: Text
    consumer_secret: Secret
    access_token: Secret
    access_token_secret: Secret


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class EmailInbound(StrEnum):
    SMTP = "smtp"
    WEBHOOK = "webhook"


_DEFAULT_SMTP_PORT = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465, SmtpSecurity.NONE: 25}


class EmailConfig(ChannelConfig):
    secret_keys = frozenset({"smtp_password"})

    smtp_host: str = Field(pattern=r"^[A-Za-z0-9.\-]+$", max_length=253)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: Text | None = None
    smtp_password: Secret | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    # "support@acme.com" or "Acme Support <support@acme.com>".
    from_address: str = Field(
        pattern=r"^([^<>]*<[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+)$",
        max_length=320,
    )
    inbound: EmailInbound = EmailInbound.WEBHOOK

    @model_validator(mode="after")
    def _defaults(self) -> EmailConfig:
        if self.smtp_port is None:
            self.smtp_port = _DEFAULT_SMTP_PORT[self.smtp_security]
        if bool(self.smtp_username) != bool(self.smtp_password):
            raise ValueError("give smtp_username and smtp_password together, or neither")
        return self


class ApnsEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


class ApnsConfig(ChannelConfig):
    secret_keys = frozenset({"private_key"})
    receives_webhooks = False

    team_id: str = Field(pattern=r"^[A-Z0-9]{10}$")
    key_id: str = Field(pattern=r"^[A-Z0-9]{10}$")
    private_key: str = Field(max_length=10_000)
    topic: str = Field(pattern=r"^[A-Za-z0-9.\-]+$", max_length=255)
    environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION

    @field_validator("private_key")
    @classmethod
    def _p8(cls, value: str) -> str:
        if "-----BEGIN PRIVATE KEY-----" not in value:
            raise ValueError("paste the whole .p8 file, -----BEGIN PRIVATE KEY----- included")
        return value


class FcmConfig(ChannelConfig):
    secret_keys = frozenset({"service_account"})
    receives_webhooks = False

    project_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    service_account: dict[str, Any]
    token_url: Url | None = None

    @field_validator("service_account", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(
                    "service_account must be the JSON key file (object or text)"
                ) from exc
        return value

    @field_validator("service_account")
    @classmethod
    def _key_file(cls, value: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("client_email", "private_key") if not value.get(k)]
        if missing:
            raise ValueError(f"service_account lacks {', '.join(missing)}")
        if value.get("type", "service_account") != "service_account":
            raise ValueError('service_account must be a key of "type": "service_account"')
        return value

    @model_validator(mode="after")
    def _project(self) -> FcmConfig:
        if self.project_id is None:
            self.project_id = self.service_account.get("project_id")
        if not self.project_id:
            raise ValueError("give project_id (or a service_account that names one)")
        return self


class WnsConfig(ChannelConfig):
    secret_keys = frozenset({"client_secret"})
    receives_webhooks = False

    client_id: Text  # the package SID, "ms-app://..."
    client_secret: Secret
    token_url: Url | None = None


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+=*$")


def _base64url(value: str, size: int, what: str) -> bytes:
    if not _BASE64URL.match(value):
        raise ValueError(f"{what} must be URL-safe base64")
    raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


class WebPushConfig(ChannelConfig):
    """Web Push with VAPID (RFC 8292): the keys as ``web-push generate-vapid-keys`` prints
    them (URL-safe base64 of the P-256 public point and private scalar)."""

    secret_keys = frozenset({"vapid_private_key"})
    receives_webhooks = False

    vapid_public_key: str = Field(min_length=80, max_length=100)
    vapid_private_key: str = Field(min_length=40, max_length=4000)
    # Who the push service contacts about this sender: a mailto: or https: URL.
    subject: str = Field(max_length=500)

    @field_validator("vapid_public_key")
    @classmethod
    def _public(cls, value: str) -> str:
        if _base64url(value, 65, "vapid_public_key")[0] != 4:
            raise ValueError("vapid_public_key must be an uncompressed P-256 point (04...)")
        return value

    @field_validator("vapid_private_key")
    @classmethod
    def _private(cls, value: str) -> str:
        if "-----BEGIN" in value:
            if "PRIVATE KEY-----" not in value:
                raise ValueError("a PEM vapid_private_key must be a PRIVATE KEY block")
        else:
            _base64url(value, 32, "vapid_private_key")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if value.startswith("mailto:"):
            address = value.removeprefix("mailto:")
            if not re.match(r"^[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+$", address):
                raise ValueError("subject mailto: needs an email address")
        elif value.startswith("https://"):
            _http_url(value)
        else:
            raise ValueError("subject must be a mailto: or https: URL")
        return value


def _origin(value: str) -> str:
    if value != "*":
        _http_url(value)
        rest = value.partition("://")[2]
        if not rest or "/" in rest or "?" in rest or "#" in rest:
            raise ValueError(f"{value!r} is not an origin (scheme://host[:port], no path)")
    return value


class PreChatField(BaseModel):
    """One field of the widget's pre-chat form."""

    model_config = ConfigDict(extra="forbid")

    key: Literal["name", "email"]
    required: bool = False


class PreChatForm(BaseModel):
    """Asked before a visitor's first message, when ``enabled``; fills the contact's profile."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    fields: list[PreChatField] = Field(
        default_factory=lambda: [
            PreChatField(key="name", required=False), PreChatField(key="email", required=True)
        ],
        min_length=1,
        max_length=2,
    )

    @field_validator("fields")
    @classmethod
    def _unique(cls, value: list[PreChatField]) -> list[PreChatField]:
        keys = [f.key for f in value]
        if len(set(keys)) != len(keys):
            raise ValueError("each field at most once")
        return value


class WidgetSettings(BaseModel):
    """What the web widget looks like: public, sent to every visitor in the ``session`` event."""

    model_config = ConfigDict(extra="forbid")

    color: str = Field(default="#2563EB", pattern=r"^#[0-9A-Fa-f]{6}$")
    title: str | None = Field(default=None, min_length=1, max_length=80)
    greeting: str | None = Field(default=None, min_length=1, max_length=500)
    pre_chat_form: PreChatForm = Field(default_factory=PreChatForm)


class InAppConfig(ChannelConfig):
    receives_webhooks = False

    allowed_origins: list[Annotated[str, Field(max_length=300), AfterValidator(_origin)]] = Field(
        default_factory=lambda: ["*"], max_length=100
    )
    # Absent: the defaults of ``WidgetSettings`` (a PATCH replaces the whole object).
    widget: WidgetSettings | None = None


def widget_settings(config: dict[str, Any] | None) -> dict[str, Any]:
    """The web widget's public settings from an in-app channel's stored ``config``, with
    defaults filled in; a config stored before it could hold them gets the defaults."""
    raw = (config or {}).get("widget")
    try:
        widget = WidgetSettings.model_validate(raw) if isinstance(raw, dict) else WidgetSettings()
    except ValueError:
        widget = WidgetSettings()
    return widget.model_dump(mode="json")


def parse(model: type[ChannelConfig], config: dict[str, Any]) -> ChannelConfig:
    """The typed config; raises pydantic's ``ValidationError``."""
    return model.model_validate(config)


def to_stored(config: ChannelConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude_none=True)


def mask_value(value: Any) -> str:
    """``••••`` and, for long enough strings, the last four characters."""
    if isinstance(value, str) and len(value) >= 12:
        return MASK + value[-4:]
    return MASK


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MASK)


def masked(model: type[ChannelConfig], config: dict[str, Any]) -> dict[str, Any]:
    """The config as every read shows it: secrets replaced by their mask."""
    secret_keys = model.secret_keys
    return {k: mask_value(v) if k in secret_keys else v for k, v in config.items()}


class MaskedSecretError(ValueError):
    """A masked value came back where the real secret was needed."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"send the real value of {', '.join(keys)}, not the masked one")
        self.keys = keys


def merged(
    model: type[ChannelConfig], current: dict[str, Any], patch: dict[str, Any]
) -> dict[str, Any]:
    """``current`` with ``patch`` applied (JSON merge patch: ``null`` removes a key).

    A secret sent back exactly as it was shown keeps the stored value; any other
    masked-looking value is refused rather than stored.
    """
    secret_keys = model.secret_keys
    result = dict(current)
    stale: list[str] = []
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif key in secret_keys and is_masked(value):
            if key not in current or mask_value(current[key]) != value:
                stale.append(key)
        else:
            result[key] = value
    if stale:
        raise MaskedSecretError(stale)
    return result
