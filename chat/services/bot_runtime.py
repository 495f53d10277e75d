"""A bot turn's two ends around the brain: what the bot is given, and what it asked for.

``prepare`` reads the turn (the customer's message, the contact's profile, the bot's
memory in the conversation, recent history) or says there is nothing to do: the bot is
gone or inactive, the conversation is no longer the bot's (handed off, taken by an
agent), or the turn was already done (a worker retry). ``apply`` makes the
``TurnResult`` happen:

1. replies are posted through the conversation service as author ``{"type": "bot"}``, so
   they reach the customer on the conversation's channel, the inbox and the webhooks like
   any message; each carries a ``client_message_id`` derived from the turn, so a retried
   turn stores each reply once;
2. one transaction then sets the contact's attributes, records the trigger events, saves
   the memory, hands off (the conversation ``open``, unassigned, queued for the team) and
   writes the turn record. The record is unique per bot and message: a turn already
   recorded is not applied twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bots.turn import Handoff, Turn, TurnMessage, TurnResult
from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.content import Content
from chat.domain.enums import AuthorType, ConversationStatus, Direction
from chat.domain.ids import new_id
from chat.services import outbox
from chat.services.bot_brains import BotSpec
from chat.services.conversations import Conversations, NewMessage
from chat.services.events import NAME, NAME_MAX, add_event
from chat.services.views import conversation_view

log = logging.getLogger(__name__)

_CONTENT: TypeAdapter[Any] = TypeAdapter(Content)
PROFILE = ("id", "external_id", "name", "email", "phone", "country", "locale", "timezone")


@dataclass(frozen=True)
class TurnPlan:
    bot: BotSpec
    turn: Turn
    contact_id: str


class BadResult(ValueError):
    """A brain answered something Parley cannot send; the turn fails (fallback, hand-off)."""


def replies_of(result: TurnResult) -> list[dict[str, Any]]:
    """The replies as Parley content, checked; ``BadResult`` names the first bad one.

    Buttons may be given as the seam says (``{"title", "payload"}``): the payload becomes
    the button's ``id``."""
    out: list[dict[str, Any]] = []
    for i, reply in enumerate(result.replies):
        content = dict(reply)
        if content.get("type") == "buttons" and isinstance(content.get("buttons"), list):
            content["buttons"] = [_button(b) for b in content["buttons"]]
        try:
            checked = _CONTENT.validate_python(content)
        except ValidationError as exc:
            raise BadResult(f"reply {i} is not valid content: {exc.errors()[0]['msg']}") from exc
        out.append(checked.model_dump(mode="json", exclude_none=True))
    return out


def check_events(result: TurnResult) -> None:
    """``BadResult`` when an event's name is not a dotted lower-case name."""
    for ev in result.events:
        if len(ev.name) > NAME_MAX or not NAME.match(ev.name):
            raise BadResult(f"'{ev.name[:80]}' is not an event name (dotted lower-case words)")


def _button(button: Any) -> Any:
    if isinstance(button, Mapping) and "id" not in button and "payload" in button:
        return {"id": button["payload"], "title": button.get("title", button["payload"])}
    return button


def reply_key(plan: TurnPlan, index: int) -> str:
    """The client_message_id of a turn's ``index``-th reply: the same on every retry."""
    return f"bot:{plan.bot.id}:{plan.turn.message.id}:{index}"


class BotRuntime:
    def __init__(
        self, db: Database, bus: Bus, conversations: Conversations, history: int = 10
    ) -> None:
        self.db = db
        self.bus = bus
        self.conversations = conversations
        self.history = history

    async def prepare(self, payload: Mapping[str, Any]) -> TurnPlan | None:
        bot_id, message_id = payload["bot_id"], payload["message_id"]
        async with self.db.read() as session:
            bot = await session.get(m.Bot, bot_id)
            msg = await session.get(m.Message, message_id)
            conv = await session.get(m.Conversation, payload["conversation_id"])
            if bot is None or msg is None or conv is None or not bot.active:
                return None
            if (conv.assignee_type, conv.assignee_id) != (AuthorType.BOT.value, bot.id):
                return None  # handed off or taken by an agent since: the bot stays silent
            done = await session.scalar(
                select(m.BotTurn.id).where(m.BotTurn.bot_id == bot_id, m.BotTurn.message_id == message_id)
            )
            if done is not None:
                return None
            contact = await session.get(m.Contact, conv.contact_id)
            memory = await session.get(m.BotMemory, (conv.id, bot.id))
            earlier = (
                await session.scalars(
                    select(m.Message)
                    .where(
                        m.Message.conversation_id == conv.id,
                        m.Message.seq < (msg.seq or 0),
                        m.Message.private.is_(False),
                    )
                    .order_by(m.Message.seq.desc())
                    .limit(self.history)
                )
            ).all()
        profile: dict[str, Any] = {k: getattr(contact, k, None) for k in PROFILE}
        profile["attributes"] = dict(contact.attributes or {}) if contact else {}
        spec = BotSpec(
            bot.id, bot.workspace_id, bot.name, bot.kind, dict(bot.config or {}),
            bot.timeout_seconds, bot.updated_at,
        )
        turn = Turn(
            workspace_id=conv.workspace_id,
            conversation_id=conv.id,
            channel_type=conv.channel_type,
            message=TurnMessage(msg.id, msg.seq or 0, dict(msg.content or {})),
            contact=profile,
            memory=dict(memory.data) if memory else {},
            history=[
                {"seq": e.seq, "direction": e.direction, "author_type": e.author_type, "content": e.content}
                for e in reversed(earlier)
            ],
        )
        return TurnPlan(spec, turn, conv.contact_id)

    async def typing(self, plan: TurnPlan, typing: bool) -> None:
        """The customer (on a socket channel) and the agents see the bot typing."""
        await self.bus.publish([
            DomainEvent(
                "conversation.typing",
                plan.bot.workspace_id,
                {
                    "conversation_id": plan.turn.conversation_id,
                    "typing": typing,
                    "author": {"type": AuthorType.BOT.value, "id": plan.bot.id, "name": plan.bot.name},
                },
            )
        ])

    async def apply(
        self,
        plan: TurnPlan,
        result: TurnResult,
        replies: Sequence[dict[str, Any]],
        outcome: str,
        error: str | None,
        latency_ms: int,
    ) -> None:
        for i, content in enumerate(replies):
            await self.conversations.post_message(
                NewMessage(
                    workspace_id=plan.bot.workspace_id,
                    conversation_id=plan.turn.conversation_id,
                    content=content,
                    direction=Direction.OUTBOUND,
                    author_type=AuthorType.BOT.value,
                    author_id=plan.bot.id,
                    client_message_id=reply_key(plan, i),
                )
            )
        try:
            events = await self._record(plan, result, len(replies), outcome, error, latency_ms)
        except IntegrityError:
            log.info("bot turn for message %s was recorded meanwhile", plan.turn.message.id)
            return
        self.bus.outbox_written()
        await self.bus.publish(events)

    async def _record(
        self, plan: TurnPlan, result: TurnResult, replies: int, outcome: str,
        error: str | None, latency_ms: int,
    ) -> list[DomainEvent]:
        ws = plan.bot.workspace_id
        events: list[DomainEvent] = []
        async with self.db.write() as session:
            done = await session.scalar(
                select(m.BotTurn.id).where(
                    m.BotTurn.bot_id == plan.bot.id, m.BotTurn.message_id == plan.turn.message.id
                )
            )
            if done is not None:
                return []
            if result.set_attributes:
                contact = await session.get(m.Contact, plan.contact_id)
                if contact is not None:
                    contact.attributes = {**(contact.attributes or {}), **result.set_attributes}
            for ev in result.events:
                view = await add_event(session, ws, ev.name, plan.contact_id, dict(ev.payload))
                events.append(DomainEvent("event.created", ws, view))
            memory = await session.get(m.BotMemory, (plan.turn.conversation_id, plan.bot.id))
            if memory is None:
                session.add(m.BotMemory(
                    conversation_id=plan.turn.conversation_id, bot_id=plan.bot.id,
                    workspace_id=ws, data=dict(result.memory),
                ))
            else:
                memory.data = dict(result.memory)
            if result.handoff is not None:
                events += await _hand_off(session, plan, result.handoff)
            session.add(m.BotTurn(
                id=new_id("btt"), workspace_id=ws, bot_id=plan.bot.id,
                conversation_id=plan.turn.conversation_id, message_id=plan.turn.message.id,
                intent=(result.intent or None) and result.intent[:200], score=result.score,
                handler=(result.handler or None) and result.handler[:200],
                latency_ms=latency_ms, outcome=outcome, error=error, replies=replies,
            ))
            await session.flush()
        return events


async def _hand_off(session: Any, plan: TurnPlan, handoff: Handoff) -> list[DomainEvent]:
    """Open, unassigned, queued for the team: if the conversation is still the bot's."""
    conv = await session.get(m.Conversation, plan.turn.conversation_id, with_for_update=True)
    if conv is None or (conv.assignee_type, conv.assignee_id) != (AuthorType.BOT.value, plan.bot.id):
        return []
    conv.status = ConversationStatus.OPEN.value
    conv.assignee_type = conv.assignee_id = None
    conv.team = handoff.team[:80] if handoff.team else None
    conv.updated_at = utcnow()
    await session.flush()
    view = conversation_view(conv)
    await outbox.enqueue_webhooks(session, conv.workspace_id, "conversation.updated", {"conversation": view})
    return [DomainEvent("conversation.updated", conv.workspace_id, view)]
