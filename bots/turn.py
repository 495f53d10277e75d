"""The seam between Parley and a bot: what one bot turn is given and gives back.

Parley (``chat``) builds a ``Turn`` when a customer's message is stored in a conversation
a bot is assigned to, and asks the bot's ``Brain`` for a ``TurnResult``. The brain never
sends, stores or calls Parley by itself: it returns what it wants to happen, and the
runtime in ``chat`` makes it happen through the conversation service (replies are
ordinary messages, attributes go to the contact, events are trigger events, hand-off
changes the conversation). So every bot reply is stored, fanned out and delivered on the
conversation's channel like any other message.

| brain | where | what it is |
| --- | --- | --- |
| scripted | ``bots.script`` | a ``Bot`` declared in Python: intents, entities, slots, handlers |
| rasa actions | ``bots.rasa_actions`` | ``rasa_sdk`` ``Action`` classes run by a scripted bot |
| rasa server | ``bots.rasa_rest`` | an external Rasa server through its REST channel |
| http | ``bots.http_bot`` | a URL Parley POSTs each turn to (signed as webhooks are) |

A brain is a leaf like a connector: it gets its settings and an HTTP client from the
caller and never imports ``chat`` or ``connectors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TurnMessage:
    """The customer's message that started the turn."""

    id: str
    seq: int
    content: Mapping[str, Any]  # Parley's content: {"type": "text", "text": ...} and the rest

    @property
    def text(self) -> str:
        """The words to understand: the text, a button's payload, or a media caption."""
        for key in ("text", "payload", "caption"):
            value = self.content.get(key)
            if isinstance(value, str):
                return value
        return ""


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything a bot may know when it answers one customer message."""

    workspace_id: str
    conversation_id: str
    channel_type: str  # "inapp", "sms", "whatsapp" ...
    message: TurnMessage
    # The contact's profile: id, name, email, phone, country, locale, timezone, attributes.
    contact: Mapping[str, Any]
    # What the bot remembered in this conversation after its last turn (slots and the like).
    memory: Mapping[str, Any] = field(default_factory=dict)
    # The latest messages before this one, oldest first, for brains that want context:
    # [{"seq", "direction", "author_type", "content"}].
    history: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class Handoff:
    """Give the conversation to human agents."""

    reason: str = ""
    team: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """A named trigger event about the contact (flows and webhooks react to it)."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What the bot wants to happen. Replies use Parley's content shapes: ``text``,
    ``buttons`` ({"type": "buttons", "text", "buttons": [{"title", "payload"}]}) and
    ``media`` ({"type": "media", "url", "mime_type"?, "caption"?})."""

    replies: Sequence[Mapping[str, Any]] = ()
    set_attributes: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[TriggerEvent] = ()
    handoff: Handoff | None = None
    memory: Mapping[str, Any] = field(default_factory=dict)  # replaces the turn's memory
    # For the turn record: what was understood and who answered.
    intent: str | None = None
    score: float | None = None
    handler: str | None = None


class Brain(Protocol):
    """One bot. ``fallback`` is what the runtime sends when a turn raises or times out
    (then the conversation is handed off)."""

    fallback: str

    async def turn(self, turn: Turn) -> TurnResult:
        """Answer one customer message."""
        ...
