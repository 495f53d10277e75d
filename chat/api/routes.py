"""Every REST route of the app, in one list."""

from __future__ import annotations

from starlette.routing import BaseRoute

from chat.api import (
    agents,
    channels,
    contacts,
    conversations,
    events,
    inbound,
    messages,
    system,
    webhooks,
    widget,
)
from chat.api.routing import Router

ROUTERS: list[Router] = [
    messages.router,
    conversations.router,
    contacts.router,
    events.router,
    agents.router,
    channels.router,
    webhooks.router,
    inbound.router,
    widget.router,
]


def all_routes() -> list[BaseRoute]:
    return system.routes(ROUTERS)
