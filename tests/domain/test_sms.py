"""SMS segment counts: GSM-7 160 / 153 per part, UCS-2 70 / 67 per part."""

from __future__ import annotations

import pytest

from chat.domain.sms import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, segment_count, segments


def test_an_empty_text_takes_no_part() -> None:
    assert segments("").count == segment_count("") == 0


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_fits_160_in_one_part_and_153_in_each_part_of_a_longer_text(
    length: int, parts: int
) -> None:
    text = "a" * length
    assert segments(text).encoding == "gsm7"
    assert segment_count(text) == parts


@pytest.mark.parametrize("char", ["€", "^", "{", "}", "[", "]", "~", "|", "\\", "\f"])
def test_an_extension_character_costs_two_septets(char: str) -> None:
    assert char in GSM7_EXTENSION
    assert segments(char).units == 2
    assert segment_count("a" * 158 + char) == 1  # 160 septets
    assert segment_count("a" * 159 + char) == 2  # 161 septets
    assert segments("a" * 159 + char).encoding == "gsm7"


def test_an_escape_pair_never_straddles_two_parts() -> None:
    # 152 septets, then "€" (2) would end at 154 > 153: it opens the second part.
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, but split 152 | 2 + 152
    assert segments(text).units == 306
    assert segment_count(text) == 3


def test_the_basic_set_includes_its_accented_and_greek_letters() -> None:
    text = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r"
    assert set(text) <= GSM7_BASIC
    assert is_gsm7(text)
    assert segments(text).units == len(text)


@pytest.mark.parametrize(
    ("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_fits_70_in_one_part_and_67_in_each_part_of_a_longer_text(
    length: int, parts: int
) -> None:
    text = "ж" * length
    assert segments(text).encoding == "ucs2"
    assert segment_count(text) == parts


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2() -> None:
    text = "a" * 69 + "á"  # á is not in GSM-7 (à is)
    assert not is_gsm7(text)
    assert segments(text).encoding == "ucs2"
    assert segment_count(text) == 1
    assert segment_count("a" * 70 + "á") == 2


def test_an_emoji_is_a_surrogate_pair_two_utf16_units() -> None:
    assert segments("😀").units == 2
    assert segment_count("😀" * 35) == 1  # 70 units
    assert segment_count("😀" * 35 + "a") == 2  # 71 units
    # 66 units, then an emoji would end at 68 > 67: it opens the next part.
    assert segment_count("a" * 66 + "😀" + "a" * 66) == 3  # 134 units, split 66 | 2 + 66
    assert segment_count("a" * 65 + "😀" + "a" * 67) == 2  # 134 units, split 67 | 67


def test_a_gsm7_extension_character_in_a_ucs2_text_costs_one_unit() -> None:
    assert segments("€ж").units == 2 and segments("€ж").encoding == "ucs2"
