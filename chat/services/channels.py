"""Channels: TO BE WRITTEN (service + REST in chat/api/channels.py)."""

from __future__ import annotations

from chat.bus import Bus
from chat.db.engine import Database


class Channels:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
