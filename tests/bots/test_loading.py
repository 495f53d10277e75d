"""Loading a bot by file or module name, and the errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots import Bot
from bots.loading import BotLoadError, load_bot

GOOD = '''
from bots import Bot

helpdesk = Bot("helpdesk")

@helpdesk.intent("greet", examples=["hello"])
async def greet(ctx):
    ctx.reply("hi")

bot = helpdesk
'''


def write(tmp_path: Path, text: str, name: str = "mybot.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_and_a_module_load_their_bot_trained(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert isinstance(load_bot(path), Bot)
    assert load_bot(f"{path}:helpdesk").name == "helpdesk"  # type: ignore[attr-defined]
    support = load_bot("bots.examples.support")
    assert isinstance(support, Bot) and support is load_bot("bots.examples.support:bot")


def test_missing_files_modules_and_attributes_are_named(tmp_path: Path) -> None:
    with pytest.raises(BotLoadError, match="nope.py: no such file"):
        load_bot(str(tmp_path / "nope.py"))
    with pytest.raises(BotLoadError, match="no_such_pkg.mod: no such module"):
        load_bot("no_such_pkg.mod")
    with pytest.raises(BotLoadError, match="defines no 'other'"):
        load_bot(write(tmp_path, GOOD) + ":other")
    with pytest.raises(BotLoadError, match="not a bot"):
        load_bot(write(tmp_path, "bot = 42\n", "number.py"))


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "from bots import Bot\n\nbot = Bot('x'\n", "broken.py")
    with pytest.raises(BotLoadError, match=r"broken\.py:3"):
        load_bot(path)


def test_an_error_while_importing_names_the_line_in_the_bot_file(tmp_path: Path) -> None:
    text = GOOD + '\n@helpdesk.intent("greet", examples=["hey"])\nasync def again(ctx):\n    pass\n'
    with pytest.raises(BotLoadError, match=r"mybot\.py:12: ValueError: intent 'greet' is declared twice"):
        load_bot(write(tmp_path, text))


def test_a_bot_that_declares_nothing_names_where_it_was_made(tmp_path: Path) -> None:
    path = write(tmp_path, "from bots import Bot\n\n\nbot = Bot('empty')\n", "empty.py")
    with pytest.raises(BotLoadError, match=r"empty\.py:4: bot 'empty' has no intent"):
        load_bot(path)
