"""Finding a bot from a name: a file or a module, and the attribute holding the bot.

| spec | loads |
| --- | --- |
| ``path/to/mybot.py`` | the file's ``bot`` |
| ``path/to/mybot.py:helpdesk`` | the file's ``helpdesk`` |
| ``package.module`` | the module's ``bot`` (the current directory is searched too) |
| ``package.module:helpdesk`` | the module's ``helpdesk`` |

A scripted ``Bot`` is trained while loading, so mistakes show now, not at the first
customer message. Every problem is a ``BotLoadError`` naming the file and, where there is
one, the line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from bots.turn import Brain


class BotLoadError(Exception):
    """A bot could not be loaded; ``str()`` says where and why."""


def load_bot(spec: str) -> Brain:
    source, _, attribute = spec.partition(":")
    if not source:
        raise BotLoadError(f"{spec!r}: name a file (mybot.py) or a module (package.module)")
    attribute = attribute or "bot"
    module = _import(source)
    where = getattr(module, "__file__", None) or source
    if not hasattr(module, attribute):
        raise BotLoadError(
            f"{where}: defines no {attribute!r} (declare `{attribute} = Bot(...)`, or name the "
            f"attribute: {source}:NAME)"
        )
    brain = getattr(module, attribute)
    if not isinstance(getattr(brain, "fallback", None), str) or not inspect.iscoroutinefunction(
        getattr(brain, "turn", None)
    ):
        raise BotLoadError(
            f"{where}: {attribute} is a {type(brain).__name__}, not a bot (a Bot, or an object "
            "with `fallback: str` and `async def turn(turn)`)"
        )
    train = getattr(brain, "train", None)
    if callable(train):
        try:
            train()
        except ValueError as exc:
            defined = getattr(brain, "defined_at", None)
            line = f"{defined[0]}:{defined[1]}" if defined else where
            raise BotLoadError(f"{line}: {exc}") from exc
    result: Brain = brain
    return result


def _import(source: str) -> ModuleType:
    path = Path(source)
    is_file = source.endswith(".py") or path.is_file() or "/" in source or "\\" in source
    if is_file:
        if not path.is_file():
            raise BotLoadError(f"{source}: no such file")
        name = f"parley_bot_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise BotLoadError(f"{source}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            raise _failed(str(path), exc) from exc
        return module
    if os.getcwd() not in sys.path:  # `parley bot try mybot` finds ./mybot.py, as uvicorn does
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(source)
    except (ModuleNotFoundError, ValueError):
        found = None
    except BaseException as exc:  # the parent package failed to import
        raise _failed(source, exc) from exc
    if found is None:
        raise BotLoadError(f"{source}: no such module (or file)")
    try:
        return importlib.import_module(source)
    except BaseException as exc:
        raise _failed(found.origin or source, exc) from exc


def _failed(source: str, exc: BaseException) -> BotLoadError:
    """The error, at the deepest line of the bot's own file (or the last frame)."""
    if isinstance(exc, SyntaxError):
        return BotLoadError(f"{exc.filename}:{exc.lineno}: {exc.msg}")
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if f.filename.endswith(source)] if source.endswith(".py") else []
    chosen = own or [f for f in frames if "importlib" not in f.filename] or frames
    where = f"{chosen[-1].filename}:{chosen[-1].lineno}" if chosen else source
    detail: Any = f"{type(exc).__name__}: {exc}"
    return BotLoadError(f"{where}: {detail}")
