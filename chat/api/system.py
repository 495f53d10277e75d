"""Operational endpoints: health, readiness, metrics, the OpenAPI document and its page."""

from __future__ import annotations

import hmac
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import BaseRoute, Match, Route

from chat.api import openapi
from chat.api.errors import error_response
from chat.api.routing import Router
from chat.services.container import Services

STATIC = Path(__file__).resolve().parent.parent / "static"


def _version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:
        return "0.0.0"


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        async with services.db.read() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
    probe = getattr(request.app.state, "redis_probe", None)
    if probe is not None:
        checks["redis"] = await probe()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            return error_response(401, "unauthorized", "send Authorization: Bearer <metrics token>")
    body = await request.app.state.metrics.render()
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


# Pages that other parts of Parley may serve; the landing page links them once routed.
OPTIONAL_PAGES = [
    ("/inbox", "Agent inbox", "answer customers as an agent"),
    ("/widget/demo", "Widget demo", "the web chat widget on a sample page"),
]
ALWAYS = [
    ("/docs", "API reference", "every REST endpoint, generated from the code"),
    ("/openapi.json", "OpenAPI document", "the same, for tools"),
    ("/health", "/health", "the process is up"),
    ("/ready", "/ready", "the database (and Redis, when configured) answer"),
    ("/metrics", "/metrics", "Prometheus text"),
]
_DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_LANDING_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _routed(request: Request, path: str) -> bool:
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(r.matches(scope)[0] == Match.FULL for r in request.app.routes)


async def landing(request: Request) -> Response:
    """``GET /``: what is running and where to go next (no script, nothing fetched elsewhere)."""
    services: Services = request.app.state.services
    settings = services.settings
    backend = settings.database_url.split("+", 1)[0].split(":", 1)[0]
    database = _DATABASES.get(backend, backend)
    redis = "with Redis" if settings.redis_url else "without Redis (one process)"
    pages = [p for p in OPTIONAL_PAGES if _routed(request, p[0])] + ALWAYS
    items = "\n".join(
        f'<li><a href="{escape(path)}">{escape(title)}</a> &mdash; {escape(what)}</li>'
        for path, title, what in pages
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley {escape(_version())}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2em}}</style></head>
<body><h1>Parley is running</h1>
<p>Version <code>{escape(_version())}</code> on <strong>{escape(database)}</strong>,
{escape(redis)}.</p>
<ul>
{items}
</ul>
<p>Customers and agents connect over Socket.IO at <code>/socket.io</code>
(namespaces <code>/client</code>, <code>/agent</code>, <code>/rasa</code>).</p>
</body></html>
"""
    return HTMLResponse(body, headers={"Content-Security-Policy": _LANDING_CSP})


def routes(routers: list[Router]) -> list[BaseRoute]:
    spec = openapi.document(routers, _version())

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(_request: Request) -> Response:
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    return [
        Route("/", landing, include_in_schema=False),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi_json),
        Route("/docs", docs),
    ]
