"""``GET /``: a small page saying what runs, linking the reference, pages and health checks."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from chat.api.system import _version


def links(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


async def test_the_landing_page_says_what_runs_and_links_the_docs_and_health(
    client: httpx.AsyncClient, db_url: str
) -> None:
    resp = await client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert f"<code>{_version()}</code>" in page
    assert ("PostgreSQL" if db_url.startswith("postgresql") else "SQLite") in page
    assert links(page) == ["/inbox", "/widget/demo", "/docs", "/openapi.json", "/health", "/ready", "/metrics"]
    for path in links(page):
        assert (await client.get(path)).status_code == 200, path


async def test_the_landing_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    resp = await client.get("/")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert not re.search(r"<script|<link|<img|src=|https?://", resp.text)


async def test_the_inbox_and_widget_demo_are_linked_once_they_are_routed(
    app: Any, client: httpx.AsyncClient
) -> None:
    async def page(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("a page")

    app.router.routes.append(Route("/inbox", page))
    app.router.routes.append(Route("/widget/demo", page))
    found = links((await client.get("/")).text)
    assert found[:2] == ["/inbox", "/widget/demo"]
