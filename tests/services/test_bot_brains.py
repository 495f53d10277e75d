"""``chat.services.bot_brains``: a bot row becomes its brain, built once per version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bots.http_bot import HttpBrain
from bots.rasa_rest import RasaRestBrain
from chat.services.bot_brains import BotLoadError, BotSpec, Brains
from tests.fakes.brains import brain

BOT_FILE = '''
from bots.turn import TurnResult


class Greeter:
    fallback = "Sorry!"

    async def turn(self, turn):
        return TurnResult(replies=[{"type": "text", "text": "hi"}])


bot = Greeter()
'''


def spec(kind: str, config: dict[str, str], at: datetime) -> BotSpec:
    return BotSpec("bot_1", "ws_1", "b", kind, config, None, at)


async def test_each_kind_gives_its_brain_and_a_new_version_rebuilds_it(tmp_path: Path) -> None:
    path = tmp_path / "greeter.py"
    path.write_text(BOT_FILE)
    now = datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        brains = Brains(http)
        assert brains.get(spec("python", {"path": "tests.fakes.brains:brain"}, now)) is brain
        first = brains.get(spec("python", {"path": str(path)}, now + timedelta(seconds=1)))
        assert type(first).__name__ == "Greeter"
        assert brains.get(spec("python", {"path": str(path)}, now + timedelta(seconds=1))) is first
        rasa = brains.get(spec("rasa", {"url": "http://127.0.0.1:1"}, now + timedelta(seconds=2)))
        assert isinstance(rasa, RasaRestBrain)
        http_bot = brains.get(spec(
            "http", {"url": "http://127.0.0.1:1", "secret": "s" * 16}, now + timedelta(seconds=3)
        ))
        assert isinstance(http_bot, HttpBrain)


async def test_what_is_not_a_bot_says_why() -> None:
    async with httpx.AsyncClient() as http:
        brains = Brains(http)
        with pytest.raises(BotLoadError, match="not a bot"):
            brains.get(spec("python", {"path": "tests.fakes.brains:not_a_brain"}, datetime.now(UTC)))
        with pytest.raises(BotLoadError, match="no such file"):
            brains.get(spec("python", {"path": "/nowhere/bot.py"}, datetime.now(UTC)))
        with pytest.raises(BotLoadError, match="unknown bot kind"):
            brains.get(spec("lisp", {}, datetime.now(UTC)))
