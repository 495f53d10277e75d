"""Conversation rows that the SQLite write path read and wrote, kept between its groups.

Every group of messages needs the rows of its conversations (last_seq, status, the
fields of the conversation view). On SQLite one connection in this process does all of
the group writing (``Database.write_connection``), so the rows as a group left them are
still the database's at the start of the next group unless some other connection
committed in between, which ``Database.commits_seen`` tells. Reading them again cost
about an eighth of the server's time per stored socket message (``bench/realtime.py``,
acks scenario). A failed group forgets them all: its rows were changed in memory for a
transaction that did not commit.
"""

from __future__ import annotations

from chat.services.statuses import Row

MAX_ROWS = 4096


class ConversationRows:
    def __init__(self, limit: int = MAX_ROWS) -> None:
        self.limit = limit
        self._rows: dict[str, Row] = {}
        self._seen: int | None = None

    def valid_at(self, seen: int | None) -> dict[str, Row]:
        """The rows kept, if ``seen`` (``commits_seen`` now) is what it was when they
        were kept; else an empty dict. The write path reads into and updates what it
        gets; ``keep`` or ``forget`` follows."""
        if seen is None or seen != self._seen:
            self.forget()
        return self._rows

    def keep(self, seen: int | None) -> None:
        """The group that got the rows committed, and ``seen`` did not change during it."""
        if seen is None:
            self.forget()
            return
        rows = self._rows
        for stale in list(rows)[: max(0, len(rows) - self.limit)]:  # the longest kept go
            del rows[stale]
        self._seen = seen

    def forget(self) -> None:
        self._rows = {}
        self._seen = None
