"""A brain whose understanding and dialogue live in an external Rasa server.

Each turn is one call to Rasa's REST channel, ``POST {url}/webhooks/rest/webhook`` with
``{"sender": <conversation id>, "message": <text>, "metadata": {...}}``; Rasa runs its NLU,
its policies and its custom actions (through its own action server) and answers a list of
bot messages, each mapped to a Parley reply:

| Rasa answers | Parley reply |
| --- | --- |
| ``{"text"}`` | ``{"type": "text", "text"}`` |
| ``{"text", "buttons": [{"title", "payload"}]}`` | ``{"type": "buttons", "text", "buttons"}`` |
| ``{"image"}`` | ``{"type": "media", "url"}`` |
| ``{"attachment"}`` (a URL, or ``{"payload": {"src"}}``) | ``{"type": "media", "url"}`` |
| ``{"custom": {"handoff": true, "reason"?, "team"?}}`` | hand the conversation to agents |
| ``{"custom": {"set_attributes": {...}}}`` | set attributes on the contact |
| ``{"custom": {"event": {"name", "payload"?}}}`` | record a trigger event |
| any other ``custom`` | ignored (Parley does not guess what a custom payload means) |

In a Rasa custom action, hand off with
``dispatcher.utter_message(json_message={"handoff": True, "team": "billing"})``. Rasa keeps
its own tracker per ``sender``, so the conversation id is the Rasa sender id and the
brain keeps no memory of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bots.turn import Handoff, TriggerEvent, Turn, TurnResult

DEFAULT_FALLBACK = "Sorry, something went wrong on my side. Let me get you a person."


class BadAnswer(ValueError):
    """The bot's server answered something that is not a turn's answer."""


class RasaRestBrain:
    """``url``: the Rasa server (``http://rasa:5005``); ``http``: the caller's client."""

    def __init__(
        self, url: str, http: httpx.AsyncClient, *, fallback: str = DEFAULT_FALLBACK
    ) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self.fallback = fallback

    async def turn(self, turn: Turn) -> TurnResult:
        response = await self.http.post(
            f"{self.url}/webhooks/rest/webhook",
            json={
                "sender": turn.conversation_id,
                "message": turn.message.text,
                "metadata": {
                    "channel_type": turn.channel_type,
                    "contact_id": turn.contact.get("id"),
                    "message_id": turn.message.id,
                },
            },
        )
        response.raise_for_status()
        answers = response.json()
        if not isinstance(answers, list):
            raise BadAnswer("the Rasa REST channel answered something other than a list")
        return from_rasa(answers)


def from_rasa(answers: Sequence[Any]) -> TurnResult:
    """Rasa's bot messages as a ``TurnResult`` (see the module's table)."""
    replies: list[dict[str, Any]] = []
    attributes: dict[str, Any] = {}
    events: list[TriggerEvent] = []
    handoff: Handoff | None = None
    for answer in answers:
        if not isinstance(answer, Mapping):
            continue
        text = answer.get("text")
        buttons = answer.get("buttons") or answer.get("quick_replies")
        if isinstance(text, str) and text and buttons:
            replies.append({"type": "buttons", "text": text, "buttons": _buttons(buttons)})
        elif isinstance(text, str) and text:
            replies.append({"type": "text", "text": text})
        for url in (answer.get("image"), _attachment_url(answer.get("attachment"))):
            if isinstance(url, str) and url:
                replies.append({"type": "media", "url": url})
        custom = answer.get("custom")
        if isinstance(custom, Mapping):
            if custom.get("handoff"):
                team = custom.get("team")
                handoff = Handoff(str(custom.get("reason") or ""), str(team) if team else None)
            if isinstance(custom.get("set_attributes"), Mapping):
                attributes.update(custom["set_attributes"])
            event = custom.get("event")
            if isinstance(event, Mapping) and isinstance(event.get("name"), str):
                events.append(TriggerEvent(event["name"], dict(event.get("payload") or {})))
    return TurnResult(
        replies=replies, set_attributes=attributes, events=events, handoff=handoff,
        handler="rasa",
    )


def _buttons(buttons: Any) -> list[dict[str, str]]:
    return [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", b.get("title", "")))}
        for b in buttons
        if isinstance(b, Mapping)
    ]


def _attachment_url(attachment: Any) -> str | None:
    if isinstance(attachment, str):
        return attachment
    if isinstance(attachment, Mapping):
        payload = attachment.get("payload")
        if isinstance(payload, Mapping) and isinstance(payload.get("src"), str):
            return str(payload["src"])
    return None
