"""The web widget in a real browser: a visitor on a plain page carrying the one-tag snippet,
an agent on the Python ``AgentClient``, and the server's history as the referee.

The page is served from another 127.0.0.1 port than Parley, so the widget runs
cross-origin as on a customer's site.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from chat.domain.enums import AgentRole
from parley_client import AgentClient, user_hmac
from tests.browser.conftest import Site
from tests.browser.pages import (
    XSS,
    axe_serious,
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

# The README's and docs/widget.md's screenshots, rewritten when PARLEY_UPDATE_SCREENSHOTS=1
# (otherwise the test takes them into a temporary folder).
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("PARLEY_UPDATE_SCREENSHOTS") == "1"
WAIT = 10.0  # seconds, for events the Python side waits for


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=10_000)


def text_is(text: str) -> Any:
    return lambda e: e["message"]["content"].get("text") == text


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
    await page.evaluate("window.Parley.on('unread', n => { window.unreadSeen = n; })")
    await page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name=re.compile("^Open chat"))
    await expect(launcher).to_be_focused()
    await agent.send(conv, "Anything else?")
    await expect(page.locator(".badge")).to_have_text("1")
    await expect(launcher).to_have_accessible_name("Open chat, 1 unread message")
    assert await page.evaluate("window.unreadSeen") == 1

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


async def test_what_people_write_stays_text_and_buttons_and_media_work(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    ctx, page, dialogs = await visit(browser, site.page("/", page_html(snippet(live_server))))
    await open_chat(page)
    await write(page, XSS)
    event = await agent.wait_for("message", text_is(XSS), WAIT)
    conv = event["conversation_id"]
    await agent.send(conv, f"You wrote {XSS} <b>bold</b>")
    await agent.send(
        conv,
        {
            "type": "buttons",
            "text": "Which <i>size</i>?",
            "buttons": [{"id": "small", "title": "Small <script>"}, {"id": "large", "title": "Large"}],
        },
    )
    await agent.send(
        conv,
        {"type": "media", "url": f"{live_server.url}/pic.png", "mime_type": "image/png",
         "caption": "The blue teapot"},
    )
    await agent.send(
        conv,
        {"type": "media", "url": f"{live_server.url}/invoice.pdf", "mime_type": "application/pdf",
         "filename": "invoice-42.pdf"},
    )
    await expect(mine(page, XSS).locator(".bubble p")).to_have_text(XSS)
    await expect(theirs(page, "You wrote").locator(".bubble p")).to_have_text(f"You wrote {XSS} <b>bold</b>")
    assert await page.locator("parley-chat").evaluate("h => h.shadowRoot.querySelectorAll('.bubble img:not([alt])').length") == 0
    assert await page.locator(".bubble b, .bubble i, .bubble script").count() == 0

    # Buttons are buttons: a click answers with the button's title.
    small = page.get_by_role("button", name="Small <script>")
    await expect(small).to_be_visible()
    await small.click()
    await agent.wait_for("message", text_is("Small <script>"), WAIT)
    await expect(mine(page, "Small <script>")).to_have_attribute("data-status", "delivered")

    # Images and files are shown.
    image = page.get_by_role("img", name="The blue teapot")
    await expect(image).to_have_attribute("src", f"{live_server.url}/pic.png")
    link = page.get_by_role("link", name="invoice-42.pdf")
    await expect(link).to_have_attribute("href", f"{live_server.url}/invoice.pdf")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert dialogs == []
    await ctx.close()


async def test_the_pre_chat_form_fills_the_contact_before_the_first_message(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    await configure(
        live_server,
        widget={
            "color": "#0F766E",
            "title": "Acme help",
            "greeting": "Hi! Ask us about your order.",
            "pre_chat_form": {
                "enabled": True,
                "fields": [{"key": "name", "required": True}, {"key": "email", "required": True}],
            },
        },
    )
    ctx, page, _ = await visit(browser, site.page("/", page_html(snippet(live_server))))
    await open_chat(page)
    await expect(page.get_by_role("heading", name="Acme help")).to_be_visible()
    await expect(theirs(page, "Hi! Ask us about your order.")).to_be_visible()
    name = page.get_by_role("textbox", name=re.compile("^Name"))
    await expect(name).to_be_focused()
    await expect(page.get_by_role("textbox", name="Message")).to_have_count(0)

    await page.get_by_role("button", name="Start chat").click()
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_be_focused()
    await name.fill("Ada Lovelace")
    email = page.get_by_role("textbox", name=re.compile("^Email"))
    await email.fill("not an address")
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.get_by_text("Enter a valid email address.")).to_be_visible()
    await email.fill("Ada@Example.com")
    await page.get_by_role("button", name="Start chat").click()

    box = page.get_by_role("textbox", name="Message")
    await expect(box).to_be_focused()
    await write(page, "Hi, it is Ada")
    event = await agent.wait_for("message", text_is("Hi, it is Ada"), WAIT)
    contact = (await live_server.http.get(f"/v1/contacts/{event['conversation']['contact_id']}")).json()
    assert (contact["name"], contact["email"]) == ("Ada Lovelace", "ada@example.com")

    # Once answered, a reload goes straight to the conversation (the window stays open).
    await page.reload()
    await wait_online(page)
    await expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    # Restored, not opened by the visitor: the page keeps its focus.
    assert await page.evaluate("document.activeElement.localName") == "body"
    await expect(page.locator("form.form")).to_have_count(0)
    await ctx.close()


async def test_identify_with_an_hmac_queued_before_the_script_loads(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    secret = live_server.workspace["identity_secret"]
    mac = user_hmac(secret, "user-42")
    stub = (
        "<script>window.Parley = window.Parley || {q: [], identify: function (u) "
        "{ this.q.push(['identify', u]); }};"
        f"Parley.identify({{external_id: 'user-42', name: 'Grace', email: 'grace@example.com', hmac: '{mac}'}});"
        "</script>"
    )
    ctx, page, _ = await visit(browser, site.page("/", page_html(stub + snippet(live_server))))
    await open_chat(page)
    await write(page, "Logged in and asking")
    event = await agent.wait_for("message", text_is("Logged in and asking"), WAIT)
    contact = (await live_server.http.get(f"/v1/contacts/{event['conversation']['contact_id']}")).json()
    assert (contact["external_id"], contact["name"]) == ("user-42", "Grace")

    # The same user on another device (a fresh browser context) sees the same history.
    other, page2, _ = await visit(browser, site.page("/", page_html(stub + snippet(live_server))))
    await open_chat(page2)
    await expect(mine(page2, "Logged in and asking")).to_have_count(1)

    # A wrong hmac is refused, and the window says so instead of pretending to work.
    bad = stub.replace(mac, "0" * 64)
    third, page3, _ = await visit(browser, site.page("/bad", page_html(bad + snippet(live_server))))
    await page3.get_by_role("button", name=re.compile("^Open chat")).click()
    alert = page3.get_by_role("alert")
    await expect(alert).to_have_text("We could not verify who you are, so the chat cannot start.")
    await expect(alert).to_have_attribute("data-refusal", "invalid_hmac")
    await expect(page3.get_by_role("textbox", name="Message")).to_have_count(0)

    # Identified after the load, with a user_token instead: the widget reconnects as that user.
    token = jwt.encode(
        {"sub": "user-43", "name": "Hopper", "exp": int(time.time()) + 600}, secret, algorithm="HS256"
    )
    await page3.evaluate("token => window.Parley.identify({user_token: token})", token)
    await expect(page3.get_by_role("alert")).to_have_count(0)
    await wait_online(page3)
    await write(page3, "Signed in with a token")
    event = await agent.wait_for("message", text_is("Signed in with a token"), WAIT)
    contact = (await live_server.http.get(f"/v1/contacts/{event['conversation']['contact_id']}")).json()
    assert (contact["external_id"], contact["name"]) == ("user-43", "Hopper")

    # Logging out forgets the user on this device: an anonymous visitor without that history.
    key = f"parley:{live_server.workspace['widget_key']}"
    before = await page2.evaluate("k => JSON.parse(localStorage.getItem(k)).session", key)
    await page2.evaluate("window.Parley.logout()")
    await page2.wait_for_function(
        "([k, old]) => { const s = JSON.parse(localStorage.getItem(k) || '{}');"
        " return s.session && s.session !== old; }",
        arg=[key, before],
    )
    after = await page2.evaluate("k => JSON.parse(localStorage.getItem(k))", key)
    assert after["external_id"] is None
    await wait_online(page2)
    await expect(mine(page2, "Logged in and asking")).to_have_count(0)
    for c in (ctx, other, third):
        await c.close()


async def test_a_page_outside_the_allowed_origins_shows_the_chat_is_unavailable(
    browser: Any, site: Site, live_server: LiveServer
) -> None:
    from playwright.async_api import expect

    await configure(live_server, allowed_origins=["https://shop.example.com"])
    ctx, page, _ = await visit(browser, site.page("/", page_html(snippet(live_server))))
    await page.get_by_role("button", name=re.compile("^Open chat")).click()
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text("Chat is not available on this page.")
    await expect(alert).to_have_attribute("data-refusal", "origin_not_allowed")

    await configure(live_server, allowed_origins=[site.url])
    await page.reload()  # the window stays open across the reload
    await wait_online(page)
    await expect(page.get_by_role("alert")).to_have_count(0)
    await ctx.close()


# Everything a stylesheet can throw at the widget's element and what it inherits. `display:
# none` spares <html> and <body> themselves: hiding those hides the whole page, the widget
# with it, and nothing inside a page can (or should) undo that.
HOSTILE_CSS = """<style>
body * , parley-chat { display: none !important; }
* { color: red !important; font: 40px/4 serif !important; visibility: hidden !important;
    position: static !important; z-index: -1 !important; pointer-events: none !important; }
div, button, textarea, input, span, p { all: unset !important; }
html body { transform: none; }
</style>"""


async def test_a_hostile_page_stylesheet_cannot_hide_or_restyle_the_widget(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    url = site.page("/", page_html(snippet(live_server), head=HOSTILE_CSS))
    ctx, page, _ = await visit(browser, url)
    launcher = page.get_by_role("button", name=re.compile("^Open chat"))
    await expect(launcher).to_be_visible()
    assert await page.get_by_role("heading", name="Acme shop").is_hidden()
    box = await launcher.bounding_box()
    assert box is not None and box["width"] == 56 and box["height"] == 56
    await launcher.click()
    await wait_online(page)
    await write(page, "Can you see me?")
    await agent.wait_for("message", text_is("Can you see me?"), WAIT)
    bubble = mine(page, "Can you see me?").locator(".bubble")
    await expect(bubble).to_be_visible()
    size = await bubble.evaluate("b => getComputedStyle(b).fontSize")
    assert size == "15px"
    await ctx.close()


# What a page looks like to a script: computed styles of its elements (the widget's own
# element excluded).
PAGE_LOOK = """() => [...document.querySelectorAll('html, body, body *:not(parley-chat):not(script)')]
  .map(e => { const s = getComputedStyle(e);
    return [e.localName, s.font, s.color, s.margin, s.display, s.position, s.boxSizing].join('|'); })"""


async def test_labels_follow_the_visitors_language_and_the_page_is_left_as_it_was(
    browser: Any, site: Site, live_server: LiveServer
) -> None:
    from playwright.async_api import expect

    ctx, page, _ = await visit(browser, site.page("/bare", page_html("")), locale="fr-FR")
    bare = await page.evaluate(PAGE_LOOK)
    await page.goto(site.page("/", page_html(snippet(live_server))))
    launcher = page.get_by_role("button", name="Ouvrir la discussion")
    await expect(launcher).to_be_visible()
    # The widget leaves the page as it was: same styles, one element and one global added.
    assert await page.evaluate(PAGE_LOOK) == bare
    assert await page.evaluate("[...document.body.children].map(e => e.localName)") == [
        "main", "script", "parley-chat"
    ]
    await launcher.click()
    await expect(page.get_by_role("textbox", name="Message")).to_have_attribute("placeholder", "Écrivez un message…")
    await expect(page.get_by_role("button", name="Fermer la discussion").first).to_be_visible()
    await expect(page.get_by_role("dialog", name="Discutons")).to_be_visible()
    await expect(page.locator(".root")).to_have_attribute("lang", "fr")
    await ctx.close()

    forced = site.page("/en", page_html(snippet(live_server, ' data-locale="en"')))
    ctx, page, _ = await visit(browser, forced, locale="fr-FR")
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    await ctx.close()


async def test_keyboard_and_screen_readers_axe_finds_nothing_serious(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    ctx, page, _ = await visit(browser, site.page("/", page_html(snippet(live_server))))
    launcher = page.get_by_role("button", name="Open chat")
    await expect(launcher).to_be_visible()
    assert await axe_serious(page) == []

    # Keyboard only: Tab reaches the launcher, Enter opens, the message box has the focus.
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await launcher.evaluate("b => b.getRootNode().activeElement === b"):
            break
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await page.keyboard.press("Enter")
    await wait_online(page)
    box = page.get_by_role("textbox", name="Message")
    await expect(box).to_be_focused()
    await page.keyboard.type("Keyboard only")
    await page.keyboard.press("Enter")
    event = await agent.wait_for("message", text_is("Keyboard only"), WAIT)
    await agent.send(event["conversation_id"], "Got it, thanks!")
    await agent.send(
        event["conversation_id"],
        {"type": "buttons", "text": "Rate us", "buttons": [{"id": "good", "title": "Good"}]},
    )
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(log.locator(".msg", has_text="Got it, thanks!")).to_be_visible()
    await expect(page.get_by_role("button", name="Good")).to_be_visible()
    assert await axe_serious(page) == []

    await page.keyboard.press("Escape")
    await expect(launcher).to_be_focused()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await ctx.close()


async def test_on_a_phone_the_window_fills_the_screen_and_screenshots(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    shots = SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path

    await configure(
        live_server, widget={"title": "Acme help", "greeting": "Hi! Ask us about your order."}
    )
    url = site.page("/", page_html(snippet(live_server)))
    ctx, page, _ = await visit(browser, url, viewport={"width": 1280, "height": 800})
    await open_chat(page)
    await write(page, "Hello! Where is order #1042?")
    event = await agent.wait_for("message", text_is("Hello! Where is order #1042?"), WAIT)
    conv = event["conversation_id"]
    await agent.send(conv, "It shipped yesterday: it should reach you on Thursday.")
    await agent.send(
        conv,
        {"type": "buttons", "text": "Anything else?",
         "buttons": [{"id": "track", "title": "Track it"}, {"id": "done", "title": "No, thanks"}]},
    )
    await agent.read(conv, event["message"]["seq"])
    await expect(page.get_by_role("button", name="No, thanks")).to_be_visible()
    await agent.typing(conv, True)
    await expect(page.locator(".typing")).to_have_text("Ann is typing…")
    panel = page.get_by_role("dialog")
    box = await panel.bounding_box()
    assert box is not None and box["width"] == 370
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / "widget-desktop.png"))
    await agent.typing(conv, False)
    saved = await ctx.storage_state()  # the same visitor (its session) on a phone next
    await ctx.close()

    phone = {"width": 390, "height": 844}
    ctx, page, _ = await visit(
        browser, url, viewport=phone, is_mobile=True, has_touch=True, storage_state=saved
    )
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    await page.get_by_role("button", name="Open chat").tap()
    await wait_online(page)
    box = await page.get_by_role("dialog").bounding_box()
    assert box is not None and (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
    # The launcher hides behind the full-screen window; the header's button closes it.
    await expect(page.locator(".launcher")).to_be_hidden()
    await expect(theirs(page, "It shipped yesterday")).to_be_visible()
    await write(page, "Great, thank you!")
    await agent.wait_for("message", text_is("Great, thank you!"), WAIT)
    await expect(mine(page, "Great, thank you!")).to_have_attribute("data-status", "delivered")
    assert await axe_serious(page) == []
    await page.screenshot(path=str(shots / "widget-phone.png"))
    await page.get_by_role("button", name="Close chat").tap()
    await expect(page.get_by_role("button", name="Open chat")).to_be_focused()
    await ctx.close()


async def test_the_demo_page_carries_the_snippet_and_the_widget_works_there(
    browser: Any, live_server: LiveServer, agent: AgentClient
) -> None:
    from playwright.async_api import expect

    key = live_server.workspace["widget_key"]
    url = f"{live_server.url}/widget/demo?widget_key={key}"
    ctx = await browser.new_context()
    page = await ctx.new_page()
    errors: list[str] = []  # script errors, CSP refusals, failed requests (but the favicon)

    def console(m: Any) -> None:
        if m.type == "error" and "Failed to load resource" not in m.text:
            errors.append(m.text)

    def response(r: Any) -> None:
        if r.status >= 400 and not r.url.endswith("/favicon.ico"):
            errors.append(f"{r.status} {r.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda e: errors.append(str(e)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(url)
    await expect(page.get_by_text(f'data-widget-key="{key}"')).to_be_visible()
    await open_chat(page)
    await write(page, "Trying the demo")
    await agent.wait_for("message", text_is("Trying the demo"), WAIT)
    await expect(mine(page, "Trying the demo")).to_have_attribute("data-status", "delivered")
    assert errors == [] and dialogs == []
    await ctx.close()


async def test_a_stale_session_starts_over_and_what_waited_to_be_sent_goes_out(
    browser: Any, site: Site, live_server: LiveServer, agent: AgentClient
) -> None:
    """A session token that no longer works (expired, forged, its contact deleted) is
    refused with ``invalid_session``: the widget starts as a new visitor, and a message
    left in the outbox by an earlier visit is sent, once."""
    from playwright.async_api import expect

    key = f"parley:{live_server.workspace['widget_key']}"
    stored = {
        "session": "not-a-session-token",
        "outbox": [{"cmid": "left-over-1", "content": {"type": "text", "text": "Written last time"},
                    "created_at": "2026-01-01T12:00:00.000Z"}],
    }
    url = site.page("/", page_html(snippet(live_server)))
    ctx = await browser.new_context()
    await ctx.add_init_script(
        f"if (!localStorage.getItem({key!r})) localStorage.setItem({key!r}, {json.dumps(json.dumps(stored))});"
    )
    page = await ctx.new_page()
    await page.goto(url)
    event = await agent.wait_for("message", text_is("Written last time"), WAIT)
    assert event["message"]["client_message_id"] == "left-over-1"
    await open_chat(page)
    await expect(mine(page, "Written last time")).to_have_attribute("data-status", "delivered")
    fresh = await page.evaluate("k => JSON.parse(localStorage.getItem(k))", key)
    assert fresh["session"] != "not-a-session-token" and fresh["outbox"] == []
    texts = [m["content"]["text"] for m in await history(live_server, event["conversation_id"])]
    assert texts == ["Written last time"]
    await ctx.close()
