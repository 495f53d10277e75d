"""An example support bot: greeting, opening hours, order status, a human, thanks, goodbye.

Try it without a server::

    parley bot try bots.examples.support "where is my order 123456?"
    parley bot shell bots/examples/support.py

Order status does not look anything up itself: it emits the trigger event
``order.status_requested`` with the order number (a flow or a webhook subscriber does
the lookup and answers in the conversation) and tells the customer it is being checked.
"""

from __future__ import annotations

from bots import Bot, Context, Regex

bot = Bot(
    "support",
    threshold=0.45,
    fallback="Sorry, I did not understand that. You can ask about our opening hours or "
    "an order, or ask for a person.",
)

ORDER_ID = Regex("order_id", r"\b\d{5,}\b")
MENU = [
    ("Opening hours", "/opening_hours"),
    ("Where is my order?", "/order_status"),
    ("Talk to a person", "/human"),
]


@bot.intent("greet", examples=[
    "hi", "hello", "hey", "hey there", "hi there", "hello there", "good morning",
    "good afternoon", "good evening", "hiya", "howdy", "greetings", "hello, anyone there?",
    "hi, I have a question", "hey, can you help me?", "yo", "morning!", "hallo",
    "hi bot", "hello, how are you?",
])
async def greet(ctx: Context) -> None:
    name = ctx.contact.get("name")
    hello = f"Hello {name}!" if name else "Hello!"
    ctx.buttons(f"{hello} How can I help?", MENU)


@bot.intent("opening_hours", examples=[
    "what are your opening hours", "when are you open", "when do you open",
    "what time do you close", "are you open today", "are you open on sunday",
    "opening times", "business hours", "what time do you open tomorrow",
    "are you open on weekends", "until when are you open tonight",
    "when does the store open", "what are your hours", "is the shop open now",
    "what time does the support team start", "are you closed on public holidays",
    "hours of operation", "when can I call you", "are you open on saturday morning",
    "when do you close on friday",
])
async def opening_hours(ctx: Context) -> None:
    ctx.reply("We are open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00 (CET). "
              "Closed on Sundays and public holidays.")


@bot.intent(
    "order_status",
    examples=[
        "where is my order", "order status", "track my order", "has my order shipped",
        "when will my order arrive", "my order has not arrived yet",
        "can you check order 123456", "where is order 55123", "status of order 98765",
        "my package is late", "I am still waiting for my parcel", "track package 100234",
        "when will my delivery come", "has order 77777 been sent",
        "I want to know where my order is", "what is the status of my purchase",
        "my order number is 123456", "tracking my shipment", "did you ship my order",
        "the parcel still did not come", "delivery status",
    ],
    entities=[ORDER_ID],
    requires={"order_id": "Sure, what is your order number?"},
)
async def order_status(ctx: Context) -> None:
    order_id = ctx.slots["order_id"]
    ctx.emit("order.status_requested", {"order_id": order_id})
    ctx.reply(f"Thanks! I am checking order {order_id}; you will hear from us here shortly.")


@bot.intent("human", examples=[
    "I want to talk to a human", "talk to a person", "can I speak to an agent",
    "real person please", "connect me to customer service", "I need a human",
    "agent", "human", "let me talk to someone", "transfer me to an operator",
    "I want to speak with support staff", "are you a robot? I want a real person",
    "get me a representative", "speak to someone", "can a person help me",
    "put me through to a human agent", "operator", "I'd like to chat with a person",
    "this bot is useless, give me a human", "live agent",
])
async def human(ctx: Context) -> None:
    ctx.reply("I am passing you to a colleague; someone will answer here shortly.")
    ctx.handoff("asked for a person", team="support")


@bot.intent("thanks", examples=[
    "thanks", "thank you", "thank you very much", "thanks a lot", "many thanks",
    "thx", "ty", "cheers", "great, thanks", "that helps, thank you", "much appreciated",
    "awesome thanks", "thanks for your help", "perfect, thank you", "appreciate it",
    "ok thanks",
])
async def thanks(ctx: Context) -> None:
    ctx.reply("You are welcome!")


@bot.intent("goodbye", examples=[
    "bye", "goodbye", "see you", "see you later", "bye bye", "good night", "that's all",
    "have a nice day", "talk to you later", "I'm done", "cya", "farewell",
    "nothing else, bye", "that is everything", "see ya", "take care",
])
async def goodbye(ctx: Context) -> None:
    ctx.reply("Goodbye, have a nice day!")


@bot.on_fallback
async def fallback(ctx: Context) -> None:
    ctx.buttons(bot.fallback, MENU)
