"""The default classifier: trained from examples, forgiving of case, accents and typos,
and low-scoring for what it was never taught."""

from __future__ import annotations

from collections.abc import Sequence

from bots import Bot, Context
from bots.nlu import ExampleClassifier, predict
from bots.text import normalise, stem

EXAMPLES = [
    ("what are your opening hours", "hours"), ("when do you open", "hours"),
    ("are you open on sunday", "hours"),
    ("where is my order", "order"), ("track my package", "order"),
    ("has my order shipped", "order"),
    ("hello", "greet"), ("hi there", "greet"), ("good morning", "greet"),
]


def trained() -> ExampleClassifier:
    classifier = ExampleClassifier()
    classifier.fit(EXAMPLES)
    return classifier


def test_normalise_folds_case_accents_punctuation_and_contractions() -> None:
    assert normalise("Où est ma COMMANDE ?!") == "ou est ma commande"
    assert normalise("It isn't HERE…") == "it is not here"
    assert stem("ordered") == stem("orders") == "order"


def test_an_example_itself_scores_high_and_every_intent_is_ranked() -> None:
    ranking = trained().rank("where is my order")
    assert ranking[0][0] == "order" and 0.85 < ranking[0][1] <= 1.0
    assert {intent for intent, _ in ranking} == {"hours", "order", "greet"}
    assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)


def test_paraphrases_typos_and_accents_find_the_intent() -> None:
    classifier = trained()
    for text, intent in [
        ("WHERE'S MY ÖRDER??", "order"), ("wher is my oder", "order"),
        ("opning hours", "hours"), ("are you opened on sundays", "hours"), ("helo", "greet"),
    ]:
        assert predict(classifier, text, 0.45).intent == intent, text


def test_what_it_was_never_taught_scores_below_the_threshold() -> None:
    classifier = trained()
    for text in ["tell me a joke", "what's the weather like in paris", "asdfgh"]:
        prediction = predict(classifier, text, 0.45)
        assert prediction.intent is None and prediction.score < 0.45, (text, prediction)


async def test_a_bot_takes_another_classifier_through_the_protocol() -> None:
    class Keyword:
        """A stand-in 'stronger backend': anything with fit and rank."""

        def fit(self, examples: Sequence[tuple[str, str]]) -> None:
            self.intents = sorted({intent for _, intent in examples})

        def rank(self, text: str) -> list[tuple[str, float]]:
            return [(i, 0.9 if i in text else 0.1) for i in self.intents]

    bot = Bot("kw", classifier=Keyword())

    @bot.intent("refund", examples=["I want a refund"])
    async def refund(ctx: Context) -> None:
        ctx.reply("refunding")

    @bot.intent("other", examples=["something else"])
    async def other(ctx: Context) -> None:
        ctx.reply("other")

    assert bot.classify("refund please").intent == "refund"
    assert bot.classify("no idea").intent is None
