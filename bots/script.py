"""A bot scripted in Python: intents declared by examples, handlers that answer.

```python
bot = Bot("support", threshold=0.5, fallback="Sorry?")

@bot.intent("order_status", examples=["where is my order", "track order 12345"],
            entities=[Regex("order_id", r"\\b\\d{5,}\\b")],
            requires={"order_id": "What is your order number?"})
async def order_status(ctx):
    ctx.emit("order.status_requested", {"order_id": ctx.slots["order_id"]})
    ctx.reply("Checking...")
```

One turn (``Bot.turn``, the ``Brain`` protocol):

1. a message ``/intent`` or ``/intent{"entity": "value"}`` (a button's payload, a Rasa
   widget's ``initPayload``) names the intent itself, score 1.0; so does a number or a
   title answering the bot's latest buttons (SMS shows buttons as numbered text);
2. otherwise the classifier ranks the intents; below ``threshold`` the fallback answers;
3. the intent's entities are looked for and fill the slots of the same names;
4. a slot the intent ``requires`` that is still empty is asked for, and the next message
   is read as its answer first (a confident other intent changes the subject);
5. the handler runs: ``async def`` on the loop, a plain ``def`` in a thread. Its exceptions
   propagate: the runtime answers with ``fallback`` and hands the conversation off.

``TurnResult.memory`` is ``{"slots": {...}}`` plus ``"awaiting"`` while a question is open.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bots.context import Context
from bots.entities import Entity, Found, find_all
from bots.nlu import Classifier, ExampleClassifier, Prediction, predict
from bots.text import normalise
from bots.turn import Turn, TurnResult

Handler = Callable[[Context], Awaitable[Any] | Any]
H = TypeVar("H", bound=Handler)
PAYLOAD = re.compile(r"^/([A-Za-z_][\w.-]*)\s*(\{.*\})?\s*$", re.DOTALL)
DEFAULT_FALLBACK = "Sorry, I did not understand that."
MAX_ASKS = 2  # a required slot is asked for at most this many times in a row


@dataclass
class Intent:
    name: str
    examples: Sequence[str]
    entities: Sequence[Entity] = ()
    requires: Mapping[str, str] = field(default_factory=dict)
    handler: Handler | None = None
    handler_name: str = ""


def handler_name(handler: Callable[..., Any]) -> str:
    for attribute in ("handler_name", "__qualname__", "__name__"):
        name = getattr(handler, attribute, None)
        if isinstance(name, str) and name:
            return name.rsplit("<locals>.", 1)[-1]
    return repr(handler)


async def call_handler(handler: Handler, ctx: Context) -> None:
    """Runs ``handler``: awaited when async, in a worker thread when it blocks. A returned
    string is a reply."""
    method = inspect.getattr_static(type(handler), "__call__", None)  # an async callable object
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(method):
        outcome = await handler(ctx)
    else:
        outcome = await asyncio.to_thread(handler, ctx)
        if inspect.isawaitable(outcome):
            outcome = await outcome
    if isinstance(outcome, str):
        ctx.reply(outcome)


def chosen_button(turn: Turn) -> str | None:
    """The payload of the button the customer picked by answering its number ("2") or its
    title, when the bot's latest message was buttons: on SMS buttons arrive as numbered
    text, and the answer is a number."""
    latest = next((m for m in reversed(turn.history) if m.get("direction") == "outbound"), None)
    content = (latest or {}).get("content") or {}
    if content.get("type") != "buttons":
        return None
    buttons = content.get("buttons") or []
    answer = turn.message.text.strip().rstrip(".)").strip()
    if answer.isdigit() and len(answer) <= 2 and 1 <= int(answer) <= len(buttons):
        return str(buttons[int(answer) - 1].get("payload") or "") or None
    for button in buttons:
        if normalise(str(button.get("title", ""))) == normalise(answer) and normalise(answer):
            return str(button.get("payload") or "") or None
    return None


class Bot:
    """A scripted bot; implements ``bots.turn.Brain``."""

    def __init__(
        self,
        name: str,
        *,
        threshold: float = 0.5,
        fallback: str = DEFAULT_FALLBACK,
        classifier: Classifier | None = None,
        responses: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
        self.name = name
        self.threshold = threshold
        self.fallback = fallback
        self.responses: dict[str, Any] = dict(responses or {})
        self.intents: dict[str, Intent] = {}
        self.actions: dict[str, Handler] = {}  # rasa_sdk actions by name, for FollowupAction
        self.classifier: Classifier = classifier or ExampleClassifier()
        self._fallback_handler: Handler | None = None
        self._trained = False
        caller = sys._getframe(1)
        self.defined_at = (caller.f_code.co_filename, caller.f_lineno)

    # Declaring.
    def intent(
        self,
        name: str,
        examples: Iterable[str] = (),
        *,
        entities: Iterable[Entity] = (),
        requires: Mapping[str, str] | None = None,
    ) -> Callable[[H], H]:
        """Declares an intent; decorates its handler."""
        examples = [examples] if isinstance(examples, str) else list(examples)
        if not name or not PAYLOAD.match("/" + name):
            raise ValueError(f"intent name {name!r}: use letters, digits, _ . -")
        if name in self.intents:
            raise ValueError(f"intent {name!r} is declared twice")
        if not all(isinstance(e, str) and e.strip() for e in examples):
            raise ValueError(f"intent {name!r}: examples must be non-empty strings")
        intent = Intent(name, examples, list(entities), dict(requires or {}))
        self.intents[name] = intent
        self._trained = False

        def decorate(handler: H) -> H:
            intent.handler = handler
            intent.handler_name = handler_name(handler)
            return handler

        return decorate

    def on_fallback(self, handler: H) -> H:
        """The handler for messages no intent matches (default: reply ``fallback``)."""
        self._fallback_handler = handler
        return handler

    def rasa_action(
        self,
        action: Any,
        *,
        intent: str | None = None,
        examples: Iterable[str] = (),
        entities: Iterable[Entity] = (),
        requires: Mapping[str, str] | None = None,
    ) -> Any:
        """Runs a ``rasa_sdk.Action`` (class or instance) for ``intent``; also makes it the
        target of other actions' ``FollowupAction``. Returns ``action`` unchanged."""
        from bots.rasa_actions import action_handler

        handler = action_handler(self, action)
        self.actions[handler.action_name] = handler
        if intent is not None:
            self.intent(intent, examples, entities=entities, requires=requires)(handler)
        return action

    # Understanding.
    def train(self) -> None:
        """Fits the classifier on the examples (done on the first turn otherwise)."""
        examples = [(text, i.name) for i in self.intents.values() for text in i.examples]
        if not examples:
            raise ValueError(f"bot {self.name!r} has no intent with examples")
        missing = [i.name for i in self.intents.values() if i.handler is None]
        if missing:
            raise ValueError(f"bot {self.name!r}: intents without a handler: {missing}")
        self.classifier.fit(examples)
        self._trained = True

    def classify(self, text: str) -> Prediction:
        if not self._trained:
            self.train()
        return predict(self.classifier, text, self.threshold)

    # Answering.
    async def turn(self, turn: Turn) -> TurnResult:
        if not self._trained:
            self.train()
        memory = turn.memory
        slots = dict(memory.get("slots") or {})
        awaiting = memory.get("awaiting") if isinstance(memory.get("awaiting"), dict) else None
        text = chosen_button(turn) or turn.message.text
        named = self._named_intent(text)
        if named is not None:
            intent, found = named
            return await self._run(turn, intent, 1.0, found, slots)
        prediction = self.classify(text)
        if awaiting and awaiting.get("intent") in self.intents:
            pending = self.intents[awaiting["intent"]]
            found = find_all(pending.entities, text)
            if any(f.entity == awaiting.get("slot") for f in found):
                return await self._run(turn, pending, 1.0, found, slots)
            if prediction.intent is None and int(awaiting.get("asked", 0)) < MAX_ASKS:
                return self._ask(turn, pending, prediction.score, slots, awaiting)
        if prediction.intent is None:
            return await self._fall_back(turn, prediction, slots)
        intent = self.intents[prediction.intent]
        found = find_all(intent.entities, text)
        return await self._run(turn, intent, prediction.score, found, slots)

    def _named_intent(self, text: str) -> tuple[Intent, list[Found]] | None:
        match = PAYLOAD.match(text.strip())
        if not match or match.group(1) not in self.intents:
            return None
        found = []
        if match.group(2):
            try:
                values = json.loads(match.group(2))
            except ValueError:
                values = {}
            if isinstance(values, dict):
                found = [Found(str(k), str(v), -1, -1, str(v)) for k, v in values.items()]
        return self.intents[match.group(1)], found

    async def _run(
        self,
        turn: Turn,
        intent: Intent,
        score: float,
        found: Sequence[Found],
        slots: dict[str, Any],
    ) -> TurnResult:
        for item in found:
            slots[item.entity] = item.value
        for slot in intent.requires:
            if slots.get(slot) in (None, ""):
                return self._ask(turn, intent, score, slots, {"intent": intent.name, "slot": slot})
        ctx = Context(
            turn, intent=intent.name, score=score, found=found, slots=slots, responses=self.responses
        )
        assert intent.handler is not None  # train() checked
        await call_handler(intent.handler, ctx)
        return ctx.result(intent.handler_name)

    def _ask(
        self,
        turn: Turn,
        intent: Intent,
        score: float,
        slots: Mapping[str, Any],
        awaiting: Mapping[str, Any],
    ) -> TurnResult:
        slot = str(awaiting.get("slot"))
        ctx = Context(turn, intent=intent.name, score=score, slots=slots)
        ctx.reply(intent.requires.get(slot) or f"What is the {slot}?")
        ctx.memory["awaiting"] = {
            "intent": intent.name, "slot": slot, "asked": int(awaiting.get("asked", 0)) + 1
        }
        return ctx.result(f"ask:{slot}")

    async def _fall_back(
        self, turn: Turn, prediction: Prediction, slots: Mapping[str, Any]
    ) -> TurnResult:
        ctx = Context(turn, intent=None, score=prediction.score, slots=slots, responses=self.responses)
        if self._fallback_handler is None:
            ctx.reply(self.fallback)
            return ctx.result("fallback")
        await call_handler(self._fallback_handler, ctx)
        return ctx.result(handler_name(self._fallback_handler))

    def __repr__(self) -> str:
        return f"Bot({self.name!r}, intents={list(self.intents)})"
