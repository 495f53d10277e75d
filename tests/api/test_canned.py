"""Canned responses over REST: saved replies per workspace, inserted in the inbox with
``/shortcut``; agents read them, admins write them, other workspaces never see them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_agents import add_agent, assert_error, token_for


async def create(api: httpx.AsyncClient, shortcut: str, text: str) -> dict[str, Any]:
    r = await api.post("/v1/canned-responses", json={"shortcut": shortcut, "text": text})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_saved_responses_are_listed_by_shortcut_and_filtered_by_prefix(
    api: httpx.AsyncClient,
) -> None:
    thanks = await create(api, "Thanks", "Thank you for your patience!")
    await create(api, "refund", "Your refund is on its way.")
    await create(api, "refund-late", "Refunds take 5 to 10 days.")
    assert thanks["shortcut"] == "thanks"  # stored lower-case
    assert thanks["id"].startswith("cr_")

    listed = (await api.get("/v1/canned-responses")).json()
    assert [c["shortcut"] for c in listed["data"]] == ["refund", "refund-late", "thanks"]
    assert listed["next_cursor"] is None
    refunds = (await api.get("/v1/canned-responses?prefix=REF")).json()["data"]
    assert [c["text"] for c in refunds] == [
        "Your refund is on its way.",
        "Refunds take 5 to 10 days.",
    ]
    # A LIKE wildcard in the prefix is a plain character.
    assert (await api.get("/v1/canned-responses?prefix=%25")).json()["data"] == []


async def test_a_shortcut_is_unique_in_its_workspace_only(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await create(api, "hi", "Hello!")
    r = await api.post("/v1/canned-responses", json={"shortcut": "HI", "text": "Hey"})
    assert_error(r, 409, "shortcut_taken")
    await create(other_api, "hi", "Bonjour !")  # another workspace may use it
    assert [c["text"] for c in (await api.get("/v1/canned-responses")).json()["data"]] == [
        "Hello!"
    ]


async def test_patch_changes_text_and_shortcut_and_refuses_a_taken_one(
    api: httpx.AsyncClient,
) -> None:
    hi = await create(api, "hi", "Hello!")
    await create(api, "bye", "Goodbye!")
    r = await api.patch(f"/v1/canned-responses/{hi['id']}", json={"text": "Hello there!"})
    assert r.status_code == 200, r.text
    assert (r.json()["shortcut"], r.json()["text"]) == ("hi", "Hello there!")
    r = await api.patch(f"/v1/canned-responses/{hi['id']}", json={"shortcut": "hello"})
    assert r.json()["shortcut"] == "hello"
    r = await api.patch(f"/v1/canned-responses/{hi['id']}", json={"shortcut": "bye"})
    assert_error(r, 409, "shortcut_taken")
    r = await api.patch(f"/v1/canned-responses/{hi['id']}", json={})
    assert_error(r, 422, "validation_error")
    listed = (await api.get("/v1/canned-responses")).json()["data"]
    assert [(c["shortcut"], c["text"]) for c in listed] == [
        ("bye", "Goodbye!"),
        ("hello", "Hello there!"),
    ]


async def test_bad_input_is_refused_and_changes_nothing(api: httpx.AsyncClient) -> None:
    for body in (
        {"shortcut": "", "text": "x"},
        {"shortcut": "has space", "text": "x"},
        {"shortcut": "/slash", "text": "x"},
        {"shortcut": "ok", "text": ""},
        {"shortcut": "ok", "text": "x", "extra": 1},
        {"shortcut": "x" * 51, "text": "x"},
    ):
        r = await api.post("/v1/canned-responses", json=body)
        assert_error(r, 422, "validation_error")
    assert (await api.get("/v1/canned-responses")).json()["data"] == []


async def test_another_workspace_gets_404_for_every_id(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    hi = await create(api, "hi", "Hello!")
    url = f"/v1/canned-responses/{hi['id']}"
    assert_error(await other_api.patch(url, json={"text": "pwned"}), 404, "not_found")
    assert_error(await other_api.delete(url), 404, "not_found")
    assert (await other_api.get("/v1/canned-responses")).json()["data"] == []
    assert (await api.get("/v1/canned-responses")).json()["data"][0]["text"] == "Hello!"


async def test_agents_read_them_and_only_admins_write_them(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    hi = await create(api, "hi", "Hello!")
    agent = await add_agent(api, email="ann@example.com", role="agent")
    admin = await add_agent(api, email="boss@example.com", role="admin")
    as_agent = await token_for(client, agent["email"], agent["password"])
    as_admin = await token_for(client, admin["email"], admin["password"])

    r = await client.get("/v1/canned-responses", headers=as_agent)
    assert [c["shortcut"] for c in r.json()["data"]] == ["hi"]
    r = await client.post(
        "/v1/canned-responses", json={"shortcut": "x", "text": "y"}, headers=as_agent
    )
    assert_error(r, 403, "forbidden")
    r = await client.patch(f"/v1/canned-responses/{hi['id']}", json={"text": "y"}, headers=as_agent)
    assert_error(r, 403, "forbidden")

    r = await client.delete(f"/v1/canned-responses/{hi['id']}", headers=as_admin)
    assert r.status_code == 204
    assert (await api.get("/v1/canned-responses")).json()["data"] == []
    assert_error(await api.delete(f"/v1/canned-responses/{hi['id']}"), 404, "not_found")

