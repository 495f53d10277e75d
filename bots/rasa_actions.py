"""Rasa custom actions (``rasa_sdk.Action``) run inside a scripted bot.

``bot.rasa_action(ActionCheckOrder, intent="check_order", examples=[...])`` makes the
action the intent's handler. Each run gets a real ``rasa_sdk.Tracker`` built from the
turn and a ``CollectingDispatcher``; what the action says and returns is applied:

| rasa_sdk | Parley |
| --- | --- |
| ``tracker.sender_id`` / ``user_id`` | the conversation id / the contact's id |
| ``tracker.slots`` | the bot's slots (``Turn.memory["slots"]``) |
| ``tracker.latest_message`` | ``text``, ``intent`` {name, confidence}, ``entities``, ``intent_ranking``, ``metadata`` {channel, contact} |
| ``tracker.events`` | the history as ``user`` / ``bot`` events, then this message's ``user`` event |
| ``tracker.active_loop`` | ``{}`` (no forms) |
| ``utter_message(text=)`` | a text reply |
| ``utter_message(text=, buttons=[{title, payload}])`` | quick replies |
| ``utter_message(image=)`` / ``attachment=`` | media (``text`` becomes its caption) |
| ``utter_message(response="utter_x", **values)`` | the bot's ``responses["utter_x"]``, ``{slot}`` and ``values`` filled in |
| ``utter_message(json_message={"type": "location", ...})`` | that Parley content as is (a ``json_message`` with only ``text`` is a text) |
| ``SlotSet``, ``AllSlotsReset``, ``Restarted`` | the slots remembered for the conversation |
| ``FollowupAction(name)`` | runs the bot's action (or says its response) ``name`` next, in the same turn |
| ``ConversationPaused`` | hand-off to human agents |
| ``BotUttered(text)`` | a text reply |

Ignored (no meaning without Rasa Core's dialogue policies): ``elements`` (carousels; their
text is kept), ``ActiveLoop``/forms, ``ReminderScheduled``/``ReminderCancelled``,
``UserUtteranceReverted``, ``ActionReverted``, ``ActionExecuted``, ``ConversationResumed``,
``SessionStarted``, ``StoryExported`` and any other event. ``rasa_sdk`` is imported only
when an action is bound, so a default install does not need it (``pip install
'parley[rasa]'``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bots.context import Context, render_response

if TYPE_CHECKING:
    from bots.script import Bot

log = logging.getLogger(__name__)
MAX_FOLLOWUPS = 10
CONTENT_TYPES = {"text", "media", "buttons", "location", "template"}


class RasaActionHandler:
    """A bot handler that runs one ``rasa_sdk`` action (and its follow-ups)."""

    def __init__(self, bot: Bot, action: Any) -> None:
        try:
            from rasa_sdk import Action
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "Rasa actions need rasa_sdk: pip install 'parley[rasa]'"
            ) from exc
        instance = action() if isinstance(action, type) else action
        if not isinstance(instance, Action):
            raise TypeError(f"{action!r} is not a rasa_sdk.Action")
        self.bot = bot
        self.action = instance
        self.action_name = str(instance.name())
        self.handler_name = f"rasa:{self.action_name}"

    async def __call__(self, ctx: Context) -> None:
        name: str | None = self.action_name
        for _ in range(MAX_FOLLOWUPS):
            if name is None or name == "action_listen":
                return
            if name in self.bot.actions:
                target = self.bot.actions[name]
                if not isinstance(target, RasaActionHandler):
                    raise TypeError(f"{name!r} is not a rasa action")
                name = await target.run_once(ctx)
            elif name in self.bot.responses:
                ctx.utter(name)
                name = None
            else:
                raise LookupError(
                    f"FollowupAction {name!r}: the bot has no such action or response "
                    f"(actions {sorted(self.bot.actions)}, responses {sorted(self.bot.responses)})"
                )
        raise RuntimeError(f"more than {MAX_FOLLOWUPS} follow-up actions in one turn")

    async def run_once(self, ctx: Context) -> str | None:
        """Runs the action; applies its messages and events; the follow-up's name if any."""
        from rasa_sdk.executor import CollectingDispatcher

        dispatcher = CollectingDispatcher()
        tracker = build_tracker(ctx)
        domain = rasa_domain(self.bot)
        if inspect.iscoroutinefunction(self.action.run):
            events = await self.action.run(dispatcher, tracker, domain)
        else:
            events = await asyncio.to_thread(self.action.run, dispatcher, tracker, domain)
            if inspect.isawaitable(events):
                events = await events
        for message in dispatcher.messages:
            apply_message(ctx, message)
        return apply_events(ctx, events or [])


def action_handler(bot: Bot, action: Any) -> RasaActionHandler:
    return RasaActionHandler(bot, action)


def build_tracker(ctx: Context) -> Any:
    """A real ``rasa_sdk.Tracker`` for the turn ``ctx`` is answering."""
    from rasa_sdk import Tracker

    entities = [
        {"entity": f.entity, "value": f.value, "start": f.start, "end": f.end,
         "extractor": "parley"}
        for f in ctx.found
    ]
    intent = {"name": ctx.intent, "confidence": ctx.score}
    latest = {
        "text": ctx.text,
        "intent": intent,
        "entities": entities,
        "intent_ranking": [intent],
        "message_id": ctx.turn.message.id,
        "metadata": {"channel": ctx.channel, "contact": dict(ctx.contact)},
    }
    events: list[dict[str, Any]] = []
    for item in ctx.turn.history:
        content = item.get("content") or {}
        text = content.get("text") or content.get("caption") or content.get("payload")
        kind = "user" if item.get("direction") == "inbound" else "bot"
        if item.get("author_type") == "agent":
            kind = "agent"  # AgentUttered: a person answered
        events.append({"event": kind, "text": text, "timestamp": None})
    events.append({"event": "user", "text": ctx.text, "parse_data": latest, "timestamp": None})
    return Tracker(
        sender_id=ctx.conversation_id,
        slots=dict(ctx.slots),
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
        user_id=str(ctx.contact.get("id")) if ctx.contact.get("id") is not None else None,
    )


def rasa_domain(bot: Bot) -> dict[str, Any]:
    """The bot described as a Rasa domain (what ``domain`` holds in ``run``)."""
    entities = sorted({e.name for i in bot.intents.values() for e in i.entities})
    slots = sorted({*entities, *(s for i in bot.intents.values() for s in i.requires)})
    responses = {}
    for name, response in bot.responses.items():
        variants = response if isinstance(response, (list, tuple)) else [response]
        responses[name] = [{"text": v} if isinstance(v, str) else dict(v) for v in variants]
    return {
        "version": "3.1",
        "intents": list(bot.intents),
        "entities": entities,
        "slots": {s: {"type": "any", "mappings": [{"type": "from_entity", "entity": s}]}
                  for s in slots},
        "responses": responses,
        "actions": sorted(bot.actions),
        "forms": {},
    }


def apply_message(ctx: Context, message: Mapping[str, Any]) -> None:
    """One ``dispatcher.utter_message`` call as a reply."""
    text = message.get("text")
    response = message.get("response") or message.get("template")
    if response:
        if response not in ctx.responses:
            raise LookupError(f"utter_message(response={response!r}): the bot has no such response")
        known = {"text", "buttons", "elements", "custom", "template", "response", "image",
                 "attachment"}
        values = {**ctx.slots, **{k: v for k, v in message.items() if k not in known}}
        ctx.replies.append(render_response(ctx.responses[response], values))
        return
    custom = message.get("custom") or {}
    if custom:
        if custom.get("type") in CONTENT_TYPES:
            ctx.replies.append(dict(custom))
        elif isinstance(custom.get("text"), str):
            ctx.reply(custom["text"])
        else:
            log.info("rasa action %s: json_message without a Parley content type ignored",
                     ctx.intent)
        return
    buttons: Sequence[Mapping[str, Any]] = message.get("buttons") or []
    media = message.get("image") or message.get("attachment")
    if isinstance(media, Mapping):  # Rasa's {"type": ..., "payload": {"src"/"url": ...}}
        payload = media.get("payload") or {}
        media = payload.get("src") or payload.get("url") or media.get("url")
    if buttons:
        ctx.buttons(text or "", [
            (str(b.get("title", "")), str(b.get("payload", b.get("title", "")))) for b in buttons
        ])
    elif media:
        ctx.media(str(media), caption=text or None)
    elif text:
        ctx.reply(text)


def apply_events(ctx: Context, events: Sequence[Mapping[str, Any]]) -> str | None:
    """The action's events applied to ``ctx``; the last ``FollowupAction``'s name."""
    followup = None
    for event in events:
        kind = event.get("event")
        if kind == "slot":
            if event.get("value") is None:
                ctx.slots.pop(str(event["name"]), None)
            else:
                ctx.slots[str(event["name"])] = event["value"]
        elif kind in ("reset_slots", "restart"):
            ctx.slots.clear()
        elif kind == "followup":
            followup = str(event["name"])
        elif kind == "pause":
            ctx.handoff("paused by a rasa action")
        elif kind == "bot" and event.get("text"):
            ctx.reply(str(event["text"]))
        else:
            log.debug("rasa event %r ignored", kind)
    return followup
