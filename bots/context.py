"""What a handler is given: the turn, what was understood, and ways to answer.

Handlers never send anything: each method records what the bot wants, and the bot turns
the records into one ``TurnResult`` when the handler returns.

| read | what |
| --- | --- |
| ``ctx.text`` | the customer's words (a button's payload, a media caption) |
| ``ctx.contact`` | the contact's profile: name, email, phone, locale, ``attributes`` ... |
| ``ctx.conversation_id``, ``ctx.channel`` | where the conversation is (``"sms"``, ``"inapp"`` ...) |
| ``ctx.intent``, ``ctx.score`` | what the classifier understood (``None`` in the fallback) |
| ``ctx.entities`` | entity values found in this message, by name (the first of each) |
| ``ctx.slots`` | values remembered across turns; assign to remember more |

| answer | becomes |
| --- | --- |
| ``ctx.reply(text)`` | a text message |
| ``ctx.buttons(text, [(title, payload), ...])`` | quick replies (numbered text where a channel has no buttons) |
| ``ctx.media(url, caption=, mime_type=)`` | an image, a file ... |
| ``ctx.set_attribute(key, value)`` | the contact's profile attribute |
| ``ctx.emit(name, payload)`` | a trigger event (flows and webhooks react to it) |
| ``ctx.handoff(reason, team=)`` | the conversation goes to human agents |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bots.entities import Found
from bots.turn import Handoff, TriggerEvent, Turn, TurnResult


class Context:
    def __init__(
        self,
        turn: Turn,
        *,
        intent: str | None,
        score: float,
        found: Sequence[Found] = (),
        slots: Mapping[str, Any] | None = None,
        responses: Mapping[str, Any] | None = None,
    ) -> None:
        self.turn = turn
        self.intent = intent
        self.score = score
        self.found = list(found)
        self.slots: dict[str, Any] = dict(slots or {})
        self.responses = responses or {}
        self.replies: list[dict[str, Any]] = []
        self.attributes: dict[str, Any] = {}
        self.events: list[TriggerEvent] = []
        self.handed_off: Handoff | None = None
        self.memory: dict[str, Any] = {}  # the bot's own bookkeeping beside the slots

    # What the turn is about.
    @property
    def text(self) -> str:
        return self.turn.message.text

    @property
    def contact(self) -> Mapping[str, Any]:
        return self.turn.contact

    @property
    def conversation_id(self) -> str:
        return self.turn.conversation_id

    @property
    def channel(self) -> str:
        return self.turn.channel_type

    @property
    def entities(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for item in self.found:
            first.setdefault(item.entity, item.value)
        return first

    # Answers.
    def reply(self, text: str) -> None:
        self.replies.append({"type": "text", "text": str(text)})

    def buttons(self, text: str, buttons: Iterable[tuple[str, str] | Mapping[str, str]]) -> None:
        shaped = []
        for button in buttons:
            if isinstance(button, Mapping):
                title, payload = button["title"], button.get("payload", button["title"])
            else:
                title, payload = button
            shaped.append({"title": str(title), "payload": str(payload)})
        if not shaped:
            raise ValueError("buttons() needs at least one (title, payload)")
        self.replies.append({"type": "buttons", "text": str(text), "buttons": shaped})

    def media(self, url: str, caption: str | None = None, mime_type: str | None = None) -> None:
        content: dict[str, Any] = {"type": "media", "url": url}
        if mime_type:
            content["mime_type"] = mime_type
        if caption:
            content["caption"] = caption
        self.replies.append(content)

    def utter(self, name: str) -> None:
        """Say one of the bot's ``responses`` (Rasa's ``utter_...``), slots filled in."""
        if name not in self.responses:
            raise KeyError(f"no response named {name!r}; the bot has {sorted(self.responses)}")
        self.replies.append(render_response(self.responses[name], self.slots))

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def emit(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        self.events.append(TriggerEvent(name, dict(payload or {})))

    def handoff(self, reason: str = "", team: str | None = None) -> None:
        self.handed_off = Handoff(reason, team)

    def result(self, handler: str) -> TurnResult:
        memory = {**self.memory, "slots": dict(self.slots)}
        return TurnResult(
            replies=tuple(self.replies),
            set_attributes=dict(self.attributes),
            events=tuple(self.events),
            handoff=self.handed_off,
            memory=memory,
            intent=self.intent,
            score=round(self.score, 4),
            handler=handler,
        )


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_response(response: Any, slots: Mapping[str, Any]) -> dict[str, Any]:
    """A response (a text, or a Rasa-style ``{"text", "buttons", "image"}``; a list means
    its first variant) as Parley content, ``{slot}`` placeholders filled in."""
    if isinstance(response, (list, tuple)):
        response = response[0]
    values = _Blank({k: "" if v is None else v for k, v in slots.items()})
    if isinstance(response, str):
        return {"type": "text", "text": response.format_map(values)}
    text = str(response.get("text", "")).format_map(values)
    if response.get("buttons"):
        buttons = [
            {"title": str(b["title"]), "payload": str(b.get("payload", b["title"]))}
            for b in response["buttons"]
        ]
        return {"type": "buttons", "text": text, "buttons": buttons}
    if response.get("image"):
        content: dict[str, Any] = {"type": "media", "url": str(response["image"])}
        if text:
            content["caption"] = text
        return content
    return {"type": "text", "text": text}
