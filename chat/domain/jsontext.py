"""JSON to and from text, fast: orjson, with the standard library for what orjson refuses
(integers beyond 64 bits, which JSON itself allows). Used for stored JSON columns and
Socket.IO packets."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, **_ignored: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes, **_ignored: Any) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
