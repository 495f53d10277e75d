"""``chat.services.bot_brains``: a python bot's reference becomes a brain, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.services.bot_brains import BotLoadError, load_python
from tests.fakes.brains import brain

BOT_FILE = '''
from bots.turn import TurnResult


class Greeter:
    fallback = "Sorry!"

    async def turn(self, turn):
        return TurnResult(replies=[{"type": "text", "text": "hi"}])


bot = Greeter()
other = Greeter()
'''


def test_a_module_attribute_is_loaded() -> None:
    assert load_python("tests.fakes.brains:brain") is brain


def test_a_file_is_loaded_by_path_with_its_bot_or_a_named_attribute(tmp_path: Path) -> None:
    path = tmp_path / "greeter.py"
    path.write_text(BOT_FILE)
    loaded = load_python(str(path))
    assert type(loaded).__name__ == "Greeter" and loaded.fallback == "Sorry!"
    assert load_python(f"{path}:other") is not loaded


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("tests.fakes.no_such_module:bot", "importing 'tests.fakes.no_such_module' failed: ModuleNotFoundError"),
        ("tests.fakes.brains:missing", "'tests.fakes.brains' has no 'missing'"),
        ("tests.fakes.brains:not_a_brain", "has no 'async def turn(turn)'"),
        ("tests.fakes.brains:FALLBACK", "has no 'fallback' text"),
        ("/nowhere/bot.py", "no such file: /nowhere/bot.py"),
    ],
)
def test_what_is_not_a_bot_says_why(ref: str, says: str) -> None:
    with pytest.raises(BotLoadError) as refused:
        load_python(ref)
    assert says in str(refused.value)


def test_a_file_that_does_not_compile_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("bot = 1\n\ndef oops(:\n    pass\n")
    with pytest.raises(BotLoadError) as refused:
        load_python(str(path))
    assert "SyntaxError" in str(refused.value) and "line 3" in str(refused.value)
