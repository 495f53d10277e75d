"""Bots as data: a workspace's bots, where they answer, and the record of their turns.

A bot is ``python`` (a brain the server imports: ``module:attr`` or a file path), ``rasa``
(an external Rasa server reached through its REST channel) or ``http`` (a URL Parley POSTs
each turn to, signed with the bot's secret). It is attached to some channels of the
workspace, or to all of them (``channel_ids`` empty), and is then the first assignee of
the conversations customers open there (``first_assignees``, the write path's hook). A
customer message in a conversation a bot is assigned to is a bot turn (``BotTurnTrigger``:
outbox work, run by ``chat.listeners.bot_turn`` after the customer's ack).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.db.types import utcnow
from chat.domain.enums import AuthorType, Direction
from chat.domain.errors import NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services import egress, outbox
from chat.services.paging import page
from chat.services.views import Page, conversation_view, iso

BOT_TURN = "bot_turn"  # the outbox kind of a bot turn
BotKind = Literal["python", "rasa", "http"]
Outcome = Literal["replied", "handed_off", "failed", "timed_out"]
MASK = "********"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PythonBotConfig(_Config):
    path: str = Field(
        min_length=1, max_length=500,
        description="module:attr (bots.examples.support:bot) or a file path (attr 'bot')",
    )


class RasaBotConfig(_Config):
    url: HttpUrl = Field(description="the Rasa server; Parley calls {url}/webhooks/rest/webhook")
    action_server_url: HttpUrl | None = Field(
        default=None, description="where that Rasa server's actions run (for reference)"
    )


class HttpBotConfig(_Config):
    url: HttpUrl = Field(description="where Parley POSTs each turn")
    secret: str = Field(
        min_length=16, max_length=200, description="signs each POST (X-Parley-Signature); write-only"
    )


CONFIGS: dict[str, type[_Config]] = {
    "python": PythonBotConfig, "rasa": RasaBotConfig, "http": HttpBotConfig,
}
_SECRETS = {"secret"}


class BotView(TypedDict):
    id: str
    name: str
    kind: str
    config: dict[str, Any]
    channel_ids: list[str]
    active: bool
    timeout_seconds: float | None
    created_at: str
    updated_at: str


class BotTurnView(TypedDict):
    id: str
    bot_id: str
    conversation_id: str
    message_id: str
    intent: str | None
    score: float | None
    handler: str | None
    latency_ms: int
    outcome: str
    error: str | None
    replies: int
    created_at: str


def bot_view(bot: m.Bot) -> BotView:
    return {
        "id": bot.id,
        "name": bot.name,
        "kind": bot.kind,
        "config": {k: (MASK if k in _SECRETS and v else v) for k, v in (bot.config or {}).items()},
        "channel_ids": list(bot.channel_ids or []),
        "active": bot.active,
        "timeout_seconds": bot.timeout_seconds,
        "created_at": iso(bot.created_at),
        "updated_at": iso(bot.updated_at),
    }


def turn_view(t: m.BotTurn) -> BotTurnView:
    return {
        "id": t.id, "bot_id": t.bot_id, "conversation_id": t.conversation_id,
        "message_id": t.message_id, "intent": t.intent, "score": t.score, "handler": t.handler,
        "latency_ms": t.latency_ms, "outcome": t.outcome, "error": t.error,
        "replies": t.replies, "created_at": iso(t.created_at),
    }


# Checks that a python bot's reference loads (the brain loader's seam); raises with why not.
CheckPython = Callable[[str], object]

UNSET: Any = object()


class Bots:
    def __init__(
        self, db: Database, bus: Bus, check_python: CheckPython, allow_private_networks: bool = False
    ) -> None:
        self.db = db
        self.bus = bus
        self.check_python = check_python
        # Like webhooks (chat.services.egress): a bot's URL must be public unless allowed.
        self.allow_private_networks = allow_private_networks

    async def list(self, workspace_id: str) -> list[BotView]:
        async with self.db.read() as session:
            rows = await session.scalars(
                select(m.Bot).where(m.Bot.workspace_id == workspace_id).order_by(m.Bot.id)
            )
            return [bot_view(b) for b in rows]

    async def get(self, workspace_id: str, bot_id: str) -> BotView:
        async with self.db.read() as session:
            return bot_view(await _owned(session, workspace_id, bot_id))

    async def create(
        self,
        workspace_id: str,
        name: str,
        kind: str,
        config: Mapping[str, Any],
        channel_ids: Sequence[str] | None = None,
        active: bool = True,
        timeout_seconds: float | None = None,
    ) -> BotView:
        stored = self._checked(kind, {}, config)
        async with self.db.write() as session:
            ids = await _channels_of(session, workspace_id, channel_ids or [])
            bot = m.Bot(
                id=new_id("bot"), workspace_id=workspace_id, name=name, kind=kind, config=stored,
                channel_ids=ids, active=active, timeout_seconds=timeout_seconds,
            )
            session.add(bot)
            await session.flush()
            return bot_view(bot)

    async def update(
        self,
        workspace_id: str,
        bot_id: str,
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        channel_ids: Sequence[str] | None = None,
        active: bool | None = None,
        timeout_seconds: float | None = UNSET,
    ) -> BotView:
        """Change what is given; ``config`` is merged (a masked secret echoed back keeps it).
        A bot made inactive takes no new conversations and leaves the ones it holds to the
        agents (unassigned), so no customer waits for a bot that will not answer."""
        released: Sequence[DomainEvent] = ()
        async with self.db.write() as session:
            bot = await _owned(session, workspace_id, bot_id)
            if config is not None:
                bot.config = self._checked(bot.kind, bot.config or {}, config)
            if name is not None:
                bot.name = name
            if channel_ids is not None:
                bot.channel_ids = await _channels_of(session, workspace_id, channel_ids)
            if active is not None:
                bot.active = active
                if not active:
                    released = await _release(session, bot)
            if timeout_seconds is not UNSET:
                bot.timeout_seconds = timeout_seconds
            bot.updated_at = utcnow()
            await session.flush()
            view = bot_view(bot)
        await self._published(released)
        return view

    async def delete(self, workspace_id: str, bot_id: str) -> None:
        """Remove the bot; its conversations become unassigned (agents' queue)."""
        async with self.db.write() as session:
            bot = await _owned(session, workspace_id, bot_id)
            released = await _release(session, bot)
            await session.delete(bot)
        await self._published(released)

    async def _published(self, events: Sequence[DomainEvent]) -> None:
        if events:
            self.bus.outbox_written()
            await self.bus.publish(events)

    async def turns(
        self,
        workspace_id: str,
        cursor: str | None,
        limit: int,
        *,
        bot_id: str | None = None,
        conversation_id: str | None = None,
    ) -> Page[BotTurnView]:
        """Turn records, newest first: of one bot, or in one conversation (404 outside
        the workspace)."""
        q: Select[Any] = select(m.BotTurn).where(m.BotTurn.workspace_id == workspace_id)
        async with self.db.read() as session:
            if bot_id is not None:
                await _owned(session, workspace_id, bot_id)
                q = q.where(m.BotTurn.bot_id == bot_id)
            if conversation_id is not None:
                conv = await session.get(m.Conversation, conversation_id)
                if conv is None or conv.workspace_id != workspace_id:
                    raise NotFound("conversation not found")
                q = q.where(m.BotTurn.conversation_id == conversation_id)
            return await page(session, q, m.BotTurn.id, cursor, limit, turn_view)

    def _checked(self, kind: str, current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        model = CONFIGS[kind]
        merged = {**current}
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif not (key in _SECRETS and value == MASK and key in current):
                merged[key] = value
        try:
            stored = model.model_validate(merged).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            raise Unprocessable(
                f"config does not fit a '{kind}' bot",
                code="invalid_config",
                details=[
                    {"loc": ["config", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False, include_context=False, include_input=False)
                ],
            ) from exc
        for key in ("url", "action_server_url"):
            problem = None if self.allow_private_networks or key not in stored else egress.written_problem(stored[key])
            if problem is not None:
                raise Unprocessable(
                    f"config.{key} cannot be called: {problem} (PARLEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS "
                    "allows bots inside the server's network)",
                    code="url_not_allowed",
                    details=[{"loc": ["config", key], "msg": problem, "type": "url_not_allowed"}],
                )
        if kind == "python":
            try:
                self.check_python(stored["path"])
            except Exception as exc:  # the loader says why: import error, not a brain ...
                raise Unprocessable(
                    f"the bot at '{stored['path']}' cannot be loaded: {exc}",
                    code="invalid_bot",
                    details={"path": stored["path"], "error": str(exc)},
                ) from exc
        return stored


async def _release(session: AsyncSession, bot: m.Bot) -> list[DomainEvent]:
    """The bot's conversations go to the agents' queue (unassigned); their
    ``conversation.updated`` webhooks are written, the events returned to publish."""
    held = (
        await session.scalars(
            select(m.Conversation).where(
                m.Conversation.workspace_id == bot.workspace_id,
                m.Conversation.assignee_type == AuthorType.BOT.value,
                m.Conversation.assignee_id == bot.id,
            )
        )
    ).all()
    events: list[DomainEvent] = []
    for conv in held:
        conv.assignee_type = conv.assignee_id = None
        conv.updated_at = utcnow()
        await session.flush()
        view = conversation_view(conv)
        await outbox.enqueue_webhooks(session, bot.workspace_id, "conversation.updated", {"conversation": view})
        events.append(DomainEvent("conversation.updated", bot.workspace_id, view))
    return events


async def _owned(session: AsyncSession, workspace_id: str, bot_id: str) -> m.Bot:
    bot = await session.get(m.Bot, bot_id)
    if bot is None or bot.workspace_id != workspace_id:
        raise NotFound("bot not found")
    return bot


async def _channels_of(session: AsyncSession, workspace_id: str, ids: Sequence[str]) -> list[str]:
    """The channel ids, each checked to be the workspace's (422 ``unknown_channel``)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = set(
        (
            await session.scalars(
                select(m.Channel.id).where(
                    m.Channel.workspace_id == workspace_id, m.Channel.id.in_(wanted)
                )
            )
        ).all()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise Unprocessable(
            "no such channel in this workspace", code="unknown_channel",
            details={"channel_ids": missing},
        )
    return wanted


async def bot_in_workspace(session: AsyncSession, workspace_id: str, bot_id: str) -> bool:
    bot = await session.get(m.Bot, bot_id)
    return bot is not None and bot.workspace_id == workspace_id


_ACTIVE_BOTS = select(m.Bot.id, m.Bot.workspace_id, m.Bot.channel_ids).where(m.Bot.active.is_(True))


async def first_assignees(
    conn: AsyncConnection, asked: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """The write path's hook: for each (workspace, channel) where a customer opens a
    conversation, the bot attached there: one attached to that channel first, else one
    attached to the whole workspace (the oldest of several)."""
    workspaces = {ws for ws, _ in asked}
    rows = (await conn.execute(_ACTIVE_BOTS.where(m.Bot.workspace_id.in_(workspaces)).order_by(m.Bot.id))).all()
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ws, channel in asked:
        mine = [r for r in rows if r.workspace_id == ws]
        pick = next((r for r in mine if channel in (r.channel_ids or [])), None) or next(
            (r for r in mine if not r.channel_ids), None
        )
        if pick is not None:
            found[(ws, channel)] = (AuthorType.BOT.value, pick.id)
    return found


class BotTurnTrigger:
    """A customer's message in a conversation a bot is assigned to is a bot turn."""

    kind: str = BOT_TURN

    def work_for(
        self, message: Mapping[str, Any], conversation: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        assignee = conversation.get("assignee")
        if (
            not assignee
            or assignee.get("type") != AuthorType.BOT.value
            or message.get("direction") != Direction.INBOUND.value
            or message.get("author", {}).get("type") != AuthorType.CONTACT.value
            or message.get("private")
        ):
            return None
        return {
            "bot_id": assignee["id"],
            "conversation_id": conversation["id"],
            "message_id": message["id"],
        }
