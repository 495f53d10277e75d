"""The shared request edge (chat/api/routing.py): a NUL character (U+0000) anywhere in a
body, a query value or a path id is refused with 422 ``invalid_character`` before
anything looks it up, the same on SQLite and PostgreSQL (which cannot store it)."""

from __future__ import annotations

from typing import Any

import pytest

NUL = "\u0000"


def refused(resp: Any, loc: list[Any] | None = None) -> None:
    assert resp.status_code == 422, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert error["code"] == "invalid_character", error
    assert "U+0000" in error["message"]
    if loc is not None:
        assert error["details"][0]["loc"] == loc, error


async def test_login_with_a_nul_in_the_email_is_refused_without_credentials(client):
    resp = await client.post(
        "/v1/auth/login", json={"email": f"a{NUL}b@example.com", "password": "whatever"}
    )
    refused(resp, ["email"])


BODIES = [
    ("POST", "/v1/contacts", {"name": f"Ada{NUL}"}, ["name"]),
    ("POST", "/v1/contacts", {"external_id": f"x{NUL}"}, ["external_id"]),
    ("POST", "/v1/contacts", {"email": f"a{NUL}@example.com"}, ["email"]),
    ("POST", "/v1/contacts", {"attributes": {f"k{NUL}": 1}}, ["attributes", f"k{NUL}"]),
    ("POST", "/v1/contacts", {"attributes": {"k": [1, f"v{NUL}"]}}, ["attributes", "k", 1]),
    (
        "POST",
        "/v1/contacts",
        {"identities": [{"channel_type": "inapp", "address": f"u{NUL}"}]},
        ["identities", 0, "address"],
    ),
    (
        "POST",
        "/v1/messages",
        {
            "channel": "inapp",
            "to": {"address": "ada"},
            "content": {"type": "text", "text": "hi"},
            "client_message_id": f"c{NUL}",
        },
        ["client_message_id"],
    ),
    (
        "POST",
        "/v1/messages",
        {"channel": "inapp", "to": {"address": "ada"}, "content": {"type": "text", "text": NUL}},
        ["content", "text"],
    ),
    ("POST", "/v1/events", {"name": "order.shipped", "payload": {"a": NUL}}, ["payload", "a"]),
    ("POST", "/v1/agents", {"email": "x@example.com", "name": f"X{NUL}"}, ["name"]),
]


@pytest.mark.parametrize(("method", "path", "body", "loc"), BODIES)
async def test_a_nul_in_a_body_is_refused(api, method, path, body, loc):
    refused(await api.request(method, path, json=body), loc)


QUERIES = [
    "/v1/contacts?cursor=ct_%00",
    "/v1/contacts?email=a%00@example.com",
    "/v1/contacts?external_id=%00",
    "/v1/contacts?phone=%2B1%00",
    "/v1/conversations?contact_id=ct_%00",
    "/v1/conversations?assignee=%00&status=open",
    "/v1/conversations?cursor=%00",
    "/v1/events?name=order%00",
    "/v1/events?contact_id=%00",
    "/v1/channels?type=%00",
    "/v1/contacts?%00=1",
]


@pytest.mark.parametrize("url", QUERIES)
async def test_a_nul_in_a_query_value_is_refused(api, url):
    refused(await api.get(url))


PATHS = [
    ("GET", "/v1/contacts/ct_%00"),
    ("PATCH", "/v1/contacts/ct_%00"),
    ("DELETE", "/v1/contacts/ct_%00"),
    ("POST", "/v1/contacts/ct_%00/identities"),
    ("GET", "/v1/conversations/cnv_%00"),
    ("GET", "/v1/conversations/cnv_%00/messages"),
    ("POST", "/v1/conversations/cnv_%00/messages"),
    ("GET", "/v1/messages/msg_%00"),
    ("DELETE", "/v1/messages/msg_%00"),
    ("GET", "/v1/events/evt_%00"),
    ("GET", "/v1/channels/ch_%00"),
    ("GET", "/v1/webhooks/wh_%00"),
    ("PATCH", "/v1/agents/ag_%00"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_a_nul_in_a_path_id_is_refused(api, method, path):
    body = {"name": "x"} if method in ("POST", "PATCH") else None
    refused(await api.request(method, path, json=body), None)


async def test_a_backslash_u_written_as_text_is_not_a_nul(api):
    resp = await api.post("/v1/contacts", json={"name": "C:\\u0000 is not a NUL"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "C:\\u0000 is not a NUL"
