"""The web widget in a real browser: a visitor on a plain page carrying the one-tag snippet,
an agent on the Python ``AgentClient``, and the server's history as the referee.

The page is served from another 127.0.0.1 port than Parley, so the widget runs
cross-origin as on a customer's site.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chat.domain.enums import AgentRole
from parley_client import AgentClient, user_hmac
from tests.browser.conftest import Site
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
WAIT = 10.0  # seconds, for events the Python side waits for
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=10_000)


def page_html(snippet: str, head: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Acme shop</title>{head}</head><body><main><h1>Acme shop</h1>"
        "<p>Hand-made teapots, shipped worldwide.</p></main>"
        f"{snippet}</body></html>"
    )


def snippet(live: LiveServer, extra: str = "") -> str:
    key = live.workspace["widget_key"]
    return f'<script src="{live.url}/widget.js" data-widget-key="{key}"{extra} async></script>'


async def visit(browser: Any, url: str, **context: Any) -> tuple[Any, Any, list[str]]:
    """A new visitor (its own browser context) on ``url``; also the dialogs that fired."""
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    dialogs: list[str] = []

    async def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.goto(url)
    return ctx, page, dialogs


async def open_chat(page: Any) -> None:
    await page.get_by_role("button", name=re.compile("^Open chat")).click()
    await wait_online(page)


async def wait_online(page: Any) -> None:
    """The widget has its session and history (the log stops being busy)."""
    from playwright.async_api import expect

    await expect(page.get_by_role("log")).to_have_attribute("aria-busy", "false")


async def write(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


def mine(page: Any, text: str) -> Any:
    return page.locator(".msg.mine", has_text=text)


def theirs(page: Any, text: str) -> Any:
    return page.locator(".msg.theirs", has_text=text)


def text_is(text: str) -> Any:
    return lambda e: e["message"]["content"].get("text") == text


async def history(live: LiveServer, conversation_id: str) -> list[dict[str, Any]]:
    r = await live.http.get(f"/v1/conversations/{conversation_id}/messages", params={"limit": 200})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def inapp_channel(live: LiveServer) -> str:
    r = await live.http.get("/v1/channels")
    return str(next(c["id"] for c in r.json()["data"] if c["type"] == "inapp"))


async def configure(live: LiveServer, **config: Any) -> None:
    r = await live.http.patch(f"/v1/channels/{await inapp_channel(live)}", json={"config": config})
    assert r.status_code == 200, r.text


@pytest.fixture
async def agent(live_server: LiveServer) -> AsyncIterator[AgentClient]:
    ws = live_server.workspace["workspace_id"]
    _, password = await live_server.services.agents.create(ws, "ann@acme.test", "Ann", AgentRole.AGENT)
    token = await AgentClient.login(live_server.url, "ann@acme.test", password)
    client = AgentClient(live_server.url, token)
    await client.connect()
    yield client
    await client.close()


async def test_visitor_and_agent_talk_with_states_typing_unread_and_reload(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    url = site.page("/", page_html(snippet(live_server)))
    ctx, page, _ = await visit(browser, url)
    await open_chat(page)
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    await write(page, "Hello, is my order on its way?")
    event = await agent.wait_for("message", text_is("Hello, is my order on its way?"), WAIT)
    conv = event["conversation_id"]
    await expect(mine(page, "Hello, is my order on its way?")).to_have_attribute("data-status", "delivered")
    await expect(page.locator(".state")).to_have_text("Delivered")

    # The agent types, the visitor sees it; the reply ends it.
    await agent.typing(conv, True)
    await expect(page.locator(".typing")).to_have_text("Ann is typing…")
    reply = await agent.send(conv, "It left the warehouse this morning.")
    await expect(theirs(page, "It left the warehouse this morning.")).to_be_visible()
    await expect(page.locator(".typing")).to_have_text("")
    # The window is open and seen, so the visitor read it.
    await agent.wait_for(
        "message.status", lambda e: e["message_id"] == reply["id"] and e["status"] == "read", WAIT
    )

    # The agent reads: the visitor's message says so.
    await agent.read(conv, reply["seq"])
    await expect(mine(page, "Hello, is my order on its way?")).to_have_attribute("data-status", "read")
    await expect(page.locator(".state")).to_have_text("Read")

    # The visitor types: the agent sees it.
    await page.get_by_role("textbox", name="Message").press_sequentially("Thank")
    typing = await agent.wait_for(
        "typing", lambda e: e["author"]["type"] == "contact" and e["typing"] is True, WAIT
    )
    assert typing["conversation_id"] == conv

    # Closed (Escape), a new reply makes the launcher's badge; focus is back on the launcher.
    await page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name=re.compile("^Open chat"))
    await expect(launcher).to_be_focused()
    await agent.send(conv, "Anything else?")
    await expect(page.locator(".badge")).to_have_text("1")
    await expect(launcher).to_have_accessible_name("Open chat, 1 unread message")

    # A reload keeps the session, the history and the unread count.
    await page.reload()
    await expect(page.locator(".badge")).to_have_text("1")
    await open_chat(page)
    for text in ["Hello, is my order on its way?", "It left the warehouse this morning.", "Anything else?"]:
        await expect(page.locator(".msg", has_text=text)).to_have_count(1)
    await expect(page.locator(".badge")).to_have_count(0)
    texts = [m["content"]["text"] for m in await history(live_server, conv)]
    assert texts == [
        "Hello, is my order on its way?", "It left the warehouse this morning.", "Anything else?"
    ]
    await ctx.close()


async def test_messages_typed_offline_are_sent_once_and_missed_replies_arrive(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    ctx, page, _ = await visit(browser, site.page("/", page_html(snippet(live_server))))
    await open_chat(page)
    await write(page, "Before the tunnel")
    event = await agent.wait_for("message", text_is("Before the tunnel"), WAIT)
    conv = event["conversation_id"]
    await expect(mine(page, "Before the tunnel")).to_have_attribute("data-status", "delivered")

    await ctx.set_offline(True)
    await expect(page.get_by_role("status").filter(has_text="You are offline")).to_be_visible()
    await write(page, "Typed in the tunnel")
    await write(page, "And a second one")
    await expect(mine(page, "Typed in the tunnel")).to_have_attribute("data-status", "pending")
    await expect(page.locator(".state").last).to_have_text("Waiting for the network…")
    await agent.send(conv, "Sent while you were away")
    texts = [m["content"].get("text") for m in await history(live_server, conv)]
    assert texts == ["Before the tunnel", "Sent while you were away"]

    await ctx.set_offline(False)
    await expect(mine(page, "And a second one")).to_have_attribute("data-status", "delivered")
    await expect(mine(page, "Typed in the tunnel")).to_have_attribute("data-status", "delivered")
    await expect(theirs(page, "Sent while you were away")).to_have_count(1)
    for text in ["Before the tunnel", "Typed in the tunnel", "And a second one"]:
        await expect(mine(page, text)).to_have_count(1)
    texts = [m["content"].get("text") for m in await history(live_server, conv)]
    assert texts == [
        "Before the tunnel", "Sent while you were away", "Typed in the tunnel", "And a second one"
    ]
    await ctx.close()
