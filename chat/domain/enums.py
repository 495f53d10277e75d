from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AuthorType(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A status never moves backwards; ``failed`` and ``cancelled`` are terminal.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.FAILED: 5,
    MessageStatus.CANCELLED: 5,
}


def status_can_move(current: MessageStatus, new: MessageStatus) -> bool:
    if current in (MessageStatus.FAILED, MessageStatus.CANCELLED):
        return False
    if new is MessageStatus.CANCELLED:
        return current is MessageStatus.SCHEDULED
    if new is MessageStatus.FAILED:
        return current in (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENT)
    return STATUS_RANK[new] > STATUS_RANK[current]


def statuses_before(new: MessageStatus) -> tuple[str, ...]:
    """Every status a message may move to ``new`` from: the compare in a compare-and-set."""
    return tuple(s.value for s in MessageStatus if status_can_move(s, new))


class AgentRole(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class AssigneeType(StrEnum):
    AGENT = "agent"
    BOT = "bot"
