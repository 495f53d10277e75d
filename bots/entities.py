"""Entities: values a bot picks out of a message (an order number, a product name).

| kind | finds |
| --- | --- |
| ``Regex(name, pattern)`` | every match of a regular expression (its first group when it has one) |
| ``Choice(name, {value: [synonyms]})`` | a listed value when the message says it or a synonym, accents, case and one typo forgiven |

A found value fills the slot of the same name (the way Rasa fills slots from entities).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bots.text import deletions, normalise


@dataclass(frozen=True, slots=True)
class Found:
    """One entity value found in a message; ``start``/``end`` index the original text
    for ``Regex``, the normalised text for ``Choice``."""

    entity: str
    value: str
    start: int
    end: int
    text: str


class Entity(Protocol):
    name: str

    def find(self, text: str) -> Sequence[Found]:
        """Every value of this entity in ``text``, in order."""
        ...


class Regex:
    """Values matching ``pattern`` (searched case-insensitively by default)."""

    def __init__(self, name: str, pattern: str, flags: int = re.IGNORECASE) -> None:
        self.name = name
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ValueError(f"entity {name!r}: bad regular expression {pattern!r}: {exc}") from exc

    def find(self, text: str) -> list[Found]:
        found = []
        for match in self.pattern.finditer(text):
            group = 1 if self.pattern.groups else 0
            value = match.group(group)
            if value is not None:
                found.append(Found(self.name, value, match.start(group), match.end(group), value))
        return found

    def __repr__(self) -> str:
        return f"Regex({self.name!r}, {self.pattern.pattern!r})"


class Choice:
    """One of a list of values, each with optional synonyms: ``Choice("size", ["small",
    "large"])`` or ``Choice("topic", {"billing": ["invoice", "bill"]})``. The value found
    is the canonical one ("billing" for "my invoice")."""

    def __init__(self, name: str, values: Mapping[str, Iterable[str]] | Iterable[str]) -> None:
        self.name = name
        table = values if isinstance(values, Mapping) else {v: () for v in values}
        self._phrases: dict[tuple[str, ...], str] = {}
        self._typos: dict[str, str] = {}
        for value, synonyms in table.items():
            for phrase in (value, *synonyms):
                tokens = tuple(normalise(phrase).split())
                if tokens:
                    self._phrases[tokens] = value
                if len(tokens) == 1 and len(tokens[0]) >= 5:
                    for short in deletions(tokens[0]):
                        self._typos.setdefault(short, value)
        if not self._phrases:
            raise ValueError(f"entity {name!r}: no values")
        self._longest = max(len(p) for p in self._phrases)

    def _typo(self, token: str) -> str | None:
        if len(token) < 5:
            return None
        if token in self._typos:  # a letter missing
            return self._typos[token]
        for short in deletions(token):
            if short in self._typos:  # a letter swapped, replaced or added
                return self._typos[short]
        return None

    def find(self, text: str) -> list[Found]:
        tokens = normalise(text).split()
        found = []
        i = 0
        while i < len(tokens):
            for size in range(min(self._longest, len(tokens) - i), 0, -1):
                phrase = tuple(tokens[i : i + size])
                value = self._phrases.get(phrase) or (self._typo(phrase[0]) if size == 1 else None)
                if value is not None:
                    said = " ".join(phrase)
                    start = len(" ".join(tokens[:i])) + (1 if i else 0)
                    found.append(Found(self.name, value, start, start + len(said), said))
                    i += size
                    break
            else:
                i += 1
        return found

    def __repr__(self) -> str:
        return f"Choice({self.name!r}, {sorted(set(self._phrases.values()))!r})"


def find_all(entities: Iterable[Entity], text: str) -> list[Found]:
    found: list[Found] = []
    for entity in entities:
        found.extend(entity.find(text))
    return found


__all__ = ["Choice", "Entity", "Found", "Regex", "find_all"]
