"""How Parley's Socket.IO packets are encoded: JSON only, through orjson.

Parley's events carry JSON objects and never bytes, so the packet class skips
python-socketio's search of every outgoing payload for binary parts (a recursive walk
that cost as much as encoding it); bytes given by mistake fail loudly in ``dumps``
instead of going out as attachments. Incoming binary packets are still decoded, and
then refused by payload validation like any other non-JSON value.
"""

from __future__ import annotations

from socketio.packet import Packet

from chat.domain import jsontext


class JsonPacket(Packet):
    uses_binary_events = False
    json = jsontext  # the dumps/loads python-socketio's packets call
