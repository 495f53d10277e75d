"""A brain that is a URL: Parley POSTs each turn there and the bot answers.

The request is JSON, signed as Parley's webhooks are (``X-Parley-Signature: t=..,v1=..``,
``bots.signing``), so the bot checks it with the secret both sides know::

    {"type": "bot.turn", "bot_id": "bot_...", "turn": {"workspace_id", "conversation_id",
     "channel_type", "message": {"id", "seq", "content", "text"}, "contact": {...},
     "memory": {...}, "history": [...]}}

The bot answers in the response body (any 2xx)::

    {"replies": [{"type": "text", "text": "Hi!"} or "Hi!", ...],
     "handoff": true or {"reason", "team"} or null, "set_attributes": {...},
     "events": [{"name", "payload"}], "memory": {...}, "intent", "score", "handler"}

or with an empty body (``204``, or ``{}``), and later through Parley's REST API:
``POST /v1/conversations/{conversation_id}/messages`` with
``{"author": {"type": "bot", "id": <bot_id>}, "content": {...}}`` and the workspace's API
key (the pattern of Chatwoot's agent bots). A non-2xx answer, a body that is not this
shape, or no answer within the bot's timeout is a failed turn: Parley sends the fallback
reply and hands the conversation to agents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from bots.signing import HEADER, webhook_signature
from bots.turn import Handoff, TriggerEvent, Turn, TurnResult

DEFAULT_FALLBACK = "Sorry, something went wrong on my side. Let me get you a person."


class BadAnswer(ValueError):
    """The bot's server answered something that is not a turn's answer."""


def turn_json(turn: Turn) -> dict[str, Any]:
    """The turn as the bot receives it."""
    return {
        "workspace_id": turn.workspace_id,
        "conversation_id": turn.conversation_id,
        "channel_type": turn.channel_type,
        "message": {
            "id": turn.message.id,
            "seq": turn.message.seq,
            "content": dict(turn.message.content),
            "text": turn.message.text,
        },
        "contact": dict(turn.contact),
        "memory": dict(turn.memory),
        "history": [dict(h) for h in turn.history],
    }


class HttpBrain:
    def __init__(
        self,
        url: str,
        secret: str,
        http: httpx.AsyncClient,
        *,
        bot_id: str | None = None,
        fallback: str = DEFAULT_FALLBACK,
    ) -> None:
        self.url = url
        self.secret = secret
        self.http = http
        self.bot_id = bot_id
        self.fallback = fallback

    async def turn(self, turn: Turn) -> TurnResult:
        body = json.dumps(
            {"type": "bot.turn", "bot_id": self.bot_id, "turn": turn_json(turn)},
            separators=(",", ":"), default=str,
        ).encode()
        response = await self.http.post(
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                HEADER: webhook_signature(self.secret, body),
            },
        )
        response.raise_for_status()
        if not response.content.strip():
            return TurnResult(memory=turn.memory)
        return parse_answer(response.json(), turn)


def parse_answer(data: Any, turn: Turn) -> TurnResult:
    """The bot's answer body as a ``TurnResult``; ``ValueError`` when it is not that shape."""
    if not isinstance(data, Mapping):
        raise BadAnswer("the bot's answer is not a JSON object")
    replies: list[Mapping[str, Any]] = []
    for reply in data.get("replies") or []:
        if isinstance(reply, str):
            replies.append({"type": "text", "text": reply})
        elif isinstance(reply, Mapping):
            replies.append(reply)
        else:
            raise BadAnswer("a reply is neither a string nor a content object")
    handoff_value = data.get("handoff")
    handoff: Handoff | None = None
    if handoff_value is True:
        handoff = Handoff()
    elif isinstance(handoff_value, Mapping):
        team = handoff_value.get("team")
        handoff = Handoff(str(handoff_value.get("reason") or ""), str(team) if team else None)
    events = [
        TriggerEvent(str(e["name"]), dict(e.get("payload") or {}))
        for e in data.get("events") or []
        if isinstance(e, Mapping) and "name" in e
    ]
    attributes = data.get("set_attributes") or {}
    memory = data.get("memory", turn.memory)
    if not isinstance(attributes, Mapping) or not isinstance(memory, Mapping):
        raise BadAnswer("set_attributes and memory must be JSON objects")
    score = data.get("score")
    return TurnResult(
        replies=replies,
        set_attributes=attributes,
        events=events,
        handoff=handoff,
        memory=memory,
        intent=_str_or_none(data.get("intent")),
        score=float(score) if isinstance(score, int | float) else None,
        handler=_str_or_none(data.get("handler")) or "http",
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
