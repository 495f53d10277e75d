"""The OpenAPI 3.1 document, generated from the endpoint declarations and their models."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel

from chat.api.responses import ErrorBody
from chat.api.routing import Endpoint, Router


def document(routers: list[Router], version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    _schema(ErrorBody, components)
    paths: dict[str, Any] = {}
    for router in routers:
        for ep in router.endpoints:
            paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Parley API",
            "version": version,
            "description": "Omnichannel conversations: one REST API for every channel.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A workspace API key (pk_...) or an agent token from /v1/auth/login",
                }
            },
        },
        "paths": paths,
    }


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        if components.setdefault(name, sub) != sub:
            raise ValueError(f"two different models are named {name}")
    extend = getattr(model, "openapi_extra", None)  # what pydantic cannot say (refs to others)
    if extend is not None:
        extend(schema)
    if components.setdefault(model.__name__, schema) != schema:
        raise ValueError(f"two different models are named {model.__name__}")
    for referred in getattr(model, "schema_refs", ()):  # models its extra schema names
        _schema(referred, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "tags": [ep.tag],
        "operationId": ep.handler.__name__,
    }
    if ep.handler.__doc__:
        op["description"] = inspect.cleandoc(ep.handler.__doc__)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", ep.path)
    ]
    if ep.query is not None:
        q_schema = ep.query.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in q_schema.pop("$defs", {}).items():
            if components.setdefault(name, sub) != sub:
                raise ValueError(f"two different models are named {name}")
        required = set(q_schema.get("required", []))
        for name, prop in q_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(ep.body, components)}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if ep.response is not None:
        ok["content"] = {ep.produces: {"schema": _schema(ep.response, components)}}
    elif ep.produces != "application/json":
        ok["content"] = {ep.produces: {"schema": {"type": "string"}}}
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    responses: dict[str, Any] = {str(ep.status): ok}
    for status in ep.also:
        responses[str(status)] = ok
    if ep.access != "public":
        op["security"] = [{"bearer": []}]
        responses["401"] = error
        responses["429"] = error
    if ep.access != "public" or "{" in ep.path:
        responses["404"] = error
    if ep.body is not None:
        for code in ("400", "413", "415", "422"):
            responses[code] = error
    elif ep.query is not None:
        responses["422"] = error
    if ep.access == "admin":
        responses["403"] = error
    for status in ep.errors:
        responses[str(status)] = error
    responses["default"] = {**error, "description": "Any other error, in the same shape"}
    op["responses"] = responses
    return op
