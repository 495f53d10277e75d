"""How many SMS parts a text takes (the count carriers bill).

| encoding | when | one part | each part of a longer text |
| --- | --- | --- | --- |
| GSM-7 | every character is in the GSM 03.38 basic set or its extension table | 160 septets | 153 septets (7 go to the concatenation header) |
| UCS-2 | any other character | 70 UTF-16 units | 67 UTF-16 units |

An extension character (``€ ^ { } [ ] ~ | \\`` and form feed) is an escape plus the
character: two septets. UCS-2 counts UTF-16 code units, so a character outside the
Basic Multilingual Plane (most emoji) takes two. Parts are filled greedily and a
character never straddles two parts (an escape pair or a surrogate pair that would
not fit starts the next part), as phones and Twilio split them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 basic character set (the 128 code points; ESC itself is not text).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    count: int  # parts; 0 for an empty text


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _cost(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def segments(text: str) -> Segments:
    """The encoding, length in units and number of parts of ``text`` as one SMS."""
    encoding: Encoding = "gsm7" if is_gsm7(text) else "ucs2"
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    costs = [_cost(c, encoding) for c in text]
    units = sum(costs)
    if units == 0:
        return Segments(encoding, 0, 0)
    if units <= single:
        return Segments(encoding, units, 1)
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return Segments(encoding, units, count)


def segment_count(text: str) -> int:
    return segments(text).count
