"""A scripted bot's turns: intents, slots, replies of every kind, handlers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bots import Bot, Context, Handoff, Regex, TriggerEvent
from tests.bots.helpers import talk, texts, turn


def shop_bot() -> Bot:
    bot = Bot("shop", threshold=0.45, fallback="Sorry?")

    @bot.intent("greet", examples=["hello", "hi there", "good morning"])
    async def greet(ctx: Context) -> None:
        ctx.reply(f"Hello {ctx.contact['name']} on {ctx.channel}!")

    @bot.intent(
        "order_status", examples=["where is my order", "track order 12345"],
        entities=[Regex("order_id", r"\b\d{5,}\b")],
        requires={"order_id": "Which order number?"},
    )
    async def order_status(ctx: Context) -> None:
        ctx.emit("order.status_requested", {"order_id": ctx.slots["order_id"]})
        ctx.reply(f"Checking {ctx.slots['order_id']} ({ctx.entities.get('order_id', 'remembered')})")

    @bot.intent("menu", examples=["show me the menu", "what can you do"])
    async def menu(ctx: Context) -> None:
        ctx.buttons("Pick one", [("Hours", "/hours"), {"title": "Order", "payload": "/order_status"}])
        ctx.media("https://cdn.example.com/menu.png", caption="Our menu", mime_type="image/png")

    @bot.intent("upgrade", examples=["upgrade my plan to gold", "I want the gold plan"])
    async def upgrade(ctx: Context) -> None:
        ctx.set_attribute("plan", "gold")
        ctx.slots["plan"] = "gold"
        ctx.reply("Done")

    @bot.intent("human", examples=["talk to a human", "real person please"])
    async def human(ctx: Context) -> None:
        ctx.handoff("asked for a person", team="billing")

    return bot


async def test_a_confident_intent_runs_its_handler_with_the_turn_in_context() -> None:
    result = await shop_bot().turn(turn("helo!"))
    assert texts(result) == ["Hello Ann on sms!"]
    assert result.intent == "greet" and result.handler.endswith("greet")  # type: ignore[union-attr]
    assert result.score is not None and result.score >= 0.45


async def test_below_the_threshold_the_fallback_answers() -> None:
    result = await shop_bot().turn(turn("what is the capital of peru"))
    assert texts(result) == ["Sorry?"]
    assert (result.intent, result.handler) == (None, "fallback")
    assert result.score is not None and result.score < 0.45


async def test_a_fallback_handler_replaces_the_fallback_text() -> None:
    bot = shop_bot()

    @bot.on_fallback
    def fallback(ctx: Context) -> str:
        return f"I did not get '{ctx.text}'"  # a returned string is a reply

    result = await bot.turn(turn("xyzzy plugh"))
    assert texts(result) == ["I did not get 'xyzzy plugh'"] and result.handler == "fallback"


async def test_entities_fill_slots_and_the_event_carries_them() -> None:
    [result] = await talk(shop_bot(), "where is my order 4455667?")
    assert result.events == (TriggerEvent("order.status_requested", {"order_id": "4455667"}),)
    assert texts(result) == ["Checking 4455667 (4455667)"]
    assert result.memory["slots"] == {"order_id": "4455667"}


async def test_a_missing_required_slot_is_asked_for_and_the_answer_fills_it() -> None:
    asked, answered, later = await talk(shop_bot(), "where is my order", "it's 99887766", "hi")
    assert texts(asked) == ["Which order number?"] and asked.handler == "ask:order_id"
    assert asked.memory["awaiting"]["intent"] == "order_status"
    assert answered.intent == "order_status" and answered.events[0].payload == {"order_id": "99887766"}
    assert "awaiting" not in answered.memory
    assert later.intent == "greet" and later.memory["slots"] == {"order_id": "99887766"}


async def test_slots_are_remembered_across_turns() -> None:
    _, again = await talk(shop_bot(), "track order 12345", "where is my order")
    assert texts(again) == ["Checking 12345 (remembered)"]


async def test_a_confident_other_intent_changes_the_subject_while_a_slot_is_asked() -> None:
    asked, other = await talk(shop_bot(), "where is my order", "good morning")
    assert asked.handler == "ask:order_id" and other.intent == "greet"
    assert "awaiting" not in other.memory


async def test_replies_of_every_kind_attributes_and_handoff() -> None:
    bot = shop_bot()
    menu = await bot.turn(turn("show me the menu"))
    assert list(menu.replies) == [
        {"type": "buttons", "text": "Pick one", "buttons": [
            {"title": "Hours", "payload": "/hours"}, {"title": "Order", "payload": "/order_status"}]},
        {"type": "media", "url": "https://cdn.example.com/menu.png", "mime_type": "image/png",
         "caption": "Our menu"},
    ]
    upgraded = await bot.turn(turn("I want the gold plan"))
    assert upgraded.set_attributes == {"plan": "gold"} and upgraded.memory["slots"]["plan"] == "gold"
    human = await bot.turn(turn("can I talk to a human"))
    assert human.handoff == Handoff("asked for a person", "billing") and human.replies == ()


async def test_a_slash_payload_names_the_intent_and_its_entities() -> None:
    result = await shop_bot().turn(turn("", content={
        "type": "text", "text": '/order_status{"order_id": "55555"}'}))
    assert (result.intent, result.score) == ("order_status", 1.0)
    assert result.events[0].payload == {"order_id": "55555"}
    button = await shop_bot().turn(turn("", content={"type": "button", "payload": "/greet"}))
    assert button.intent == "greet"


async def test_a_blocking_handler_runs_off_the_event_loop() -> None:
    bot = Bot("slow")
    seen: dict[str, object] = {}

    @bot.intent("wait", examples=["please wait"])
    def wait(ctx: Context) -> None:
        seen["thread"] = threading.get_ident()
        time.sleep(0.2)
        ctx.reply("waited")

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await bot.turn(turn("please wait"))
    task.cancel()
    assert texts(result) == ["waited"]
    assert seen["thread"] != threading.get_ident()
    assert ticks > 3  # the loop kept running while the handler slept


async def test_a_handler_exception_propagates_to_the_runtime() -> None:
    bot = Bot("broken")

    @bot.intent("crash", examples=["crash now"])
    async def crash(ctx: Context) -> None:
        raise RuntimeError("database down")

    @bot.intent("crash_sync", examples=["blocking crash"])
    def crash_sync(ctx: Context) -> None:
        raise KeyError("missing")

    with pytest.raises(RuntimeError, match="database down"):
        await bot.turn(turn("crash now"))
    with pytest.raises(KeyError):
        await bot.turn(turn("blocking crash"))


def test_declaration_mistakes_are_refused_early() -> None:
    bot = Bot("b")
    bot.intent("greet", examples=["hi"])(lambda ctx: None)
    with pytest.raises(ValueError, match="declared twice"):
        bot.intent("greet", examples=["hello"])
    with pytest.raises(ValueError, match="non-empty"):
        bot.intent("empty", examples=[""])
    with pytest.raises(ValueError, match="threshold"):
        Bot("b", threshold=1.5)
    lonely = Bot("lonely")
    lonely.intent("x", examples=["y"])
    with pytest.raises(ValueError, match="without a handler"):
        lonely.train()
    with pytest.raises(ValueError, match="no intent"):
        Bot("nothing").train()


async def test_a_slot_is_asked_for_twice_then_the_fallback_answers() -> None:
    first, second, third = await talk(shop_bot(), "where is my order", "hmm", "no idea")
    assert first.handler == second.handler == "ask:order_id"
    assert second.memory["awaiting"]["asked"] == 2
    assert third.handler == "fallback" and "awaiting" not in third.memory


async def test_a_message_without_words_or_a_very_long_one_gets_the_fallback() -> None:
    bot = shop_bot()
    media = await bot.turn(turn("", content={"type": "media", "url": "https://x.test/a.jpg"}))
    assert media.handler == "fallback" and media.score == 0.0
    long = await bot.turn(turn("lorem ipsum dolor " * 2000))
    assert long.handler == "fallback"


async def test_a_number_or_title_answering_buttons_is_the_buttons_payload() -> None:
    bot = shop_bot()
    menu = await bot.turn(turn("show me the menu"))
    history = [{"seq": 1, "direction": "inbound", "author_type": "contact",
                "content": {"type": "text", "text": "show me the menu"}},
               {"seq": 2, "direction": "outbound", "author_type": "bot",
                "content": menu.replies[0]}]
    by_number = await bot.turn(turn("2", history=history))
    assert (by_number.intent, by_number.handler) == ("order_status", "ask:order_id")
    by_title = await bot.turn(turn("order", history=history))
    assert by_title.intent == "order_status" and by_title.score == 1.0
    out_of_range = await bot.turn(turn("7", history=history))
    assert out_of_range.handler == "fallback"
