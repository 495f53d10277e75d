"""Operational endpoints: health, readiness, metrics, the OpenAPI document and its page.

They are declared like every other endpoint, so the OpenAPI document describes them too.
"""

from __future__ import annotations

import hmac
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute

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
