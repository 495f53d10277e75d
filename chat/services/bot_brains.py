"""From a bot row to its ``Brain`` (``bots.turn``): the one place that knows the kinds.

| kind | brain | config |
| --- | --- | --- |
| ``python`` | what ``bots.loading.load_bot`` loads (``module:attr``, or a file path: its ``bot``) | ``path`` |
| ``rasa`` | ``bots.rasa_rest.RasaRestBrain`` | ``url`` (``action_server_url`` is Rasa's business) |
| ``http`` | ``bots.http_bot.HttpBrain`` | ``url``, ``secret`` |

Brains are built once per bot and version (its ``updated_at``) and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bots.http_bot import HttpBrain
from bots.loading import BotLoadError, load_bot
from bots.rasa_rest import RasaRestBrain
from bots.turn import Brain

__all__ = ["BotLoadError", "BotSpec", "BrainLoader", "Brains", "load_bot"]

BrainLoader = Callable[[str], Brain]


@dataclass(frozen=True)
class BotSpec:
    """What the runtime needs of a bot row."""

    id: str
    workspace_id: str
    name: str
    kind: str
    config: dict[str, Any]
    timeout_seconds: float | None
    updated_at: datetime


class Brains:
    def __init__(self, http: httpx.AsyncClient, load: BrainLoader = load_bot) -> None:
        self.http = http
        self.load = load
        self._cache: dict[str, tuple[datetime, Brain]] = {}

    def get(self, bot: BotSpec) -> Brain:
        cached = self._cache.get(bot.id)
        if cached is not None and cached[0] == bot.updated_at:
            return cached[1]
        brain = self._build(bot)
        self._cache[bot.id] = (bot.updated_at, brain)
        return brain

    def _build(self, bot: BotSpec) -> Brain:
        config = bot.config
        if bot.kind == "python":
            return self.load(str(config["path"]))
        if bot.kind == "rasa":
            return RasaRestBrain(str(config["url"]), self.http)
        if bot.kind == "http":
            return HttpBrain(str(config["url"]), str(config["secret"]), self.http, bot_id=bot.id)
        raise BotLoadError(f"unknown bot kind '{bot.kind}'")
