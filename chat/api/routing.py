"""Declaring REST endpoints once: the route, its validation and its OpenAPI entry.

An endpoint names its body, query and response models; the wrapper enforces size,
media type, JSON syntax, schema and auth before the handler runs, and the OpenAPI
document is generated from the same declarations. A method a path does not have is 405
with ``Allow`` naming the ones it has (``chat.api.errors``, for every route).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat.api.auth import Principal, authenticate
from chat.api.errors import validation_details
from chat.domain import jsontext
from chat.domain.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from chat.domain.text import NUL, NUL_MESSAGE, nul_at
from chat.services.container import Services

Access = Literal["public", "workspace", "admin"]


@dataclass
class Ctx:
    request: Request
    services: Services
    principal: Principal | None
    body: Any = None
    query: Any = None

    @property
    def path(self) -> dict[str, Any]:
        return self.request.path_params

    @property
    def workspace_id(self) -> str:
        assert self.principal is not None
        return self.principal.workspace_id


@dataclass(frozen=True)
class Reply:
    body: Any
    status: int = 200


Handler = Callable[[Ctx], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...] = ()  # statuses beyond the ones every endpoint of its kind has
    also: tuple[int, ...] = ()  # other success statuses with the same response
    produces: str = "application/json"  # the media type of a success (text for a few)


@dataclass
class Router:
    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        access: Access = "workspace",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        also: tuple[int, ...] = (),
        produces: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method, path, handler, summary, self.tag, access, body, query, response,
                    status, errors, also, produces,
                )
            )
            return handler

        return register


async def read_body(request: Request, limit: int) -> bytes:
    """The request's raw body, at most ``limit`` bytes (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, enforcing size (413), media type (415) and syntax (400)."""
    raw = await read_body(request, limit)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = jsontext.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="invalid_json") from exc
    # JSON can carry a NUL only as the escape \u0000 (a raw one is invalid JSON).
    if b"\\u0000" in raw:
        refuse_nul(nul_at(body))
    return body


def refuse_nul(where: list[str | int] | None) -> None:
    """422 ``invalid_character`` naming the field, when ``where`` found a NUL."""
    if where is not None:
        raise Unprocessable(
            NUL_MESSAGE,
            code="invalid_character",
            details=[{"loc": where, "msg": NUL_MESSAGE, "type": "invalid_character"}],
        )


def _check_params(request: Request) -> None:
    """Path ids and query values with a NUL are refused before anything looks them up."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            refuse_nul([name])
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            refuse_nul([name])


def validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable("request does not match the schema", details=validation_details(exc, data))


def _wrap(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        _check_params(request)
        principal = None
        if ep.access != "public":
            principal = await authenticate(request, services)
            await services.throttle.api(principal.caller)
            if ep.access == "admin" and not principal.is_admin:
                raise Forbidden("this needs an admin agent or an API key")
        ctx = Ctx(request, services, principal)
        if ep.query is not None:
            ctx.query = validate(ep.query, dict(request.query_params))
        if ep.body is not None:
            ctx.body = validate(ep.body, await read_json(request, services.settings.max_body_bytes))
        result = await ep.handler(ctx)
        if isinstance(result, Response):
            return result
        if isinstance(result, Reply):
            return _json(result.body, result.status)
        return _json(result, ep.status)

    endpoint.__name__ = ep.handler.__name__
    return endpoint


def _json(body: Any, status: int) -> Response:
    if status == 204:
        return Response(status_code=204)
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return Response(jsontext.dumps(body).encode(), status_code=status, media_type="application/json")


def starlette_routes(routers: list[Router]) -> list[Route]:
    by_path: dict[str, dict[str, Endpoint]] = {}
    for router in routers:
        for ep in router.endpoints:
            by_path.setdefault(ep.path, {})[ep.method] = ep
    routes = []
    for path, methods in by_path.items():
        handlers = {method: _wrap(ep) for method, ep in methods.items()}
        routes.append(Route(path, _dispatch(handlers), methods=list(handlers)))
    return routes


def _dispatch(
    handlers: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return dispatch
