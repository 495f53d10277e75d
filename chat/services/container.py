"""The services of one running app, built once by the composition root (chat.app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.bus import Bus
from chat.db.engine import Database
from chat.domain.channels import Registry
from chat.services.agents import Agents
from chat.services.conversations import Conversations
from chat.services.messages import Messages
from chat.services.sending import Sender
from chat.services.workspaces import Workspaces
from chat.settings import Settings

if TYPE_CHECKING:
    from chat.services.bot_runtime import BotRuntime
    from chat.services.bots import Bots
    from chat.services.canned import CannedResponses
    from chat.services.channels import Channels
    from chat.services.contacts import Contacts
    from chat.services.deliveries import Deliveries
    from chat.services.directory import Directory
    from chat.services.events import Events
    from chat.services.inbound import InboundWebhooks
    from chat.services.inbox import Inbox
    from chat.services.presence import Presence
    from chat.services.throttle import Throttle
    from chat.services.visitors import Visitors
    from chat.services.webhooks import Webhooks


@dataclass
class Services:
    settings: Settings
    secret_key: str
    db: Database
    bus: Bus
    workspaces: Workspaces
    agents: Agents
    conversations: Conversations
    messages: Messages
    sender: Sender
    contacts: Contacts
    channels: Channels
    events: Events
    webhooks: Webhooks
    inbox: Inbox
    # Real-time: widget sign-in, who is online, who a conversation belongs to.
    visitors: Visitors
    presence: Presence
    directory: Directory
    # Rate limits of the REST edge.
    throttle: Throttle
    # Channel types: config models, addresses, capabilities, connectors.
    registry: Registry
    # Provider callbacks (/webhooks/{channel_id}).
    inbound: InboundWebhooks
    # What was handed to providers, and the statuses they report back.
    deliveries: Deliveries
    # Saved replies of the inbox (/shortcut).
    canned: CannedResponses
    # Bots as data, and the two ends of a bot turn around its brain.
    bots: Bots
    bot_runtime: BotRuntime
