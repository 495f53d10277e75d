"""rasa_sdk custom actions run by a Parley bot, with a real Tracker and dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    AllSlotsReset,
    ConversationPaused,
    FollowupAction,
    ReminderScheduled,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

from bots import Bot, Handoff, Regex
from tests.bots.helpers import talk, turn

SEEN: list[Tracker] = []


class ActionCheckOrder(Action):
    def name(self) -> str:
        return "action_check_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        SEEN.append(tracker)
        order = next(tracker.get_latest_entity_values("order_id"), None) or tracker.get_slot("order_id")
        dispatcher.utter_message(text=f"Order {order} is on its way")
        dispatcher.utter_message(text="Anything else?", buttons=[
            {"title": "No", "payload": "/goodbye"}, {"title": "Hours", "payload": "/hours"}])
        dispatcher.utter_message(image="https://cdn.example.com/map.png", text="Where it is")
        dispatcher.utter_message(response="utter_thanks", name="Ann")
        dispatcher.utter_message(json_message={"type": "location", "latitude": 1.5, "longitude": 2.5})
        return [SlotSet("last_order", order), SlotSet("order_id", None),
                ReminderScheduled("EXTERNAL_remind", trigger_date_time=datetime(2030, 1, 1))]


class ActionSyncGreet(Action):
    def name(self) -> str:
        return "action_sync_greet"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,  # type: ignore[override]
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=f"Hi, last order {tracker.get_slot('last_order')}")
        return [FollowupAction("action_escalate")]


class ActionEscalate(Action):
    def name(self) -> str:
        return "action_escalate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_escalate")
        return [ConversationPaused(), FollowupAction("utter_bye")]


class ActionForget(Action):
    def name(self) -> str:
        return "action_forget"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        return [AllSlotsReset(), FollowupAction("action_nowhere")]


def rasa_bot() -> Bot:
    bot = Bot("rasa", threshold=0.4, responses={
        "utter_thanks": "Thanks {name}, order {order_id}",
        "utter_escalate": {"text": "Escalating", "buttons": [{"title": "OK", "payload": "/ok"}]},
        "utter_bye": [{"text": "Bye!"}],
    })
    bot.rasa_action(ActionCheckOrder, intent="check_order",
                    examples=["where is my order", "check order 12345"],
                    entities=[Regex("order_id", r"\b\d{5,}\b")])
    bot.rasa_action(ActionSyncGreet(), intent="greet", examples=["hello", "hi there"])
    bot.rasa_action(ActionEscalate)
    bot.rasa_action(ActionForget, intent="forget", examples=["forget everything"])
    return bot


async def test_the_tracker_is_built_from_the_turn() -> None:
    SEEN.clear()
    history = [{"seq": 1, "direction": "inbound", "author_type": "contact",
                "content": {"type": "text", "text": "hello"}},
               {"seq": 2, "direction": "outbound", "author_type": "bot",
                "content": {"type": "text", "text": "Hi!"}}]
    await rasa_bot().turn(turn("check order 55555 please", {"slots": {"plan": "pro"}},
                               history=history))
    tracker = SEEN[-1]
    assert isinstance(tracker, Tracker)
    assert tracker.sender_id == "cnv_test" and tracker.user_id == "ct_1"
    assert tracker.get_slot("order_id") == "55555" and tracker.get_slot("plan") == "pro"
    assert tracker.latest_message["text"] == "check order 55555 please"
    assert tracker.get_intent_of_latest_message() == "check_order"
    assert list(tracker.get_latest_entity_values("order_id")) == ["55555"]
    assert tracker.latest_message["metadata"]["channel"] == "sms"
    assert [(e["event"], e["text"]) for e in tracker.events] == [
        ("user", "hello"), ("bot", "Hi!"), ("user", "check order 55555 please")]
    assert tracker.active_loop == {} and tracker.latest_action_name == "action_listen"
    assert tracker.is_paused() is False


async def test_dispatcher_messages_become_replies_and_slot_events_become_memory() -> None:
    result = await rasa_bot().turn(turn("check order 55555"))
    assert list(result.replies) == [
        {"type": "text", "text": "Order 55555 is on its way"},
        {"type": "buttons", "text": "Anything else?", "buttons": [
            {"title": "No", "payload": "/goodbye"}, {"title": "Hours", "payload": "/hours"}]},
        {"type": "media", "url": "https://cdn.example.com/map.png", "caption": "Where it is"},
        {"type": "text", "text": "Thanks Ann, order 55555"},
        {"type": "location", "latitude": 1.5, "longitude": 2.5},
    ]
    assert result.memory["slots"] == {"last_order": "55555"}  # order_id set to None: gone
    assert (result.intent, result.handler) == ("check_order", "rasa:action_check_order")


async def test_a_sync_run_followups_responses_and_pause() -> None:
    _first, second = await talk(rasa_bot(), "check order 77777", "hi there")
    assert second.replies[0] == {"type": "text", "text": "Hi, last order 77777"}
    assert second.replies[1] == {"type": "buttons", "text": "Escalating",
                                 "buttons": [{"title": "OK", "payload": "/ok"}]}
    assert second.replies[2] == {"type": "text", "text": "Bye!"}
    assert second.handoff == Handoff("paused by a rasa action")


async def test_a_followup_to_an_unknown_action_is_an_error_after_the_slots_reset() -> None:
    with pytest.raises(LookupError, match="action_nowhere"):
        await rasa_bot().turn(turn("forget everything", {"slots": {"a": 1}}))


def test_something_that_is_not_an_action_is_refused() -> None:
    with pytest.raises(TypeError, match="not a rasa_sdk.Action"):
        Bot("b").rasa_action(object)


async def test_the_domain_describes_the_bot() -> None:
    from bots.rasa_actions import rasa_domain

    domain = rasa_domain(rasa_bot())
    assert domain["intents"] == ["check_order", "greet", "forget"]
    assert domain["entities"] == ["order_id"] and "order_id" in domain["slots"]
    assert domain["responses"]["utter_thanks"] == [{"text": "Thanks {name}, order {order_id}"}]
    assert "action_escalate" in domain["actions"]


def test_bots_do_not_import_rasa_sdk_until_an_action_is_bound() -> None:
    import subprocess
    import sys

    code = ("import sys, bots, bots.script, bots.rasa_actions, bots.examples.support\n"
            "assert 'rasa_sdk' not in sys.modules, 'rasa_sdk imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
