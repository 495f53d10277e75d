"""Tiny brains for the runtime's tests (``bots.turn.Brain``), loaded by reference as a
``python`` bot: ``tests.fakes.brains:brain``.

``brain`` is one ``Scripted`` brain: it records every turn it is given, answers what
``answer`` says (an echo by default), and can be held at ``gate`` until a test releases
it. ``reset()`` puts it back between tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bots.turn import Turn, TurnResult

FALLBACK = "Sorry, something broke. A person will take it from here."


def echo(turn: Turn) -> TurnResult:
    count = int(turn.memory.get("count", 0)) + 1
    return TurnResult(
        replies=[{"type": "text", "text": f"echo: {turn.message.text}"}],
        memory={"count": count},
        intent="echo",
        score=0.9,
        handler="echo",
    )


@dataclass
class Scripted:
    fallback: str = FALLBACK
    answer: Callable[[Turn], TurnResult] = echo
    seen: list[Turn] = field(default_factory=list)
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def turn(self, turn: Turn) -> TurnResult:
        self.seen.append(turn)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.answer(turn)

    def reset(self) -> None:
        self.answer = echo
        self.seen.clear()
        self.gate = None
        self.started = asyncio.Event()


brain = Scripted()


class NotABrain:
    """Has no ``async def turn``: refused when a bot names it."""

    fallback = "no"


not_a_brain = NotABrain()
