"""Turns as Parley builds them, for bot tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from bots.turn import Brain, Turn, TurnMessage, TurnResult

_seq = itertools.count(1)


def turn(
    text: str,
    memory: Mapping[str, Any] | None = None,
    *,
    channel: str = "sms",
    contact: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] = (),
    content: Mapping[str, Any] | None = None,
) -> Turn:
    n = next(_seq)
    return Turn(
        workspace_id="ws_test",
        conversation_id="cnv_test",
        channel_type=channel,
        message=TurnMessage(f"msg_{n}", n, content or {"type": "text", "text": text}),
        contact=contact or {"id": "ct_1", "name": "Ann", "attributes": {"plan": "pro"}},
        memory=memory or {},
        history=history,
    )


async def talk(brain: Brain, *texts: str) -> list[TurnResult]:
    """One conversation: each result's memory goes into the next turn."""
    results: list[TurnResult] = []
    memory: Mapping[str, Any] = {}
    for text in texts:
        result = await brain.turn(turn(text, memory))
        memory = result.memory
        results.append(result)
    return results


def texts(result: TurnResult) -> list[str]:
    return [str(r.get("text", "")) for r in result.replies]
