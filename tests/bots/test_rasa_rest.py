"""``bots.rasa_rest``: a bot whose brain is an external Rasa server, through Rasa's REST
channel. The Rasa server is a fake (tests/fakes/rasa_server.py) whose custom actions run
on the REAL ``rasa_sdk`` action server (``python -m rasa_sdk``, on 127.0.0.1) with the
actions of tests/fixtures/rasa_actions.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bots.rasa_rest import RasaRestBrain, from_rasa
from bots.turn import Handoff, TriggerEvent, Turn, TurnMessage
from chat.settings import Settings
from tests.bot_helpers import conversation, customer_says, history, turns
from tests.conftest import free_port
from tests.fakes.rasa_server import FakeRasa

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    """The real rasa_sdk action server, serving tests.fixtures.rasa_actions."""
    port = free_port()
    env = {**os.environ, "SANIC_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "tests.fixtures.rasa_actions", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the rasa_sdk action server did not start:\n{err[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
async def rasa(action_server: str) -> AsyncIterator[FakeRasa]:
    fake = await FakeRasa(action_server=action_server).start()
    yield fake
    await fake.stop()


def turn_of(text: str, conversation_id: str = "cnv_1") -> Turn:
    return Turn("ws_1", conversation_id, "inapp", TurnMessage("msg_1", 1, {"type": "text", "text": text}), {"id": "ct_1"})


async def test_the_rasa_server_answers_through_its_rest_channel_and_its_action_server(rasa: FakeRasa) -> None:
    async with httpx.AsyncClient() as http:
        brain = RasaRestBrain(rasa.url, http)
        hello = await brain.turn(turn_of("hello"))
        assert hello.replies == [{"type": "text", "text": "Hello! I can tell you where your order is."}]
        assert rasa.requests[0]["sender"] == "cnv_1" and rasa.requests[0]["message"] == "hello"

        order = await brain.turn(turn_of("where is order #42?"))
        assert order.replies == [{
            "type": "buttons", "text": "Order #42 is on its way.",
            "buttons": [{"title": "Track it", "payload": "/track"}],
        }]
        # The action server ran with a real tracker and set the slot, which Rasa keeps
        # for the sender: the next turn's action reads it.
        assert rasa.action_calls[0]["answer"]["events"][0]["name"] == "order_id"
        again = await brain.turn(turn_of("and my order?"))
        assert again.replies[0]["text"] == "Order #42 is on its way."

        other = await brain.turn(turn_of("my order?", conversation_id="cnv_2"))
        assert other.replies == [{"type": "text", "text": "Which order? Tell me its number, like #42."}]

        billing = await brain.turn(turn_of("a billing question"))
        assert billing.replies == [{"type": "text", "text": "Connecting you with our billing team."}]
        assert billing.handoff == Handoff(reason="billing question", team="billing")


def test_rasa_messages_map_to_replies_and_custom_payloads_to_effects() -> None:
    result = from_rasa([
        {"recipient_id": "c", "image": "https://example.com/a.png"},
        {"recipient_id": "c", "attachment": {"type": "file", "payload": {"src": "https://example.com/f.pdf"}}},
        {"recipient_id": "c", "custom": {"set_attributes": {"tier": "gold"}}},
        {"recipient_id": "c", "custom": {"event": {"name": "order.asked", "payload": {"id": 1}}}},
        {"recipient_id": "c", "custom": {"something": "else"}},
    ])
    assert result.replies == [
        {"type": "media", "url": "https://example.com/a.png"},
        {"type": "media", "url": "https://example.com/f.pdf"},
    ]
    assert result.set_attributes == {"tier": "gold"}
    assert result.events == [TriggerEvent("order.asked", {"id": 1})]
    assert result.handoff is None


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


async def test_a_rasa_bot_in_parley_answers_and_hands_off(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str], rasa: FakeRasa
) -> None:
    r = await api.post("/v1/bots", json={
        "name": "Rasa", "kind": "rasa", "config": {"url": rasa.url, "action_server_url": rasa.action_server},
    })
    assert r.status_code == 201, r.text
    ws = workspace["workspace_id"]
    posted = await customer_says(services, ws, "where is order #7?")
    cid = posted.conversation["id"]
    await runtime.worker.drain()
    msgs = (await api.get(f"/v1/conversations/{cid}/messages")).json()["data"]
    assert msgs[1]["author"]["type"] == "bot"
    assert msgs[1]["content"] == {
        "type": "buttons", "text": "Order #7 is on its way.", "buttons": [{"id": "/track", "title": "Track it"}],
    }
    assert rasa.requests[0]["sender"] == cid

    await customer_says(services, ws, "I need a refund")
    await runtime.worker.drain()
    assert (await history(api, cid))[-1] == ("bot", "Connecting you with our billing team.")
    conv = await conversation(api, cid)
    assert (conv["assignee"], conv["team"]) == (None, "billing")
    assert [t["outcome"] for t in await turns(api, cid)] == ["handed_off", "replied"]
