"""Every service of a Parley instance, built once: for the app's lifespan, and for the
command line, which needs the services without the web and socket layers (importing
those cost the CLI about a second per command)."""

from __future__ import annotations

from typing import Any

import httpx

from chat.bus import Bus
from chat.db.engine import Database
from chat.domain.channels import REGISTRY, Registry
from chat.services.agents import Agents
from chat.services.bot_brains import load_bot
from chat.services.bot_runtime import BotRuntime
from chat.services.bots import Bots, BotTurnTrigger, first_assignees
from chat.services.canned import CannedResponses
from chat.services.channels import Channels
from chat.services.contacts import Contacts
from chat.services.container import Services
from chat.services.conversations import Conversations
from chat.services.deliveries import Deliveries
from chat.services.directory import Directory
from chat.services.events import Events
from chat.services.inbound import InboundWebhooks
from chat.services.inbox import Inbox
from chat.services.instance import shared_secret
from chat.services.message_store import StoreRules
from chat.services.messages import Messages
from chat.services.presence import Presence, presence_store
from chat.services.sending import Sender
from chat.services.throttle import Throttle, buckets_for
from chat.services.visitors import Visitors
from chat.services.webhooks import Webhooks
from chat.services.workspaces import Workspaces
from chat.settings import Settings


def store_rules(registry: Registry) -> StoreRules:
    """What the write path needs to know of the channel types."""

    def contact_fields(channel_type: str, address: str) -> dict[str, Any]:
        field = registry.spec(channel_type).address.profile_field
        return {field: address} if field else {}

    return StoreRules(
        sendable=registry.sendable.__contains__,
        contact_fields=contact_fields,
        socket_delivered=registry.socket_types.__contains__,
        capabilities=lambda channel_type: registry.spec(channel_type).capabilities,
        triggers=(BotTurnTrigger(),),
        first_assignees=first_assignees,
    )



async def build_services(
    settings: Settings,
    db: Database,
    *,
    registry: Registry = REGISTRY,
    http: httpx.AsyncClient | None = None,
) -> Services:
    """Every service, once. ``registry`` names the channel types and their connectors
    (tests pass one with a test connector); ``http`` is the client connectors use."""
    bus = Bus()
    secret_key = settings.secret_key or await shared_secret(db, "secret_key")
    conversations = Conversations(db, bus, store_rules(registry))
    deliveries = Deliveries(db, bus)
    events = Events(db, bus)
    bot_runtime = BotRuntime(db, bus, conversations, settings.bot_history_messages)
    return Services(
        settings=settings,
        secret_key=secret_key,
        db=db,
        bus=bus,
        workspaces=Workspaces(db),
        agents=Agents(db, secret_key, settings.agent_token_ttl_seconds, bus),
        conversations=conversations,
        messages=Messages(db, bus),
        sender=Sender(conversations, registry),
        contacts=Contacts(db, bus),
        channels=Channels(db, bus),
        events=events,
        webhooks=Webhooks(db, bus),
        inbox=Inbox(db, bus),
        visitors=Visitors(db, secret_key, settings.session_token_ttl_seconds),
        presence=Presence(bus, presence_store(settings.redis_url, settings.presence_ttl_seconds)),
        directory=Directory(db),
        throttle=Throttle(buckets_for(settings.redis_url), settings),
        registry=registry,
        inbound=InboundWebhooks(
            db, conversations, registry, deliveries.apply_news, http, events=events
        ),
        deliveries=deliveries,
        canned=CannedResponses(db),
        bots=Bots(db, bus, load_bot, settings.webhook_allow_private_networks),
        bot_runtime=bot_runtime,
    )
