"""The published OpenAPI document says what the server does: every route and every
response is described, a wrong method is 405 with ``Allow``, and every constraint the
request schemas document is enforced (the server refuses a request that breaks one)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "x_unknown", path)


def routes(app: Any) -> list[Route]:
    found = [r for r in app.routes if isinstance(r, Route)]
    assert len(found) == len(app.routes), "every route of the app is a plain Route"
    return found


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


# -- 405 and Allow ---------------------------------------------------------------------------


async def test_every_route_answers_a_method_it_lacks_with_405_and_allow(
    app: Any, client: httpx.AsyncClient
) -> None:
    checked = 0
    for route in routes(app):
        assert route.methods
        allow = ", ".join(sorted(route.methods))
        for method in METHODS:
            if method in route.methods:
                continue
            r = await client.request(method, concrete(route.path))
            assert r.status_code == 405, (method, route.path, r.text)
            assert r.headers.get("allow") == allow, (method, route.path)
            assert r.json()["error"]["code"] == "method_not_allowed"
            checked += 1
    assert len(routes(app)) >= 24 and checked > 60


async def test_allow_names_head_with_get_and_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/conversations/abc")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, PATCH"
    r = await client.post("/health")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


# -- every route and response described -----------------------------------------------------


async def test_every_route_of_the_app_is_in_the_document_with_its_responses(
    app: Any, client: httpx.AsyncClient
) -> None:
    spec = await spec_of(client)
    validate(spec)
    schemas = spec["components"]["schemas"]
    for route in routes(app):
        assert route.path in spec["paths"], route.path
        assert route.methods
        for method in route.methods - {"HEAD"}:
            op = spec["paths"][route.path].get(method.lower())
            assert op is not None, (method, route.path)
            responses = op["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert ok, (method, route.path)
            for code in ok:
                if code == "204":
                    assert "content" not in responses[code]
                    continue
                [(media_type, content)] = responses[code]["content"].items()
                schema = content["schema"]
                if media_type == "application/json":
                    # a named model, not a bare "object"
                    assert "$ref" in schema, (method, route.path, code)
                    assert schema["$ref"].rsplit("/", 1)[1] in schemas
                else:
                    # text/javascript: the widget and the inbox's assets
                    assert media_type in ("text/plain", "text/html", "text/javascript")
                    assert schema == {"type": "string"}
            errors = {code: r for code, r in responses.items() if not code.startswith("2")}
            if route.path == "/ready":
                errors.pop("503")  # not ready: the readiness body, not an error
            assert "default" in errors, (method, route.path)
            for r in errors.values():
                ref = r["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody"


async def test_health_ready_and_metrics_are_in_the_document(client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert "get" in spec["paths"][path], path
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert "200" in ready and "503" in ready
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _uri(value: object) -> bool:  # jsonschema's own needs a package we do not install
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {**schema, "components": spec["components"]}, format_checker=FORMATS
    )


def _response_schema(spec: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    content = spec["paths"][path][method]["responses"][str(status)]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


async def test_answers_match_their_documented_schemas(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A tour of the API whose every answer is checked against the document."""
    spec = await spec_of(client)

    async def call(method: str, template: str, path: str, **kw: Any) -> Any:
        r = await api.request(method, path, **kw)
        schema = _response_schema(spec, template, method.lower(), r.status_code)
        errors = list(_validator(spec, schema).iter_errors(r.json()))
        assert not errors, (method, path, r.status_code, [e.message for e in errors])
        return r.json()

    c = await call("POST", "/v1/contacts", "/v1/contacts", json={"name": "Ada", "email": "ada@example.com"})
    await call("GET", "/v1/contacts/{contact_id}", f"/v1/contacts/{c['id']}")
    await call("PATCH", "/v1/contacts/{contact_id}", f"/v1/contacts/{c['id']}", json={"name": "Ada L"})
    await call(
        "POST", "/v1/contacts/{contact_id}/identities", f"/v1/contacts/{c['id']}/identities",
        json={"channel_type": "inapp", "address": "ada"},
    )
    await call("GET", "/v1/contacts", "/v1/contacts")
    sent = await call(
        "POST", "/v1/messages", "/v1/messages",
        json={"channel": "inapp", "to": {"contact_id": c["id"]}, "content": {"type": "text", "text": "hi"}},
    )
    msg_id = sent["messages"][0]["message_id"]
    conv_id = sent["messages"][0]["conversation_id"]
    await call("GET", "/v1/messages/{message_id}", f"/v1/messages/{msg_id}")
    await call("GET", "/v1/conversations", "/v1/conversations")
    await call("GET", "/v1/conversations/{conversation_id}", f"/v1/conversations/{conv_id}")
    await call("PATCH", "/v1/conversations/{conversation_id}", f"/v1/conversations/{conv_id}", json={"status": "pending"})
    await call(
        "POST", "/v1/conversations/{conversation_id}/messages", f"/v1/conversations/{conv_id}/messages",
        json={"content": {"type": "text", "text": "note"}, "private": True},
    )
    await call(
        "GET", "/v1/conversations/{conversation_id}/messages",
        f"/v1/conversations/{conv_id}/messages?before_seq=3",
    )
    ev = await call("POST", "/v1/events", "/v1/events", json={"name": "order.shipped", "contact_id": c["id"]})
    await call("GET", "/v1/events/{event_id}", f"/v1/events/{ev['id']}")
    await call("GET", "/v1/events", "/v1/events?name=order.*")
    await call("GET", "/v1/channels", "/v1/channels")
    ch = await call("POST", "/v1/channels", "/v1/channels", json={"type": "inapp", "name": "Site"})
    await call("GET", "/v1/channels/{channel_id}", f"/v1/channels/{ch['id']}")
    await call("PATCH", "/v1/channels/{channel_id}", f"/v1/channels/{ch['id']}", json={"name": "Web"})
    wh = await call("POST", "/v1/webhooks", "/v1/webhooks", json={"url": "https://example.com/hook"})
    await call("GET", "/v1/webhooks", "/v1/webhooks")
    await call("GET", "/v1/webhooks/{webhook_id}", f"/v1/webhooks/{wh['id']}")
    await call("GET", "/v1/webhooks/{webhook_id}/deliveries", f"/v1/webhooks/{wh['id']}/deliveries")
    agent = await call("POST", "/v1/agents", "/v1/agents", json={"email": "bo@example.com", "name": "Bo"})
    await call("GET", "/v1/agents", "/v1/agents")
    await call("PATCH", "/v1/agents/{agent_id}", f"/v1/agents/{agent['id']}", json={"name": "Bob"})
    login = await call(
        "POST", "/v1/auth/login", "/v1/auth/login",
        json={"email": "bo@example.com", "password": agent["password"]},
    )
    assert login["token"]
    await call("GET", "/v1/auth/me", "/v1/auth/me")  # 403 for an API key, in the error shape
    await call("GET", "/health", "/health")
    await call("GET", "/ready", "/ready")
    await call("GET", "/v1/events/{event_id}", "/v1/events/ev_missing")  # 404
    await call("POST", "/v1/events", "/v1/events", json={"name": "Bad Name"})  # 422
    scheduled = await call(
        "POST", "/v1/messages", "/v1/messages",
        json={"channel": "inapp", "to": {"address": "u"}, "content": {"type": "text", "text": "later"},
              "send_at": "2999-01-01T00:00:00Z"},
    )
    await call("DELETE", "/v1/messages/{message_id}", f"/v1/messages/{scheduled['messages'][0]['message_id']}")


# -- every documented request constraint is enforced -----------------------------------------

# A valid request for each operation that takes a body or a query. Path ids are unknown
# ones: validation runs before the handler, so a valid request answers 404 and a request
# that breaks a documented constraint answers 422 (or 400).
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("post", "/v1/messages"): {
        "channel": "inapp", "to": {"address": "u"}, "content": {"type": "text", "text": "hi"},
    },
    ("patch", "/v1/conversations/{conversation_id}"): {"status": "open"},
    ("post", "/v1/conversations/{conversation_id}/messages"): {"content": {"type": "text", "text": "hi"}},
    ("post", "/v1/contacts"): {"name": "Ada"},
    ("patch", "/v1/contacts/{contact_id}"): {"name": "Ada"},
    ("post", "/v1/contacts/{contact_id}/identities"): {"channel_type": "inapp", "address": "ada"},
    ("post", "/v1/events"): {"name": "order.shipped"},
    ("post", "/v1/agents"): {"email": "walker@example.com", "name": "Walker"},
    ("patch", "/v1/agents/{agent_id}"): {"name": "Walker"},
    ("post", "/v1/auth/login"): {"email": "nobody@example.com", "password": "wrong-password"},
    ("post", "/v1/channels"): {"type": "inapp", "name": "Site"},
    ("patch", "/v1/channels/{channel_id}"): {"name": "Site"},
    ("post", "/v1/webhooks"): {"url": "https://example.com/hook"},
    ("put", "/v1/workspace/countries"): {"countries": ["US", "GB"]},
    ("post", "/v1/canned-responses"): {"shortcut": "hello", "text": "Hello!"},
    ("patch", "/v1/canned-responses/{canned_id}"): {"text": "Hello!"},
    ("post", "/v1/bots"): {
        "name": "Helper", "kind": "http",
        "config": {"url": "https://example.com/bot", "secret": "0123456789abcdef-secret"},
    },
    ("patch", "/v1/bots/{bot_id}"): {"name": "Helper"},
}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _is(value: Any, kind: str | None) -> bool:
    return {"object": isinstance(value, dict), "array": isinstance(value, list)}.get(kind or "", False)


def _not_matching(pattern: str, lo: int, hi: int) -> str | None:
    for candidate in ("x", "A B", "!!", "Ab.C", "1", "abc", "a.", "x@", "\n", "Order.Shipped", "a b.c"):
        if lo <= len(candidate) <= hi and not re.search(pattern, candidate):
            return candidate
    return None


def violations(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> Iterator[tuple[str, Any]]:
    """(what is broken, a value breaking it) for each constraint ``schema`` documents,
    starting from the valid ``value``."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        kinds = [_resolve(spec, k) for k in schema["anyOf"]]
        kinds = [k for k in kinds if k.get("type") != "null"]
        if len(kinds) > 1:  # e.g. one recipient or a list: the kind the valid value is
            kinds = [k for k in kinds if _is(value, k.get("type"))]
        if len(kinds) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            yield from violations(spec, {**rest, **kinds[0]}, value)
        return
    if schema.get("oneOf"):
        branches = [_resolve(spec, b) for b in schema["oneOf"]]
        mapping = schema.get("discriminator", {}).get("mapping")
        if mapping and isinstance(value, dict):
            key = schema["discriminator"]["propertyName"]
            yield f"{key} not one of the choices", {**value, key: "no-such-kind"}
            yield from violations(spec, {"$ref": mapping[value[key]]}, value)
            return
        if all(set(b) == {"required", "properties"} for b in branches):
            fields = [b["required"][0] for b in branches]
            yield "none of " + "/".join(fields), {}
            yield "all of " + "/".join(fields), {f: "x" for f in fields}
    if "const" in schema:
        yield "const", "not-" + str(schema["const"])
    if "enum" in schema:
        yield "enum", "not-a-choice"
    kind = schema.get("type")
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10_000)
        if lo > 0:
            yield "minLength", "a" * (lo - 1)
        if "maxLength" in schema:
            yield "maxLength", "a" * (hi + 1)
        if "pattern" in schema:
            bad = _not_matching(schema["pattern"], lo, hi)
            assert bad is not None, f"no test string breaks {schema['pattern']}"
            yield f"pattern {schema['pattern']}", bad
        if schema.get("format") in ("date", "date-time", "uri"):
            yield f"format {schema['format']}", "not a " + schema["format"]
        yield "type string", 12345
    elif kind in ("integer", "number"):
        if "minimum" in schema:
            yield "minimum", schema["minimum"] - 1
        if "maximum" in schema:
            yield "maximum", schema["maximum"] + 1
        yield f"type {kind}", "twelve"
    elif kind == "boolean":
        yield "type boolean", "yes"
    elif kind == "array":
        if schema.get("minItems", 0) > 0:
            yield "minItems", []
        item = value[0] if isinstance(value, list) and value else None
        if "maxItems" in schema and item is not None:
            yield "maxItems", [item] * (schema["maxItems"] + 1)
        if "items" in schema and item is not None:
            for what, bad in violations(spec, schema["items"], item):
                yield f"items: {what}", [bad]
        yield "type array", "not a list"
    elif kind == "object":
        yield from _object_violations(spec, schema, value if isinstance(value, dict) else {})


def _object_violations(spec: dict[str, Any], schema: dict[str, Any], value: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    props: dict[str, Any] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        yield "additionalProperties", {**value, "unexpected_field": 1}
    if schema.get("minProperties"):
        yield "minProperties", {}
    for name in schema.get("required", []):
        if name in value:
            yield f"required {name}", {k: v for k, v in value.items() if k != name}
    for name, prop in props.items():
        resolved = _resolve(spec, prop)
        if list(_validator(spec, prop).iter_errors(None)):
            yield f"{name}: not null", {**value, name: None}
        given = value.get(name)
        if given is None:
            given = _example(spec, resolved)
        for what, bad in violations(spec, prop, given):
            yield f"{name}: {what}", {**value, name: bad}


def _example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value for an absent property, for breaking its items' constraints."""
    return None


def _walk(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method, path, op


async def test_every_documented_body_constraint_is_enforced(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    with_body = {(method, path) for method, path, op in _walk(spec) if "requestBody" in op}
    assert with_body == set(VALID_BODIES), "give a valid body for each operation with one"
    checked: list[str] = []
    for (method, path), valid in VALID_BODIES.items():
        op = spec["paths"][path][method]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        url = concrete(path)
        r = await api.request(method, url, json=valid)
        assert r.status_code not in (400, 422), (method, path, r.text)
        for what, bad in violations(spec, schema, copy.deepcopy(valid)):
            assert list(_validator(spec, schema).iter_errors(bad)), (method, path, what, "the schema accepts it")
            r = await api.request(method, url, json=bad)
            assert r.status_code in (400, 422), (method, path, what, bad, r.status_code, r.text)
            checked.append(f"{method} {path} {what}")
    assert len(checked) > 150


async def test_every_documented_query_constraint_is_enforced(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    checked: list[str] = []
    for method, path, op in _walk(spec):
        query = [p for p in op.get("parameters", []) if p["in"] == "query"]
        if not query or path.startswith("/v1/auth"):
            continue
        url = concrete(path)
        r = await api.request(method, url)
        assert r.status_code not in (400, 422), (method, path, r.text)
        for param in query:
            for what, bad in violations(spec, param["schema"], None):
                if not isinstance(bad, (str, int)) or what.startswith("type string"):
                    continue  # a query value is always a string
                r = await api.request(method, url, params={param["name"]: str(bad)})
                assert r.status_code == 422, (method, path, param["name"], what, bad, r.text)
                checked.append(f"{method} {path} {param['name']} {what}")
        r = await api.request(method, url, params={"no_such_param": "1"})
        assert r.status_code == 422, (method, path)
    assert len(checked) > 25


# The places where the document used to accept what the server refused (issue 7 point 13):
# each is now in the schema (the schema refuses it too) and the server still refuses it.
KNOWN = [
    ("patch", "/v1/conversations/{conversation_id}", {}),
    ("patch", "/v1/conversations/{conversation_id}", {"status": None}),
    ("patch", "/v1/contacts/{contact_id}", {}),
    ("patch", "/v1/contacts/{contact_id}", {"attributes": None}),
    ("patch", "/v1/agents/{agent_id}", {}),
    ("patch", "/v1/agents/{agent_id}", {"name": None}),
    ("patch", "/v1/channels/{channel_id}", {}),
    ("patch", "/v1/channels/{channel_id}", {"name": None}),
    ("post", "/v1/events", {"name": "Order Shipped"}),
    ("post", "/v1/agents", {"email": "", "name": "Ann"}),
    ("post", "/v1/agents", {"email": "not-an-address", "name": "Ann"}),
    ("post", "/v1/contacts", {"email": ""}),
    ("post", "/v1/contacts", {"phone": ""}),
    ("post", "/v1/contacts", {"country": "France"}),
    ("post", "/v1/contacts", {"locale": "english please"}),
    ("post", "/v1/messages", {"channel": "inapp", "to": {}, "content": {"type": "text", "text": "hi"}}),
    (
        "post", "/v1/messages",
        {"channel": "inapp", "to": {"contact_id": "ct_1", "address": "u"}, "content": {"type": "text", "text": "hi"}},
    ),
    ("post", "/v1/messages", {"channel": "inapp", "to": [], "content": {"type": "text", "text": "hi"}}),
    ("post", "/v1/webhooks", {"url": "https://example.com/h", "events": ["message.sent"]}),
    ("post", "/v1/channels", {"type": "sms", "name": "US", "config": {}}),
    ("post", "/v1/channels", {"type": "inapp", "name": "Site", "config": {"no_such_key": 1}}),
    ("post", "/v1/contacts/{contact_id}/identities", {"channel_type": "sms", "address": "hello"}),
    ("post", "/v1/contacts", {"identities": [{"channel_type": "email", "address": "nope"}]}),
    ("post", "/v1/contacts", {"identities": [{"channel_type": "inapp", "address": "a b"}]}),
    (
        "post", "/v1/messages",
        {"channel": "inapp", "to": {"address": "u"}, "content": {"type": "text", "text": "hi"}, "send_at": 12345},
    ),
    ("post", "/v1/conversations/{conversation_id}/messages", {"content": {"type": "text", "text": "hi"}, "private": "yes"}),
]

KNOWN_QUERIES = [
    ("/v1/events", {"name": "Order.*"}),
    ("/v1/contacts", {"email": ""}),
    ("/v1/conversations", {"cursor": "cnv_123"}),
]


@pytest.mark.parametrize(("method", "path", "body"), KNOWN)
async def test_the_schema_refuses_what_the_server_refuses(
    api: httpx.AsyncClient, client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    spec = await spec_of(client)
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert list(_validator(spec, schema).iter_errors(body)), "the document accepts it"
    r = await api.request(method, concrete(path), json=body)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(("path", "params"), KNOWN_QUERIES)
async def test_query_schemas_refuse_what_the_server_refuses(
    api: httpx.AsyncClient, client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    spec = await spec_of(client)
    documented = {p["name"]: p["schema"] for p in spec["paths"][path]["get"]["parameters"]}
    for name, value in params.items():
        assert list(_validator(spec, documented[name]).iter_errors(value)), "the document accepts it"
    assert (await api.get(path, params=params)).status_code == 422


# And the other way round: what the server takes, the document takes too.
ACCEPTED = [
    ("post", "/v1/contacts", {"name": "Ann", "email": " Ann@Example.com ", "country": "fr", "locale": "pt_br",
                              "phone": "+33 6 12 34 56 78", "identities": [
                                  {"channel_type": "sms", "address": "+14155550100"},
                                  {"channel_type": "whatsapp", "address": "14155550101"},
                                  {"channel_type": "whatsapp", "address": "whatsapp:+14155550102"},
                                  {"channel_type": "email", "address": "Ann@Example.com"},
                                  {"channel_type": "fcm", "address": "token-1"}]}),
    ("patch", "/v1/contacts/{contact_id}", {"email": None, "attributes": {"plan": None}}),
    ("patch", "/v1/conversations/{conversation_id}", {"assignee": None}),
    ("post", "/v1/channels", {"type": "inapp", "name": "Site", "config": {"allowed_origins": ["https://acme.com"]}}),
    ("post", "/v1/channels", {"type": "sms", "name": "US", "config": {
        "account_sid": "AC" + "0a" * 16, "auth_token": "twilio-auth-token-0001", "from_number": "+14155550100"}}),
    ("post", "/v1/messages", {"channel": "inapp", "to": [{"contact_id": None, "address": "u"}],
                              "content": {"type": "text", "text": "hi"}, "send_at": "2030-01-01T00:00:00Z"}),
    ("post", "/v1/webhooks", {"url": "https://example.com/h", "events": ["message.*", "event.created"]}),
]


@pytest.mark.parametrize(("method", "path", "body"), ACCEPTED)
async def test_the_schema_takes_what_the_server_takes(
    api: httpx.AsyncClient, client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    spec = await spec_of(client)
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert [e.message for e in _validator(spec, schema).iter_errors(body)] == []
    r = await api.request(method, concrete(path), json=body)
    assert r.status_code not in (400, 422), r.text
