"""The agent inbox at /inbox in a real browser (Debian's Chromium through Playwright).

Customers are the Python ``ParleyClient`` on ``/client`` (the web widget is tested on its
own); agents are browser contexts logged in to ``/inbox``. Every page is watched for the
whole test: no dialog may open (an XSS would fire ``alert``), no Content-Security-Policy
violation may be logged, and no requested URL may carry the agent's token.

The browser tests run on SQLite only: the server paths they drive are tested on both
databases by the API and realtime tests, and each browser test costs seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chat.db import models as m
from chat.domain.enums import AgentRole, Direction
from chat.services.conversations import NewMessage
from parley_client import AgentClient
from tests.browser.pages import XSS, Inbox, axe_clean, conversation
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under PARLEY_REQUIRE_SERVICES=1)
    expect = None  # type: ignore[assignment]

# docs/screenshots/inbox.png is taken again with PARLEY_UPDATE_SCREENSHOTS=1 (else into a
# temporary directory, so a test run leaves the working tree as it was).
UPDATE_SCREENSHOTS = os.environ.get("PARLEY_UPDATE_SCREENSHOTS") == "1"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "inbox.png"


@pytest.fixture
async def inbox(live_server: LiveServer, browser: Any) -> AsyncIterator[Inbox]:
    world = Inbox(live_server, browser)
    yield world
    await world.close()


async def test_an_agent_answers_a_customer_live_with_notes_and_canned_responses(
    inbox: Inbox,
) -> None:
    live = inbox.live
    await inbox.agent_account("ann@example.com", "Ann")
    r = await live.http.post(
        "/v1/canned-responses", json={"shortcut": "thanks", "text": "Thank you for waiting!"}
    )
    assert r.status_code == 201, r.text

    context, page = await inbox.open_inbox()
    response = await page.request.get(live.url + "/inbox")
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
                      "object-src 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "connect-src 'self' ws://127.0.0.1:" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    await axe_clean(page, "the login page")
    await context.close()

    ann = await inbox.login("ann@example.com", "Ann")
    page = ann.page
    received: list[str] = []
    customer = await inbox.customer("cust-1", XSS)
    customer.on("message", lambda d: received.append(d["message"]["content"].get("text")))
    first = await customer.send(XSS)
    cid = first["conversation_id"]

    # Live in the list, with the contact's name and the preview as text, one unread.
    item = conversation(page, cid)
    await expect(item.locator(".name")).to_have_text(XSS)
    await expect(item.locator(".preview")).to_have_text(XSS)
    await expect(item.locator(".badge")).to_have_text("1")
    await customer.send("Where is my order?")
    await expect(item.locator(".badge")).to_have_text("2")
    await expect(item.locator(".preview")).to_have_text("Where is my order?")
    await axe_clean(page, "the conversation list")

    await item.click()
    messages = page.get_by_role("list", name="Messages")
    await expect(messages.locator(".msg.in .text").first).to_have_text(XSS)
    await expect(page.get_by_role("heading", level=2, name=XSS)).to_be_visible()
    await expect(item.locator(".badge")).to_have_count(0)
    assert await page.locator("img").count() == 0

    # A reply goes out to the customer; its delivery state follows live.
    reply = page.get_by_role("combobox", name="Reply")
    await reply.fill("It left the warehouse today.")
    await reply.press("Enter")
    got = await customer.wait_for(
        "message", lambda d: d["message"]["content"].get("text") == "It left the warehouse today.",
        timeout=10,
    )
    await customer.read(cid, got["message"]["seq"])
    out = messages.locator(".msg.out").last
    await expect(out.locator(".status")).to_have_text("read")
    await expect(out.locator(".channel")).to_have_text("inapp")

    # A private note is shown as one, and never reaches the customer.
    await page.get_by_label("Private note").check()
    await reply.fill("Internal: refund approved by finance")
    await reply.press("Enter")
    await expect(messages.locator(".msg.note .text")).to_have_text("Internal: refund approved by finance")
    await expect(messages.locator(".msg.note .note-label")).to_be_visible()
    await page.get_by_label("Private note").uncheck()

    # /shortcut completes a canned response, which is then sent like any reply.
    await reply.fill("/tha")
    option = page.get_by_role("option", name="/thanks")
    await expect(option).to_be_visible()
    await reply.press("Enter")
    await expect(reply).to_have_value("Thank you for waiting!")
    await reply.press("Enter")
    await customer.wait_for(
        "message", lambda d: d["message"]["content"].get("text") == "Thank you for waiting!",
        timeout=10,
    )
    await customer.send("Great, thanks")
    await expect(messages.locator(".msg.in .text").last).to_have_text("Great, thanks")
    assert "Internal: refund approved by finance" not in received
    assert received == ["It left the warehouse today.", "Thank you for waiting!"]

    await axe_clean(page, "the conversation view")
    inbox.watch.check()


async def test_two_agents_see_each_others_assignment_reply_and_typing_live(
    inbox: Inbox, tmp_path: Path
) -> None:
    await inbox.agent_account("ann@example.com", "Ann")
    await inbox.agent_account("bob@example.com", "Bob", AgentRole.AGENT)  # no admin rights
    ann = await inbox.login("ann@example.com", "Ann")
    bob = await inbox.login("bob@example.com", "Bob")
    await expect(bob.page.get_by_role("button", name="Admin")).to_have_count(0)
    await expect(ann.page.get_by_label("Agents online")).to_contain_text("Ann, Bob")
    await expect(bob.page.get_by_label("Agents online")).to_contain_text("Ann, Bob")

    customer = await inbox.customer("cust-2", "Carla")
    cid = (await customer.send("My parcel is damaged"))["conversation_id"]
    for agent in (ann, bob):
        await conversation(agent.page, cid).click()
        await expect(agent.page.locator(".conv-head")).to_contain_text("Unassigned")

    await ann.page.get_by_role("button", name="Assign to me").click()
    await expect(bob.page.locator(".conv-head")).to_contain_text("Assigned to Ann")
    await expect(ann.page.locator(".conv-head")).to_contain_text("Assigned to me")
    await expect(bob.page.get_by_label("Assign to", exact=True)).to_have_value(re.compile("^agent:"))

    # Taking it with a stale view is refused: Ann's assignment is never overwritten.
    token = inbox.watch.tokens[1]
    stale = AgentClient(inbox.live.url, token)
    await stale.connect()
    ack = await stale.request(
        "assign",
        {"conversation_id": cid, "assignee": {"type": "agent", "id": "x"}, "expected_assignee": None},
    )
    await stale.close()
    assert ack["ok"] is False and ack["error"]["code"] == "assignee_changed"

    await ann.page.get_by_role("combobox", name="Reply").fill("Sorry! A replacement is on its way.")
    await expect(bob.page.locator(".typing")).to_have_text("Ann is typing…")
    await ann.page.get_by_role("combobox", name="Reply").press("Enter")
    bob_messages = bob.page.get_by_role("list", name="Messages")
    await expect(bob_messages.locator(".msg.out .text")).to_have_text(
        "Sorry! A replacement is on its way."
    )
    await customer.send("Thanks! Can I keep the damaged one?")
    await ann.page.get_by_label("Private note").check()
    await ann.page.get_by_role("combobox", name="Reply").fill("Carrier claim opened: #4471")
    await ann.page.get_by_role("combobox", name="Reply").press("Enter")
    await expect(bob_messages.locator(".msg.note .text")).to_have_text("Carrier claim opened: #4471")
    await ann.page.get_by_label("Private note").uncheck()
    await customer.typing(cid, True)
    await expect(bob.page.locator(".typing")).to_have_text("Carla is typing…")
    await expect(ann.page.locator(".typing")).to_have_text("Carla is typing…")
    await expect(ann.page.locator(".conv-head")).to_contain_text("Assigned to me")
    shot = DOCS_SCREENSHOT if UPDATE_SCREENSHOTS else tmp_path / "inbox.png"
    await ann.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    inbox.watch.check()


async def test_status_changes_filters_and_contact_edits(inbox: Inbox) -> None:
    live = inbox.live
    await inbox.agent_account("ann@example.com", "Ann")
    ann = await inbox.login("ann@example.com", "Ann")
    page = ann.page
    c1 = (await (await inbox.customer("cust-a", "Alice")).send("Hello from Alice"))["conversation_id"]
    c2 = (await (await inbox.customer("cust-b", "Bruno")).send("Hello from Bruno"))["conversation_id"]
    r = await live.http.post(
        "/v1/channels",
        json={"type": "telegram", "name": "Bot", "config": {"bot_token": "123:abc", "secret_token": "s3cret-token"}},
    )
    assert r.status_code == 201, r.text
    await live.services.conversations.post_message(
        NewMessage(
            workspace_id=live.workspace["workspace_id"], content={"type": "text", "text": "Hi on Telegram"},
            direction=Direction.INBOUND, author_type="contact", channel_id=r.json()["id"], address="4242",
        )
    )
    listed = page.locator(".convs .conv")
    await expect(listed).to_have_count(3)

    # Resolve leaves the Open list; the Resolved list has it; Reopen brings it back.
    await conversation(page, c1).click()
    await page.get_by_role("button", name="Resolve").click()
    await expect(conversation(page, c1)).to_have_count(0)
    await expect(listed).to_have_count(2)
    await page.get_by_label("Status").select_option("resolved")
    await expect(listed).to_have_count(1)
    await expect(conversation(page, c1)).to_be_visible()
    await page.get_by_role("button", name="Reopen").click()
    await expect(listed).to_have_count(0)

    # Snooze; the Snoozed filter shows only it.
    await page.get_by_label("Status").select_option("")
    await expect(listed).to_have_count(3)
    await conversation(page, c2).click()
    await page.get_by_label("Snooze", exact=True).select_option("1h")
    await expect(page.locator(".status-tag")).to_have_text("Snoozed")
    await expect(page.locator(".notice")).to_contain_text("Conversation snoozed until")
    await page.get_by_label("Status").select_option("snoozed")
    await expect(listed).to_have_count(1)
    await expect(conversation(page, c2)).to_be_visible()
    async with live.services.db.read() as session:
        wake = await session.scalar(select(m.OutboxEntry).where(m.OutboxEntry.ref_id == c2))
    assert wake is not None and (wake.kind, wake.state) == ("unsnooze", "pending")
    left = wake.due_at - datetime.now(UTC)
    assert timedelta(minutes=58) < left <= timedelta(hours=1)

    # Assignee filters: me, unassigned, bots (a bot assignment arrives live).
    await page.get_by_role("button", name="Assign to me").click()
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Assignee", exact=True).first.select_option("me")
    await expect(listed).to_have_count(1)
    await expect(conversation(page, c2)).to_be_visible()
    await page.get_by_label("Assignee", exact=True).first.select_option("none")
    await expect(listed).to_have_count(2)
    bot = await live.http.post("/v1/bots", json={
        "name": "Triage", "kind": "python", "config": {"path": "tests.fakes.brains:brain"},
    })
    assert bot.status_code == 201, bot.text
    r = await live.http.patch(
        f"/v1/conversations/{c1}", json={"assignee": {"type": "bot", "id": bot.json()["id"]}}
    )
    assert r.status_code == 200, r.text
    await expect(listed).to_have_count(1)
    await page.get_by_label("Assignee", exact=True).first.select_option("bots")
    await expect(listed).to_have_count(1)
    await expect(conversation(page, c1)).to_be_visible()

    # Channel filter.
    await page.get_by_label("Assignee", exact=True).first.select_option("")
    await page.get_by_label("Channel").select_option("telegram")
    await expect(listed).to_have_count(1)
    await expect(listed).to_contain_text("Hi on Telegram")
    await page.get_by_label("Channel").select_option("inapp")
    await expect(listed).to_have_count(2)

    # The contact's profile and attributes, edited and saved.
    await conversation(page, c1).click()
    panel = page.get_by_role("complementary", name="Contact")
    await expect(panel.get_by_label("Name")).to_have_value("Alice")
    await panel.get_by_label("Name").fill("Alice Liddell")
    await panel.get_by_role("button", name="Add attribute").click()
    await panel.get_by_label("Attribute name 1").fill("plan")
    await panel.get_by_label("Value of plan").fill("gold")
    await panel.get_by_role("button", name="Save contact").click()
    await expect(page.locator(".notice")).to_have_text("Contact saved")
    contact_id = (await live.http.get(f"/v1/conversations/{c1}")).json()["contact_id"]
    contact = (await live.http.get(f"/v1/contacts/{contact_id}")).json()
    assert (contact["name"], contact["attributes"]) == ("Alice Liddell", {"plan": "gold"})
    await expect(conversation(page, c1).locator(".name")).to_have_text("Alice Liddell")

    # The whole history: the latest 50 first, earlier pages on demand (with the bot
    # switched off, so that it does not answer Chen).
    off = await live.http.patch(f"/v1/bots/{bot.json()['id']}", json={"active": False})
    assert off.status_code == 200, off.text
    c3 = (await (await inbox.customer("cust-c", "Chen")).send("Hello from Chen"))["conversation_id"]
    for n in range(1, 61):
        r = await live.http.post(
            f"/v1/conversations/{c3}/messages",
            json={"content": {"type": "text", "text": f"Update {n}"}, "author": {"type": "bot", "id": "news"}},
        )
        assert r.status_code == 201, r.text
    await page.get_by_label("Channel").select_option("")
    await conversation(page, c3).click()
    messages = page.get_by_role("list", name="Messages")
    await expect(messages.locator(".msg .text").last).to_have_text("Update 60")
    await expect(messages.locator(".msg")).to_have_count(50)
    await messages.get_by_role("button", name="Load earlier messages").click()
    await expect(messages.locator(".msg")).to_have_count(61)
    await expect(messages.locator(".msg .text").first).to_have_text("Hello from Chen")
    await expect(messages.get_by_role("button", name="Load earlier messages")).to_have_count(0)
    inbox.watch.check()


async def test_an_admin_adds_an_agent_sets_the_widget_and_copies_its_snippet(inbox: Inbox) -> None:
    live = inbox.live
    await inbox.agent_account("ann@example.com", "Ann")
    ann = await inbox.login("ann@example.com", "Ann")
    page = ann.page
    await ann.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    await page.get_by_role("button", name="Admin").click()

    agents_section = page.get_by_role("region", name="Agents")
    await agents_section.get_by_label("Name").fill("Carl")
    await agents_section.get_by_label("Email").fill("carl@example.com")
    await agents_section.get_by_role("button", name="Add agent").click()
    created = page.locator(".created")
    await expect(created).to_contain_text("carl@example.com can log in with the password")
    password = re.search(r"password (\S+) \(shown once\)", await created.inner_text())
    assert password is not None
    r = await live.http.post(
        "/v1/auth/login", json={"email": "carl@example.com", "password": password.group(1)}
    )
    assert r.status_code == 200, r.text
    row = page.locator('tr[data-agent="carl@example.com"]')
    await row.get_by_label("Role of Carl").select_option("admin")
    await expect(page.locator(".notice")).to_have_text("Carl updated")
    await row.get_by_role("button", name="Deactivate Carl").click()
    await expect(row).to_contain_text("deactivated")
    agents = (await live.http.get("/v1/agents")).json()["data"]
    assert [(a["role"], a["active"]) for a in agents if a["email"] == "carl@example.com"] == [
        ("admin", False)
    ]

    await page.get_by_label("Allowed origins (one per line)").fill("https://shop.example\nhttps://www.shop.example")
    await page.get_by_role("button", name="Save widget settings").click()
    await expect(page.locator(".notice")).to_have_text("Widget settings saved")
    channels = (await live.http.get("/v1/channels?type=inapp")).json()["data"]
    assert channels[0]["config"]["allowed_origins"] == ["https://shop.example", "https://www.shop.example"]

    await page.get_by_role("button", name="Copy snippet").click()
    await expect(page.locator(".notice")).to_have_text("Snippet copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    key = live.workspace["widget_key"]
    assert copied == f'<script src="{live.url}/widget.js" data-widget-key="{key}" async></script>'

    channels_section = page.get_by_role("region", name="Channels")
    await channels_section.get_by_label("Type").select_option("inapp")
    await channels_section.get_by_label("Name").fill("Second site")
    await channels_section.get_by_role("button", name="Add channel").click()
    await expect(page.get_by_role("cell", name="Second site")).to_be_visible()
    await axe_clean(page, "the admin screens")
    inbox.watch.check()
