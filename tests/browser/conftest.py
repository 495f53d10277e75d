"""Browser fixtures: Debian's Chromium driven by Playwright, and pages served from 127.0.0.1.

Playwright never downloads a browser here: it launches the system's ``chromium``
(``apt-get install chromium``; scripts/install-test-tools.sh) with ``--no-sandbox
--disable-gpu``. Without chromium or the ``playwright`` package the tests skip with the
reason (and fail under PARLEY_REQUIRE_SERVICES=1).

``site`` serves test pages from its own port, so a page's origin differs from the Parley
server's as on a real customer's site. Browser tests run on SQLite only: the database
paths they cross are covered on both databases elsewhere.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn

from chat.settings import Settings
from tests.conftest import REQUIRE, clear_database, free_port, test_settings

# The shared helpers' asserts explain their failures as a test's do.
pytest.register_assert_rewrite("tests.browser.pages")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def db_url(sqlite_url: str) -> Iterator[str]:
    yield sqlite_url
    clear_database(sqlite_url)


@pytest.fixture
def settings(db_url: str) -> Settings:
    # A dead connection is noticed within seconds rather than the default 45.
    return test_settings(db_url, socket_ping_interval_seconds=2.0, socket_ping_timeout_seconds=2.0)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (the system's), closed after the test."""
    path = shutil.which("chromium")
    if path is None:
        _missing("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class Site:
    """Static HTML pages on 127.0.0.1 (an ASGI app run by uvicorn in the test's loop)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.url = ""

    def page(self, path: str, html: str) -> str:
        """Serves ``html`` at ``path``; returns its URL."""
        self.pages[path] = html
        return self.url + path

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        html = self.pages.get(scope["path"])
        status, body = (200, html.encode()) if html is not None else (404, b"not found")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    pages = Site()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(pages, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    pages.url = f"http://127.0.0.1:{port}"
    yield pages
    server.should_exit = True
    await task
