"""JSON to and from text, fast: orjson, with the standard library for what orjson refuses
(integers beyond 64 bits, which JSON itself allows). Used for stored JSON columns and
Socket.IO packets."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(value: Any, **_ignored: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# orjson reads an integer outside 64 bits as a float (precision lost, no error); every
# such integer has at least 19 digits, and a text with a run that long is read by json.
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def loads(text: str | bytes, **_ignored: Any) -> Any:
    if isinstance(text, str):
        long_digits = _LONG_DIGITS.search(text) is not None
    else:
        long_digits = _LONG_DIGITS_BYTES.search(text) is not None
    if long_digits:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
