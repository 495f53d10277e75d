"""Every REST route of the app, in one list."""

from __future__ import annotations

from starlette.routing import BaseRoute

from chat.api import (
    agents,
    bots,
    canned,
    channels,
    contacts,
    conversations,
    events,
    inbound,
    inbox_page,
    messages,
    system,
    webhooks,
    widget,
    workspace,
)
from chat.api.routing import Router

ROUTERS: list[Router] = [
    messages.router,
    conversations.router,
    contacts.router,
    events.router,
    agents.router,
    canned.router,
    channels.router,
    bots.router,
    webhooks.router,
    inbound.router,
    workspace.router,
    inbox_page.router,
    widget.router,
]


def all_routes() -> list[BaseRoute]:
    return system.routes(ROUTERS)
