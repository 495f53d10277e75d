"""From a bot row to its ``Brain`` (``bots.turn``): the one place that knows the kinds.

| kind | brain | config |
| --- | --- | --- |
| ``python`` | what ``load_python`` imports (``module:attr``, or a file path: its ``bot``) | ``path`` |
| ``rasa`` | ``bots.rasa_rest.RasaRestBrain`` | ``url`` (``action_server_url`` is Rasa's business) |
| ``http`` | ``bots.http_bot.HttpBrain`` | ``url``, ``secret`` |

``load_python`` is a seam: ``bots.loading`` (the bot API's own loader, with its clear errors
naming the file and line) can replace it where ``chat.app`` builds ``Brains``. Brains are
built once per bot and version (its ``updated_at``) and reused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bots.http_bot import HttpBrain
from bots.rasa_rest import RasaRestBrain
from bots.turn import Brain

BrainLoader = Callable[[str], Brain]


class BotLoadError(Exception):
    """A python bot's reference does not give a brain; the message says why."""


def load_python(ref: str) -> Brain:
    """``package.module:attr``, or ``path/to/bot.py`` (its ``bot``) / ``path/to/bot.py:attr``.

    The object must have a ``fallback`` text and an ``async def turn(turn)``."""
    target, _, attr = ref.partition(":") if not _is_windows_drive(ref) else (ref, "", "")
    try:
        if target.endswith(".py") or "/" in target:
            module = _module_from_file(Path(target))
            attr = attr or "bot"
        else:
            module = importlib.import_module(target)
            attr = attr or "bot"
    except BotLoadError:
        raise
    except Exception as exc:  # an import runs the bot's code: any error is the bot's
        raise BotLoadError(f"importing '{target}' failed: {type(exc).__name__}: {exc}") from exc
    brain = getattr(module, attr, None)
    if brain is None:
        raise BotLoadError(f"'{target}' has no '{attr}'")
    check_brain(brain, ref)
    return brain  # type: ignore[no-any-return]


def check_brain(brain: Any, ref: str) -> None:
    if not isinstance(getattr(brain, "fallback", None), str):
        raise BotLoadError(f"'{ref}' is not a bot: it has no 'fallback' text")
    if not inspect.iscoroutinefunction(getattr(brain, "turn", None)):
        raise BotLoadError(f"'{ref}' is not a bot: it has no 'async def turn(turn)'")


def _is_windows_drive(ref: str) -> bool:
    return len(ref) > 2 and ref[1] == ":" and ref[2] in "\\/"


def _module_from_file(path: Path) -> Any:
    if not path.is_file():
        raise BotLoadError(f"no such file: {path}")
    name = "parley_bot_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BotLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return module


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
    def __init__(self, http: httpx.AsyncClient, load: BrainLoader = load_python) -> None:
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
