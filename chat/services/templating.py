"""``{{placeholder}}`` substitution in outgoing text."""

from __future__ import annotations

import re
from typing import Any

from chat.db import models as m

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
_PROFILE_FIELDS = ("name", "email", "phone", "country", "locale", "timezone", "external_id")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def values_for(contact: m.Contact | None, substitutions: dict[str, Any]) -> dict[str, str]:
    """Substitutions win over profile fields; ``attributes.x`` reaches custom attributes."""
    values: dict[str, str] = {}
    if contact is not None:
        for key in _PROFILE_FIELDS:
            value = getattr(contact, key)
            if value is not None:
                values[key] = str(value)
        if contact.birthdate:
            values["birthdate"] = contact.birthdate.isoformat()
        for key, value in (contact.attributes or {}).items():
            if isinstance(value, (str, int, float, bool)):
                values[f"attributes.{key}"] = str(value)
    values.update({k: str(v) for k, v in substitutions.items()})
    return values


def render(text: str, values: dict[str, str]) -> tuple[str, set[str]]:
    """The filled text and the placeholders that had no value."""
    missing: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return values[key]
        missing.add(key)
        return match.group(0)

    return _PLACEHOLDER.sub(fill, text), missing
