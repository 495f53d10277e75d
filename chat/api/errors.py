"""Every error leaves as ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.domain.errors import ParleyError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status
    )


_ABSENT = object()
_INSTANCE_OF = re.compile(r"a valid dictionary or instance of \w+")


def validation_details(exc: ValidationError, data: Any = _ABSENT) -> list[dict[str, Any]]:
    """``{"loc", "msg", "type"}`` per problem, ``loc`` naming the caller's own fields only.

    pydantic puts its own labels into ``loc`` (a union member such as
    ``function-after[_one_target(), To]``, a discriminator's tag); walking ``data`` (the body
    that was validated) keeps the keys and indexes that are in it, plus a missing field's name.
    A union tried as each of its members reports every member's failure: a member that failed
    only on the input's type is dropped when another member got further.
    """
    found: list[tuple[tuple[str | int, ...], bool, dict[str, Any]]] = []
    for e in exc.errors(include_url=False, include_context=False, include_input=False):
        loc, in_union = _user_loc(tuple(e["loc"]), data, e["type"] == "missing")
        msg = _INSTANCE_OF.sub("an object", e["msg"]).removeprefix("Value error, ")
        found.append((loc, in_union, {"loc": list(loc), "msg": msg, "type": e["type"]}))
    details: list[dict[str, Any]] = []
    for loc, in_union, detail in found:
        if in_union and detail["type"].endswith("_type") and any(
            other_loc[: len(loc)] == loc and not other["type"].endswith("_type")
            for other_loc, _, other in found
        ):
            continue
        same = next((d for d in details if d["loc"] == detail["loc"] and d["type"].endswith("_type")
                     and detail["type"].endswith("_type")), None)
        if same is not None:  # "should be an object" + "should be a valid list": one message
            same["msg"] += " or " + detail["msg"].removeprefix("Input should be ")
            continue
        details.append(detail)
    return details


def _user_loc(
    loc: tuple[str | int, ...], data: Any, missing: bool
) -> tuple[tuple[str | int, ...], bool]:
    """``loc`` without pydantic's labels, and whether any label was dropped."""
    if data is _ABSENT:
        return loc, False
    kept: list[str | int] = []
    node = data
    dropped = False
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif missing and i == len(loc) - 1 and isinstance(part, str):
            pass  # the name of a field the caller left out
        else:
            dropped = True
            continue
        kept.append(part)
    return tuple(kept), dropped


async def on_parley_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParleyError)
    response = error_response(exc.status, exc.code, exc.message, exc.details)
    response.headers.update(exc.headers)
    return response


async def on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    response = error_response(exc.status_code, code, str(exc.detail), None)
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # a 405: the route's methods, in a stable order
        headers["Allow"] = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
    response.headers.update(headers)
    return response


async def on_unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


HANDLERS = {
    ParleyError: on_parley_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
