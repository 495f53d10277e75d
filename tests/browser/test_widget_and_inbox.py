"""Both front ends at once: a visitor in the web widget and agents in the inbox, each in
its own browser context, with nothing but the server between them.

The visitor's page is served from another 127.0.0.1 port than Parley and carries only
the one-tag snippet. The workspace has no bot (the test checks), so every answer the
visitor sees is an agent's. The server's history is the referee for "nothing lost, nothing
doubled".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat.domain.enums import AgentRole
from tests.browser.conftest import Site
from tests.browser.pages import (
    XSS,
    Inbox,
    axe_clean,
    axe_serious,
    conversation,
    history,
    mine,
    open_chat,
    page_html,
    snippet,
    theirs,
    visit,
    wait_online,
    write,
)
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

HELLO = "Hello, I need help with order 42"
REPLY = "Sorry about that! Order 42 ships tomorrow."
OFFLINE = "Typed in the tunnel"
BACK = "And I am back"


@pytest.fixture(autouse=True)
def _expect_timeout() -> Iterator[None]:
    from playwright.async_api import expect

    expect.set_options(timeout=20_000)  # the machine may be busy
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the tests that follow


async def test_a_visitor_in_the_widget_and_two_agents_in_the_inbox_talk_live(
    browser: Any, site: Site, live_server: LiveServer
) -> None:
    from playwright.async_api import expect

    live = live_server
    bots = await live.http.get("/v1/bots")
    assert bots.status_code == 200 and bots.json()["data"] == [], "no bot may answer the visitor"
    inbox = Inbox(live, browser)
    await inbox.agent_account("ann@example.com", "Ann")
    await inbox.agent_account("bob@example.com", "Bob", AgentRole.AGENT)
    ann = await inbox.login("ann@example.com", "Ann")

    # The visitor writes; the conversation appears live in Ann's list, unread.
    visitor, page, dialogs = await visit(browser, site.page("/", page_html(snippet(live))))
    await open_chat(page)
    await write(page, HELLO)
    await expect(mine(page, HELLO)).to_have_attribute("data-status", "delivered")
    item = ann.page.locator(".convs .conv", has_text=HELLO)
    await expect(item.locator(".preview")).to_have_text(HELLO)
    await expect(item.locator(".badge")).to_have_text("1")
    cid = await item.get_attribute("data-conversation")
    assert cid is not None
    assert [c["id"] for c in (await live.http.get("/v1/conversations")).json()["data"]] == [cid]

    # Ann opens it: read in the inbox, and the visitor sees "Read".
    await item.click()
    ann_messages = ann.page.get_by_role("list", name="Messages")
    await expect(ann_messages.locator(".msg.in .text")).to_have_text([HELLO])
    await expect(item.locator(".badge")).to_have_count(0)
    await expect(mine(page, HELLO)).to_have_attribute("data-status", "read")
    await expect(page.locator(".state")).to_have_text("Read")

    # Bob, at the same time, has it open too and sees Ann's reply arrive live.
    bob = await inbox.login("bob@example.com", "Bob")
    await conversation(bob.page, cid).click()
    bob_messages = bob.page.get_by_role("list", name="Messages")
    await expect(bob_messages.locator(".msg.in .text")).to_have_text([HELLO])
    reply = ann.page.get_by_role("combobox", name="Reply")
    await reply.fill(REPLY)
    await reply.press("Enter")
    await expect(theirs(page, REPLY)).to_be_visible()
    await expect(bob_messages.locator(".msg.out .text")).to_have_text([REPLY])
    # The visitor's window is open, so the reply is read, and Ann sees it.
    await expect(ann_messages.locator(".msg.out .status")).to_have_text(["read"])

    # What the visitor writes stays text: in the widget, the inbox's list and its view.
    await write(page, XSS)
    await expect(mine(page, XSS).locator(".bubble p")).to_have_text(XSS)
    await expect(mine(page, XSS)).to_have_attribute("data-status", "read")
    await expect(ann_messages.locator(".msg.in .text")).to_have_text([HELLO, XSS])
    await expect(bob_messages.locator(".msg.in .text")).to_have_text([HELLO, XSS])
    for agent in (ann, bob):
        await expect(conversation(agent.page, cid).locator(".preview")).to_have_text(XSS)
        assert await agent.page.locator("img").count() == 0
    shadow_images = "h => h.shadowRoot.querySelectorAll('.bubble img').length"
    assert await page.locator("parley-chat").evaluate(shadow_images) == 0

    # The visitor's network drops: the message waits, then goes out once.
    await visitor.set_offline(True)
    await expect(page.get_by_role("status").filter(has_text="You are offline")).to_be_visible()
    await write(page, OFFLINE)
    await expect(mine(page, OFFLINE)).to_have_attribute("data-status", "pending")
    assert OFFLINE not in [m["content"].get("text") for m in await history(live, cid)]
    await visitor.set_offline(False)
    await expect(mine(page, OFFLINE)).to_have_attribute("data-status", "read")
    # A message written after the reconnection arrives after anything the reconnection
    # sent, so once Ann has it, a doubled message would be on her screen too.
    await write(page, BACK)
    await expect(ann_messages.locator(".msg.in .text")).to_have_text([HELLO, XSS, OFFLINE, BACK])
    await expect(bob_messages.locator(".msg.in .text")).to_have_text([HELLO, XSS, OFFLINE, BACK])
    everything = [HELLO, REPLY, XSS, OFFLINE, BACK]
    assert [m["content"].get("text") for m in await history(live, cid)] == everything

    # A reload keeps the whole history, once each, and the window open.
    await page.reload()
    await wait_online(page)
    # (The greeting's bubble, the widget's own, has no key: the messages do.)
    await expect(page.locator(".msg[data-key] .bubble p")).to_have_text(everything)
    await expect(theirs(page, REPLY)).to_have_count(1)

    # axe-core: nothing serious in the open widget nor in the conversation view.
    assert await axe_serious(page) == []
    await axe_clean(ann.page, "the conversation view")

    assert dialogs == [], "a dialog opened in the visitor's page"
    inbox.watch.check()
    for context in (visitor, ann.context, bob.context):
        await context.close()
