"""``parley bot try`` and ``parley bot shell``, run as a user runs them: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PARLEY = [sys.executable, "-m", "chat.cli"]
SUPPORT = str(Path(__file__).resolve().parents[2] / "bots" / "examples" / "support.py")


def parley(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_try_prints_the_intent_score_replies_event_and_slots() -> None:
    done = parley("bot", "try", SUPPORT, "where is my order 123456?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("intent  order_status  0.") and "(handler order_status)" in lines[0]
    assert lines[1] == "bot     Thanks! I am checking order 123456; you will hear from us here shortly."
    assert lines[2] == 'event   order.status_requested {"order_id": "123456"}'
    assert lines[3] == 'slots   {"order_id": "123456"}'


def test_try_shows_buttons_handoff_and_json() -> None:
    hello = parley("bot", "try", "bots.examples.support", "hi", "--contact", '{"name": "Ann"}')
    assert "bot     Hello Ann! How can I help?" in hello.stdout
    assert "          [3] Talk to a person -> /human" in hello.stdout
    human = parley("bot", "try", "bots.examples.support:bot", "talk to a human")
    assert "handoff asked for a person (team support)" in human.stdout
    as_json = json.loads(parley("bot", "try", SUPPORT, "tell me a joke", "--json").stdout)
    assert as_json["intent"] is None and as_json["handler"] == "fallback"
    assert as_json["replies"][0]["type"] == "buttons" and as_json["score"] < 0.45


def test_try_with_a_broken_bot_names_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from bots import Bot\nbot = Bot('b')\nraise RuntimeError('no config')\n")
    done = parley("bot", "try", str(broken), "hi")
    assert done.returncode == 1 and done.stdout == ""
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "bot_load_failed"
    assert f"{broken}:3: RuntimeError: no config" in error["message"]


def test_shell_keeps_memory_across_lines_until_quit() -> None:
    done = parley("bot", "shell", SUPPORT, stdin="where is my order\n98765432\n/restart\n"
                  "where is my order\n/quit\nhello\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("Sure, what is your order number?") == 2  # asked again after /restart
    assert 'event   order.status_requested {"order_id": "98765432"}' in out
    assert "(memory cleared)" in out
    assert "Hello" not in out  # nothing is read after /quit


def test_shell_ends_at_the_end_of_input() -> None:
    done = parley("bot", "shell", "bots.examples.support", stdin="thanks a lot\n")
    assert done.returncode == 0 and "bot     You are welcome!" in done.stdout


def test_a_module_in_the_current_directory_is_found_by_name(tmp_path: Path) -> None:
    (tmp_path / "helpdesk.py").write_text(
        "from bots import Bot\n\nbot = Bot('helpdesk')\n\n\n"
        "@bot.intent('greet', examples=['hello'])\nasync def greet(ctx):\n    ctx.reply('hi!')\n"
    )
    done = subprocess.run([*PARLEY, "bot", "try", "helpdesk", "hello"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "bot     hi!" in done.stdout
