"""The composition root: builds every service once and the ASGI app around them."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import certifi
import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from chat.api import errors, routes
from chat.db.engine import Database
from chat.domain.channels import REGISTRY, Registry
from chat.listeners.bot_turn import BotTurnHandler
from chat.listeners.deliver import Deliver
from chat.listeners.scheduled import ReleaseScheduled
from chat.listeners.unsnooze import Unsnooze
from chat.listeners.webhook_delivery import WebhookDelivery
from chat.metrics import CountResponses, Metrics
from chat.realtime.server import Realtime
from chat.services import outbox
from chat.services.assembly import build_services
from chat.services.bot_brains import Brains, load_bot
from chat.services.bots import BOT_TURN
from chat.services.container import Services
from chat.services.provider_egress import GuardedTransport
from chat.settings import Settings
from chat.worker import Worker
from connectors.base import Connector
from connectors.tokens import MemoryTokenCache

log = logging.getLogger(__name__)



@dataclass
class Runtime:
    """What lives for the app's lifespan, reachable from tests."""

    services: Services
    worker: Worker
    http: httpx.AsyncClient


def create_app(
    settings: Settings | None = None,
    realtime: Realtime | None = None,
    registry: Registry = REGISTRY,
) -> Starlette:
    """The REST app; its lifespan builds the services (``app.state.services``) and hands
    them to ``realtime`` (the Socket.IO server), when there is one."""
    settings = settings or Settings()
    app = Starlette(
        routes=routes.all_routes(),
        exception_handlers=errors.HANDLERS,
        lifespan=_lifespan(settings, realtime, registry),
    )
    app.add_middleware(CountResponses, metrics=lambda: getattr(app.state, "metrics", None))
    return app


def create_asgi(
    settings: Settings | None = None, registry: Registry = REGISTRY
) -> tuple[ASGIApp, Starlette]:
    """What ``parley serve`` runs: Socket.IO in front of the REST app (and the REST app)."""
    settings = settings or Settings()
    realtime = Realtime(settings)
    app = create_app(settings, realtime, registry)
    app.state.realtime = realtime
    return realtime.wrap(app), app


def _lifespan(
    settings: Settings, realtime: Realtime | None, registry: Registry
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        # One TLS context for every client: each client would otherwise load the CA bundle.
        tls = ssl.create_default_context(cafile=certifi.where())
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, verify=tls)
        # Provider sends get pools of their own (chat/listeners/deliver.py says why),
        # guarded against fetching from the server's own network (provider_egress.py).
        senders = [
            httpx.AsyncClient(
                timeout=settings.webhook_timeout_seconds,
                transport=_sender_transport(tls, settings.webhook_allow_private_networks),
            )
            for _ in range(settings.delivery_http_clients)
        ]
        services = await build_services(settings, db, registry=registry, http=http)
        worker = Worker(db, settings, services.bus)
        worker.register(
            outbox.DELIVER,
            Deliver(
                services.deliveries,
                senders,
                _connector_for(registry),
                settings.delivery_timeout_seconds,
                tokens=MemoryTokenCache(),  # access tokens live as long as the app
            ),
        )
        worker.register(
            outbox.WEBHOOK,
            WebhookDelivery(
                db, http, settings.webhook_timeout_seconds, settings.webhook_allow_private_networks
            ),
        )
        worker.register(outbox.RELEASE, ReleaseScheduled(services.conversations))
        worker.register(outbox.UNSNOOZE, Unsnooze(services.inbox))
        worker.register(
            BOT_TURN,
            BotTurnHandler(
                services.bot_runtime,
                Brains(http, load_bot),
                settings.bot_timeout_seconds,
                settings.webhook_allow_private_networks,
            ),
        )
        services.bus.on_outbox_written(worker.wake)
        app.state.services = services
        app.state.metrics = Metrics(db)
        services.bus.subscribe(app.state.metrics.on_event)
        app.state.runtime = Runtime(services, worker, http)
        if settings.redis_url:
            app.state.redis_probe = _redis_probe(settings.redis_url)
        if realtime is not None:
            await realtime.start(services)
        if settings.worker_enabled:
            worker.start()
        try:
            yield
        finally:
            # The worker first: entries finishing while it stops still fan out (through
            # Redis too) before the sockets and the Redis manager close.
            await worker.stop()
            if realtime is not None:
                await realtime.stop()
            for client in senders:
                await client.aclose()
            await http.aclose()
            await services.throttle.close()
            await db.dispose()

    return lifespan


def _sender_transport(tls: ssl.SSLContext, allow_private: bool) -> httpx.AsyncBaseTransport:
    plain = httpx.AsyncHTTPTransport(verify=tls)
    return plain if allow_private else GuardedTransport(plain)


def _connector_for(registry: Registry) -> Callable[[str], type[Connector] | None]:
    def connector_for(channel_type: str) -> type[Connector] | None:
        return registry.spec(channel_type).connector if channel_type in registry else None

    return connector_for


def _redis_probe(url: str) -> Callable[[], Awaitable[str]]:
    """What ``GET /ready`` reports for Redis: ``ok`` or the error's type (never raises)."""

    async def probe() -> str:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
            return "ok"
        except (RedisError, OSError) as exc:  # readiness reports, it does not raise
            return f"error: {type(exc).__name__}"
        finally:
            await client.aclose()

    return probe
