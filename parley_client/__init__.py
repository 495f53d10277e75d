"""Parley's Python real-time client: the reference for SDK authors.

``ParleyClient`` speaks the ``/client`` namespace (an end customer), ``AgentClient``
the ``/agent`` namespace (the inbox). Both are asyncio, on python-socketio's
``AsyncClient`` over the websocket transport. The protocol is in
docs/realtime-protocol.md.
"""

from parley_client.agent import AgentClient
from parley_client.client import ParleyClient, new_client_message_id, text
from parley_client.errors import AckError, AckTimeout, ConnectRefused, NotConnected, ParleyError
from parley_client.identity import user_hmac, user_token

__all__ = [
    "AckError",
    "AckTimeout",
    "AgentClient",
    "ConnectRefused",
    "NotConnected",
    "ParleyClient",
    "ParleyError",
    "new_client_message_id",
    "text",
    "user_hmac",
    "user_token",
]
