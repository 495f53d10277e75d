"""Contacts: TO BE WRITTEN (service + REST in chat/api/contacts.py)."""

from __future__ import annotations

from chat.bus import Bus
from chat.db.engine import Database


class Contacts:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
