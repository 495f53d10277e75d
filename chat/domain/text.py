"""Text Parley refuses: the NUL character (U+0000).

PostgreSQL cannot store it in a text or JSONB value (SQLite can), so a NUL that got past
the edge failed deep inside a query. It is refused where input comes in, the same on
both databases: REST bodies, query strings and path ids (422 ``invalid_character``) and
socket payloads and connect credentials (``invalid_payload`` / ``invalid_auth``). No
text anyone writes needs it, message text included, so it is refused rather than
silently stripped.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
NUL_MESSAGE = "text must not contain the NUL character (U+0000)"


def nul_at(value: Any) -> list[str | int] | None:
    """Where the first string (value or object key) holding a NUL is, or None."""
    if isinstance(value, str):
        return [] if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return [key]
            inner = nul_at(item)
            if inner is not None:
                return [key, *inner]
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            inner = nul_at(item)
            if inner is not None:
                return [index, *inner]
    return None
