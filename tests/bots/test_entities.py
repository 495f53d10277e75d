"""Regex and list entities."""

from __future__ import annotations

import pytest

from bots import Choice, Regex


def test_regex_finds_every_match_with_its_position() -> None:
    found = Regex("order_id", r"\b\d{5,}\b").find("orders 12345 and 678901, not 12")
    assert [(f.value, f.start, f.end) for f in found] == [("12345", 7, 12), ("678901", 17, 23)]


def test_regex_with_a_group_takes_the_group() -> None:
    found = Regex("email", r"mail (\S+@\S+)").find("my mail ann@example.com thanks")
    assert [f.value for f in found] == ["ann@example.com"]


def test_a_bad_regular_expression_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="order_id"):
        Regex("order_id", r"(\d+")


def test_choice_gives_the_canonical_value_for_synonyms_accents_and_one_typo() -> None:
    topic = Choice("topic", {"billing": ["invoice", "bill"], "delivery": ["shipping", "parcel"]})
    assert [f.value for f in topic.find("My INVOICE is wrong")] == ["billing"]
    assert [f.value for f in topic.find("the parcel and the bill")] == ["delivery", "billing"]
    assert [f.value for f in topic.find("shiping costs")] == ["delivery"]
    assert topic.find("nothing here") == []


def test_choice_matches_phrases_of_several_words_first() -> None:
    size = Choice("size", {"extra large": ["xl"], "large": []})
    assert [f.value for f in size.find("an Extra-Large shirt")] == ["extra large"]
    assert [f.value for f in Choice("colour", ["red", "blue"]).find("blue or red")] == ["blue", "red"]
