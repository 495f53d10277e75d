"""What the browser tests share: the visitor's page with the widget, the agent's inbox.

The widget side: a plain page carrying the one-tag snippet (served by the ``site``
fixture from another origin), a visitor in its own browser context, and locators for
the messages in the widget's (open) shadow root. The inbox side: agents logged in to
``/inbox`` in their own browser contexts, every page watched for what must never happen
(a dialog, a Content-Security-Policy violation, a token in a URL). axe-core checks both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from chat.domain.enums import AgentRole
from parley_client import ParleyClient, user_hmac
from tests.conftest import LiveServer

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under PARLEY_REQUIRE_SERVICES=1)
    expect = None  # type: ignore[assignment]

XSS = "<img src=x onerror=alert(1)>"
PASSWORD = "correct-horse-battery"
TIMEOUT_MS = 15_000  # an inbox page's default timeout: the machine may be busy


# The visitor's side: a customer's page with the widget.


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
    page.set_default_timeout(10_000)
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
    await expect(page.get_by_role("log")).to_have_attribute("aria-busy", "false")


async def write(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


def mine(page: Any, text: str) -> Any:
    return page.locator(".msg.mine", has_text=text)


def theirs(page: Any, text: str) -> Any:
    return page.locator(".msg.theirs", has_text=text)


async def history(live: LiveServer, conversation_id: str) -> list[dict[str, Any]]:
    r = await live.http.get(f"/v1/conversations/{conversation_id}/messages", params={"limit": 200})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def axe_serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page (the widget's shadow root
    included: axe walks open shadow roots)."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# The agents' side: the inbox at /inbox.


@dataclass
class Watch:
    """What a page did that it must not: dialogs, CSP violations, tokens in URLs."""

    urls: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

        async def dismiss(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)

    def check(self) -> None:
        assert self.dialogs == [], "a dialog opened: user text ran as script"
        violations = [c for c in self.console if "Content Security Policy" in c]
        assert violations == []
        assert self.tokens, "no token was seen, so nothing was checked"
        assert any("/socket.io/" in u for u in self.urls), "the socket's URLs were watched too"
        leaked = [u for u in self.urls for t in self.tokens if t in u]
        assert leaked == []


@dataclass
class Agent:
    email: str
    name: str
    page: Any
    context: Any


class Inbox:
    """A live server with its browser, agents, customers and watches."""

    def __init__(self, live: LiveServer, browser: Any) -> None:
        self.live = live
        self.browser = browser
        self.watch = Watch()
        self.customers: list[ParleyClient] = []

    async def agent_account(self, email: str, name: str, role: AgentRole = AgentRole.ADMIN) -> None:
        await self.live.services.agents.create(
            self.live.workspace["workspace_id"], email, name, role, PASSWORD
        )

    async def open_inbox(self, **context_options: Any) -> tuple[Any, Any]:
        context = await self.browser.new_context(
            viewport={"width": 1360, "height": 820}, **context_options
        )
        page = await context.new_page()
        self.watch.attach(page)
        page.set_default_timeout(TIMEOUT_MS)
        response = await page.goto(self.live.url + "/inbox")
        assert response is not None and response.status == 200
        return context, page

    async def login(self, email: str, name: str) -> Agent:
        context, page = await self.open_inbox()
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
        token = await page.evaluate("JSON.parse(sessionStorage.getItem('parley.inbox.session')).token")
        self.watch.tokens.append(token)
        return Agent(email, name, page, context)

    async def customer(self, external_id: str, name: str) -> ParleyClient:
        ws = self.live.workspace
        client = ParleyClient(
            self.live.url,
            ws["widget_key"],
            user={
                "external_id": external_id,
                "name": name,
                "hmac": user_hmac(ws["identity_secret"], external_id),
            },
        )
        await client.connect()
        self.customers.append(client)
        return client

    async def close(self) -> None:
        for c in self.customers:
            await c.close()


async def axe_clean(page: Any, where: str) -> None:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"axe on {where}"


def conversation(page: Any, conversation_id: str) -> Any:
    """A conversation's entry in the inbox's list."""
    return page.locator(f'[data-conversation="{conversation_id}"]')
