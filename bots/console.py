"""Talking to a bot without a server: ``parley bot try`` and ``parley bot shell``.

Each line the customer types is one ``Turn`` on a pretend conversation (``console``, the
``inapp`` channel unless told otherwise); the bot's ``TurnResult`` is printed as text:

    intent  order_status  0.71  (handler order_status)
    bot     Thanks! I am checking order 123456; you will hear from us here shortly.
    event   order.status_requested {"order_id": "123456"}
    slots   {"order_id": "123456"}

The shell keeps the bot's memory (slots) from turn to turn, as Parley does for a
conversation; ``/restart`` forgets it, ``/quit`` (or end of input) leaves. A line starting
with ``/`` that names an intent is sent to the bot (``/greet``), as a button would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from bots.turn import Brain, Turn, TurnMessage, TurnResult

CONVERSATION = "console"
_ids = itertools.count(1)


def make_turn(
    text: str,
    memory: Mapping[str, Any] | None = None,
    *,
    channel: str = "inapp",
    contact: Mapping[str, Any] | None = None,
    history: Iterable[Mapping[str, Any]] = (),
) -> Turn:
    n = next(_ids)
    return Turn(
        workspace_id="ws_console",
        conversation_id=CONVERSATION,
        channel_type=channel,
        message=TurnMessage(id=f"msg_console_{n}", seq=n, content={"type": "text", "text": text}),
        contact=dict(contact or {"id": "ct_console"}),
        memory=dict(memory or {}),
        history=tuple(history),
    )


def as_json(result: TurnResult) -> dict[str, Any]:
    return {
        "intent": result.intent,
        "score": result.score,
        "handler": result.handler,
        "replies": [dict(r) for r in result.replies],
        "set_attributes": dict(result.set_attributes),
        "events": [{"name": e.name, "payload": dict(e.payload)} for e in result.events],
        "handoff": None if result.handoff is None else {
            "reason": result.handoff.reason, "team": result.handoff.team
        },
        "memory": dict(result.memory),
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def describe(result: TurnResult) -> list[str]:
    """The result as the lines ``parley bot try`` prints."""
    score = "-" if result.score is None else f"{result.score:.2f}"
    lines = [f"intent  {result.intent or '(fallback)'}  {score}  (handler {result.handler})"]
    for reply in result.replies:
        kind = reply.get("type")
        if kind == "text":
            lines.append(f"bot     {reply.get('text', '')}")
        elif kind == "buttons":
            lines.append(f"bot     {reply.get('text', '')}")
            for i, button in enumerate(reply.get("buttons", []), 1):
                lines.append(f"          [{i}] {button.get('title')} -> {button.get('payload')}")
        elif kind == "media":
            caption = f"  {reply['caption']}" if reply.get("caption") else ""
            lines.append(f"bot     [media {reply.get('url')}]{caption}")
        else:
            lines.append(f"bot     {_dump(dict(reply))}")
    for key, value in result.set_attributes.items():
        lines.append(f"attr    {key} = {_dump(value)}")
    for event in result.events:
        lines.append(f"event   {event.name} {_dump(dict(event.payload))}")
    if result.handoff is not None:
        team = f" (team {result.handoff.team})" if result.handoff.team else ""
        lines.append(f"handoff {result.handoff.reason or '-'}{team}")
    slots = result.memory.get("slots")
    if slots:
        lines.append(f"slots   {_dump(slots)}")
    return lines


def try_once(brain: Brain, text: str, *, channel: str = "inapp",
             contact: Mapping[str, Any] | None = None) -> TurnResult:
    return asyncio.run(brain.turn(make_turn(text, channel=channel, contact=contact)))


def shell(brain: Brain, stdin: TextIO, stdout: TextIO, *, prompt: bool, channel: str = "inapp",
          contact: Mapping[str, Any] | None = None) -> None:
    """Reads customer lines until ``/quit`` or end of input; memory kept across turns."""

    async def run() -> None:
        memory: Mapping[str, Any] = {}
        history: list[Mapping[str, Any]] = []
        while True:
            if prompt:
                stdout.write("you> ")
                stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line or line.strip() in ("/quit", "/exit", "/stop"):
                return
            text = line.strip()
            if not text:
                continue
            if text == "/restart":
                memory, history = {}, []
                stdout.write("(memory cleared)\n")
                continue
            turn = make_turn(text, memory, channel=channel, contact=contact, history=history[-20:])
            result = await brain.turn(turn)
            memory = result.memory
            history.append({"direction": "inbound", "author_type": "contact",
                            "content": dict(turn.message.content)})
            history.extend({"direction": "outbound", "author_type": "bot", "content": dict(r)}
                           for r in result.replies)
            stdout.write("\n".join(describe(result)) + "\n")
            stdout.flush()

    asyncio.run(run())
