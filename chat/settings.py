"""The only module that reads the environment (``PARLEY_*`` and an optional ``.env``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./parley.db"
    redis_url: str | None = None
    # Pub/sub ignores Redis db numbers: installations sharing one Redis server need
    # different channels so they don't receive each other's fan-out.
    redis_channel: str = "parley.socketio"
    # When unset, a secret is generated once and kept in the database so that every
    # process sharing the database signs and checks tokens alike.
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # When set, GET /metrics wants "Authorization: Bearer <this>" (each scrape queries
    # the database, so a public instance should not answer everyone).
    metrics_token: str | None = None

    max_body_bytes: int = 1024 * 1024
    agent_token_ttl_seconds: int = 12 * 3600
    session_token_ttl_seconds: int = 90 * 24 * 3600

    # Outbox / webhook delivery.
    worker_enabled: bool = True
    worker_poll_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    # Webhooks and notify_url go to public addresses only unless this is set (for
    # receivers inside the server's own network: a bot beside it, a test server).
    webhook_allow_private_networks: bool = False
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 3600.0
    max_delivery_attempts: int = 8
    # A claimed outbox entry is its worker's for this long, renewed while it runs; a
    # crashed process's entries are run again once it lapses.
    worker_lease_seconds: float = 60.0
    # Entries run at once by one worker process: per kind (deliver, webhook ...) and per
    # lane (one channel, one webhook subscription), so one slow provider or receiver
    # cannot take every slot.
    # (A lane of 128 sends at once could drain 2,500 messages/s from a provider answering
    # in 50 ms, so one process's CPU bounds it, not the lane: bench/drain.py. One lane
    # takes at most half of its kind's slots.)
    worker_max_per_kind: int = 256
    worker_max_per_lane: int = 128
    # One deadline for a whole provider send, whatever the connector does.
    delivery_timeout_seconds: float = 30.0
    # Provider sends go round-robin over this many HTTP clients (connection pools): one
    # pool walks all its connections on every request, so a few connections per pool
    # (128 sends in flight over 32 pools) cost least (bench/drain.py).
    delivery_http_clients: int = Field(default=32, ge=1, le=128)

    # Bots: how long a turn may take before the customer gets the bot's fallback reply and
    # the conversation goes to agents (a bot's own timeout_seconds overrides it), and how
    # many earlier messages a turn carries as history.
    bot_timeout_seconds: float = 5.0
    bot_history_messages: int = 10

    # REST protection: requests per second of one workspace's API keys or of one agent,
    # and login attempts per minute from one address for one account (ten times that
    # from one address in all).
    api_rate_per_second: float = 50.0
    api_rate_burst: int = 200
    login_attempts_per_minute: int = 10

    # Real-time protection. Connects are counted per client address: a widget key is
    # public, and every new anonymous visitor is a new contact.
    socket_connects_per_minute: int = 120
    socket_rate_per_second: float = 20.0
    socket_rate_burst: int = 40
    socket_max_payload_bytes: int = 64 * 1024
    typing_throttle_seconds: float = 1.0
    # Largest Engine.IO frame; a bigger one closes the connection, so keep it well above
    # socket_max_payload_bytes (which answers an oversize event with an error ack).
    socket_max_frame_bytes: int = 1024 * 1024
    # Bytes that may wait to go out to one socket; a client that reads slower than it is
    # written to (a stalled device, a hostile reader) is dropped past this, so it cannot
    # make the server hold its backlog without limit. It reconnects and resyncs.
    socket_max_queued_bytes: int = 4 * 1024 * 1024
    # Engine.IO heartbeat: keep the interval below any proxy's idle timeout.
    socket_ping_interval_seconds: float = 25.0
    socket_ping_timeout_seconds: float = 20.0
    # With Redis, a crashed process's connections stop counting as online after this.
    presence_ttl_seconds: float = 60.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
