"""Operational endpoints: health, readiness, metrics, the OpenAPI document and its page.

They are declared like every other endpoint, so the OpenAPI document describes them too.
"""

from __future__ import annotations

import hmac
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
)
from starlette.routing import BaseRoute, Match

from chat.api import openapi
from chat.api.routing import Ctx, Reply, Router, starlette_routes
from chat.domain.errors import Unauthorized

STATIC = Path(__file__).resolve().parent.parent / "static"

router = Router("system")


def _version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:
        return "0.0.0"


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        description='"database" and, with Redis configured, "redis": "ok" or "error: <type>"'
    )


class OpenApiDocument(BaseModel):
    """This document (OpenAPI 3.1)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


@router.route("GET", "/health", summary="Liveness: the process answers", access="public", response=Health)
async def health(_ctx: Ctx) -> Any:
    return {"status": "ok"}


@router.route(
    "GET", "/ready", summary="Readiness: the database (and Redis, when configured) answer",
    access="public", response=Readiness, also=(503,),
)
async def ready(ctx: Ctx) -> Any:
    """200 when every check is ``ok``, else 503 with the same body."""
    services = ctx.services
    checks: dict[str, str] = {}
    try:
        async with services.db.read() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
    probe = getattr(ctx.request.app.state, "redis_probe", None)
    if probe is not None:
        checks["redis"] = await probe()
    ok = all(v == "ok" for v in checks.values())
    return Reply({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


@router.route(
    "GET", "/metrics", summary="Prometheus metrics (text exposition format)", access="public",
    produces="text/plain", errors=(401,),
)
async def metrics(ctx: Ctx) -> Any:
    """With ``PARLEY_METRICS_TOKEN`` set, send ``Authorization: Bearer <that token>``."""
    token = ctx.services.settings.metrics_token
    if token:
        scheme, _, given = ctx.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise Unauthorized("send Authorization: Bearer <metrics token>")
    body = await ctx.request.app.state.metrics.render()
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


@router.route("GET", "/docs", summary="A page to read this document", access="public", produces="text/html")
async def docs(_ctx: Ctx) -> Any:
    return FileResponse(STATIC / "docs.html", media_type="text/html")


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


@router.route(
    "GET", "/", summary="What is running, with links to the reference, health and pages",
    access="public", produces="text/html",
)
async def landing(ctx: Ctx) -> Any:
    """``GET /``: what is running and where to go next (no script, nothing fetched elsewhere)."""
    request, services = ctx.request, ctx.services
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
    """These endpoints, ``routers``' and ``GET /openapi.json`` describing all of them."""
    described = Router("system")
    every = [*routers, router, described]
    spec: dict[str, Any] = {}

    @described.route(
        "GET", "/openapi.json", summary="This document", access="public", response=OpenApiDocument
    )
    async def openapi_json(_ctx: Ctx) -> Any:
        return JSONResponse(spec)

    spec.update(openapi.document(every, _version()))
    return [*starlette_routes(every)]
