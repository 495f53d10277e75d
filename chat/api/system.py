"""Operational endpoints: health, readiness, metrics, the OpenAPI document and its page."""

from __future__ import annotations

import hmac
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

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


def routes(routers: list[Router]) -> list[BaseRoute]:
    spec = openapi.document(routers, _version())

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(_request: Request) -> Response:
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    return [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi_json),
        Route("/docs", docs),
    ]
