"""422 ``details`` name the caller's own fields, never pydantic's labels for its validators."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

TEXT = {"type": "text", "text": "hi"}


def details(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    for d in error["details"]:
        assert all(isinstance(p, int) or ("[" not in p and "(" not in p) for p in d["loc"]), d
        assert "function-after" not in d["msg"] and "instance of" not in d["msg"], d
    return [{"loc": d["loc"], "msg": d["msg"]} for d in error["details"]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"channel": "inapp", "to": {"address": "a", "contact_id": "ct_1"}, "content": TEXT},
            [{"loc": ["to"], "msg": "give exactly one of contact_id or address"}],
        ),
        (
            {"channel": "inapp", "to": [{"address": "a"}, {"adress": "b"}], "content": TEXT},
            [{"loc": ["to", 1, "adress"], "msg": "Extra inputs are not permitted"}],
        ),
        (
            {"channel": "inapp", "to": "visitor-1", "content": TEXT},
            [{"loc": ["to"], "msg": "Input should be an object or a valid list"}],
        ),
        (
            {"channel": "inapp", "to": {"address": "a"}, "content": {"type": "text", "text": ""}},
            [{"loc": ["content", "text"], "msg": "String should have at least 1 character"}],
        ),
        (
            {"channel": "inapp", "content": TEXT},
            [{"loc": ["to"], "msg": "Field required"}],
        ),
        (
            {"channel": "pigeon", "to": {"address": "a"}, "content": TEXT, "sent_at": "now"},
            None,  # checked below: both fields named, nothing else
        ),
    ],
)
async def test_send_validation_details_name_the_callers_fields(
    api: httpx.AsyncClient, body: dict[str, Any], expected: list[dict[str, Any]] | None
) -> None:
    got = details(await api.post("/v1/messages", json=body))
    if expected is None:
        assert sorted(d["loc"][0] for d in got) == ["channel", "sent_at"]
    else:
        assert got == expected


async def test_a_missing_nested_field_is_named_by_its_path(api: httpx.AsyncClient) -> None:
    got = details(
        await api.post(
            "/v1/messages",
            json={"channel": "inapp", "to": {"address": "a"}, "content": {"type": "text"}},
        )
    )
    assert got == [{"loc": ["content", "text"], "msg": "Field required"}]
