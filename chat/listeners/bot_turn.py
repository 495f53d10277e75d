"""Outbox handler (kind ``bot_turn``): a bot answers a customer's message.

| step | what |
| --- | --- |
| prepare | ``BotRuntime.prepare``: nothing to do when the bot is gone, the conversation is no longer the bot's (handed off, taken by an agent) or the turn is recorded already (a retry) |
| typing | the customer and the agents see the bot typing (``conversation.typing``) |
| brain | ``Brains.get(bot).turn(turn)`` within the bot's timeout (``bot_timeout_seconds``, 5 s) |
| failure | a brain that raises, times out or answers what cannot be sent: its ``fallback`` text is the reply, the conversation is handed off, the record says ``failed`` / ``timed_out`` with the error |
| apply | ``BotRuntime.apply``: replies through the conversation service, then attributes, events, memory, hand-off and the turn record in one transaction |

The customer's message is stored before any of this (it caused it): no failure here loses
it. A database error while applying is retried by the worker (``RetryLater``); replies
carry client_message_ids derived from the turn, so a retry posts each once. Turns of one
conversation run one at a time in this process, in the order they are claimed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from bots.turn import Handoff, TurnResult
from chat.db import models as m
from chat.domain.errors import ParleyError
from chat.services import egress
from chat.services.bot_brains import Brains
from chat.services.bot_runtime import BadResult, BotRuntime, TurnPlan, check_events, replies_of
from connectors.errors import GiveUp, RetryLater

log = logging.getLogger(__name__)

DEFAULT_FALLBACK = "Sorry, I cannot help with that right now. Let me get you a person."


class BotTurnHandler:
    def __init__(
        self,
        runtime: BotRuntime,
        brains: Brains,
        timeout_seconds: float = 5.0,
        allow_private_networks: bool = False,
    ) -> None:
        self.runtime = runtime
        self.brains = brains
        self.timeout = timeout_seconds
        self.allow_private_networks = allow_private_networks
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    async def __call__(self, entry: m.OutboxEntry) -> None:
        with self._turns_of(entry.payload["conversation_id"]) as lock:
            async with lock:
                await self._turn(entry)

    async def _turn(self, entry: m.OutboxEntry) -> None:
        try:
            plan = await self.runtime.prepare(entry.payload)
        except SQLAlchemyError as exc:
            raise RetryLater(f"reading the turn failed: {type(exc).__name__}", code="database") from exc
        if plan is None:
            return
        await self.runtime.typing(plan, True)
        try:
            await self._answer(plan)
        finally:
            await self.runtime.typing(plan, False)

    async def _answer(self, plan: TurnPlan) -> None:
        fallback = DEFAULT_FALLBACK
        started = time.perf_counter()
        outcome, error = "replied", None
        try:
            brain = self.brains.get(plan.bot)
            fallback = brain.fallback or fallback
            url = plan.bot.config.get("url")
            if isinstance(url, str) and not self.allow_private_networks:
                problem = await egress.resolved_problem(url)
                if problem is not None:
                    raise BadResult(f"the bot's URL cannot be called: {problem}")
            async with asyncio.timeout(plan.bot.timeout_seconds or self.timeout):
                result = await brain.turn(plan.turn)
            replies = replies_of(result)
            check_events(result)
            if result.handoff is not None:
                outcome = "handed_off"
        except TimeoutError:
            outcome, error = "timed_out", f"no answer within {plan.bot.timeout_seconds or self.timeout} s"
        except BadResult as exc:
            outcome, error = "failed", str(exc)
        except Exception as exc:  # the bot's code or its server: the customer still gets an answer
            log.warning("bot %s failed on message %s", plan.bot.id, plan.turn.message.id, exc_info=True)
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        latency_ms = int((time.perf_counter() - started) * 1000)
        if error is not None:
            result = TurnResult(
                replies=[{"type": "text", "text": fallback}],
                memory=plan.turn.memory,
                handoff=Handoff(reason=f"bot {outcome}"),
            )
            replies = replies_of(result)
        try:
            await self.runtime.apply(plan, result, replies, outcome, error, latency_ms)
        except SQLAlchemyError as exc:
            raise RetryLater(f"applying the turn failed: {type(exc).__name__}", code="database") from exc
        except ParleyError as exc:  # e.g. the channel can no longer send: retrying cannot help
            raise GiveUp(exc.message, code=exc.code) from exc

    @contextmanager
    def _turns_of(self, conversation_id: str) -> Iterator[asyncio.Lock]:
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._waiting[conversation_id] = self._waiting.get(conversation_id, 0) + 1
        try:
            yield lock
        finally:
            self._waiting[conversation_id] -= 1
            if not self._waiting[conversation_id]:
                del self._waiting[conversation_id], self._locks[conversation_id]
