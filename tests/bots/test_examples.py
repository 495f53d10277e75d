"""The example support bot: its behaviour, and its accuracy on its held-out sample."""

from __future__ import annotations

import json
from pathlib import Path

from bots import Handoff, TriggerEvent
from bots.examples.support import bot
from bots.text import normalise
from tests.bots.helpers import talk, texts, turn

SAMPLE = Path(__file__).resolve().parents[2] / "bots" / "examples" / "support_eval.jsonl"


def sample() -> list[dict[str, str | None]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_the_sample_is_big_enough_and_not_in_the_training_examples() -> None:
    rows = sample()
    assert len(rows) >= 150
    assert sum(1 for r in rows if r["intent"] is None) >= 30  # out of scope
    taught = {normalise(e) for i in bot.intents.values() for e in i.examples}
    assert not [r["text"] for r in rows if normalise(str(r["text"])) in taught]
    assert {r["intent"] for r in rows} - {None} == set(bot.intents)


def test_accuracy_on_the_held_out_sample_is_at_least_90_percent() -> None:
    rows = sample()
    wrong = [(r["text"], r["intent"], bot.classify(str(r["text"])).intent) for r in rows
             if bot.classify(str(r["text"])).intent != r["intent"]]
    assert 1 - len(wrong) / len(rows) >= 0.90, wrong


async def test_order_status_asks_for_the_number_then_emits_the_trigger_event() -> None:
    asked, checked = await talk(bot, "where's my order?", "it is 1234567")
    assert texts(asked) == ["Sure, what is your order number?"]
    assert checked.events == (TriggerEvent("order.status_requested", {"order_id": "1234567"}),)
    assert "checking order 1234567" in texts(checked)[0]


async def test_greeting_by_name_hours_human_and_fallback() -> None:
    hello = await bot.turn(turn("hello there"))
    assert hello.replies[0]["text"] == "Hello Ann! How can I help?"
    assert [b["payload"] for b in hello.replies[0]["buttons"]] == [
        "/opening_hours", "/order_status", "/human"]
    assert "Monday to Friday" in texts(await bot.turn(turn("/opening_hours")))[0]
    human = await bot.turn(turn("I want to talk to a real person"))
    assert human.handoff == Handoff("asked for a person", "support")
    lost = await bot.turn(turn("what's the weather in Oslo?"))
    assert lost.intent is None and lost.replies[0]["text"] == bot.fallback
