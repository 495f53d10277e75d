"""``parley serve --demo`` attaches the example support bot to the demo's in-app channel,
once; when the bot's module does not load, it says so and serves without it."""

from __future__ import annotations

from typing import Any

import pytest

from chat import demo


async def test_the_demo_attaches_the_support_bot_to_its_inapp_channel_once(
    services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "SUPPORT_BOT", "tests.fakes.brains:brain")
    text = await demo.seed(services, "http://127.0.0.1:8000")
    ws_id = next(line.split()[1] for line in text.splitlines() if line.strip().startswith("workspace_id"))
    [bot] = await services.bots.list(ws_id)
    [inapp] = await services.channels.list(ws_id, "inapp")
    assert (bot["name"], bot["kind"], bot["channel_ids"]) == ("Support bot", "python", [inapp["id"]])
    assert bot["config"] == {"path": "tests.fakes.brains:brain"}
    assert f"  bot              {bot['id']}" in text.splitlines()

    again = await demo.seed(services, "http://127.0.0.1:8000")
    assert [b["id"] for b in await services.bots.list(ws_id)] == [bot["id"]]
    assert f"  bot              {bot['id']}" in again.splitlines()


async def test_a_support_bot_that_does_not_load_is_reported_not_attached(
    services: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(demo, "SUPPORT_BOT", "bots.examples.no_such_bot:bot")
    text = await demo.seed(services, "http://127.0.0.1:8000")
    line = next(line for line in text.splitlines() if line.strip().startswith("bot "))
    assert "not attached (bots.examples.no_such_bot:bot does not load" in line
    assert "example support bot (bots.examples.no_such_bot:bot) is not attached" in caplog.text
    ws_id = next(line.split()[1] for line in text.splitlines() if line.strip().startswith("workspace_id"))
    assert await services.bots.list(ws_id) == []
