"""Agents over REST: admin-only management, login, and agent tokens as credentials."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chat.security import sign_token


async def add_agent(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/agents", json={"email": "ann@example.com", "name": "Ann", **body})
    assert r.status_code == 201, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def login(
    client: httpx.AsyncClient, email: str, password: str, **extra: Any
) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password, **extra})


async def token_for(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await login(client, email, password)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_an_api_key_creates_an_agent_who_then_logs_in(
    api: httpx.AsyncClient, client: httpx.AsyncClient, workspace: dict[str, str]
) -> None:
    created = await add_agent(api, email="Ann@Example.com")
    password = created.pop("password")
    assert len(password) >= 12  # generated, shown once
    assert created["id"].startswith("ag_")
    assert (created["email"], created["name"], created["role"], created["active"]) == (
        "ann@example.com",
        "Ann",
        "agent",
        True,
    )

    r = await login(client, "ANN@example.com", password)
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["agent"] == created
    assert session["workspace_id"] == workspace["workspace_id"]

    auth = {"Authorization": f"Bearer {session['token']}"}
    assert (await client.get("/v1/auth/me", headers=auth)).json() == created
    listed = (await api.get("/v1/agents")).json()
    assert listed == {"data": [created], "next_cursor": None}
    assert "password" not in listed["data"][0]


async def test_an_agent_token_works_on_the_rest_of_the_api(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await add_agent(api, password="correct horse")
    auth = await token_for(client, "ann@example.com", "correct horse")
    r = await client.get("/v1/conversations", headers=auth)
    assert r.status_code == 200 and r.json()["data"] == []
    r = await client.post("/v1/contacts", json={"name": "Ada"}, headers=auth)
    assert r.status_code == 201


async def test_wrong_credentials_are_401(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await add_agent(api, password="correct horse")
    assert_error(await login(client, "ann@example.com", "wrong horse"), 401, "invalid_credentials")
    assert_error(
        await login(client, "nobody@example.com", "correct horse"), 401, "invalid_credentials"
    )
    r = await client.post("/v1/auth/login", json={"email": "ann@example.com"})
    assert_error(r, 422, "validation_error")


async def test_an_email_in_two_workspaces_needs_the_workspace_id(
    api: httpx.AsyncClient,
    other_api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    workspace: dict[str, str],
) -> None:
    await add_agent(api, password="correct horse")
    await add_agent(other_api, password="correct horse")
    r = await login(client, "ann@example.com", "correct horse")
    assert_error(r, 409, "workspace_required")
    assert workspace["workspace_id"] in r.json()["error"]["details"]["workspace_ids"]
    r = await login(
        client, "ann@example.com", "correct horse", workspace_id=workspace["workspace_id"]
    )
    assert r.status_code == 200 and r.json()["workspace_id"] == workspace["workspace_id"]


async def test_only_admins_manage_agents(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    plain = await add_agent(api, password="agent password")
    await add_agent(api, email="boss@example.com", role="admin", password="admin password")

    agent_auth = await token_for(client, "ann@example.com", "agent password")
    for r in [
        await client.get("/v1/agents", headers=agent_auth),
        await client.post(
            "/v1/agents", json={"email": "x@example.com", "name": "X"}, headers=agent_auth
        ),
        await client.patch(f"/v1/agents/{plain['id']}", json={"role": "admin"}, headers=agent_auth),
    ]:
        assert_error(r, 403, "forbidden")

    admin_auth = await token_for(client, "boss@example.com", "admin password")
    r = await client.get("/v1/agents", headers=admin_auth)
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    r = await client.post(
        "/v1/agents", json={"email": "x@example.com", "name": "X"}, headers=admin_auth
    )
    assert r.status_code == 201


async def test_agents_need_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/agents"), 401, "unauthorized")
    assert_error(await client.get("/v1/auth/me"), 401, "unauthorized")


async def test_expired_and_forged_tokens_are_401(
    api: httpx.AsyncClient, client: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    agent = await add_agent(api, role="admin")
    claims = {
        "kind": "agent", "sub": agent["id"], "ws": workspace["workspace_id"], "role": "admin",
        "jti": "tok_test",
    }
    expired = sign_token(services.secret_key, claims, ttl_seconds=-60)
    forged = sign_token("not-the-server-secret-but-long-enough-0123456789", claims, 3600)
    # A token without an id (from before logout existed) cannot be revoked: refused.
    unnamed = sign_token(services.secret_key, {**claims, "jti": None}, 3600)
    for token in (expired, forged, unnamed, "not-a-jwt"):
        r = await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})
        assert_error(r, 401, "invalid_token")
    # The same claims signed with the server's key, unexpired, are accepted.
    valid = sign_token(services.secret_key, claims, 3600)
    r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {valid}"})
    assert r.status_code == 200 and r.json()["id"] == agent["id"]


async def test_patch_renames_promotes_and_resets_the_password(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    agent = await add_agent(api, password="first password")
    url = f"/v1/agents/{agent['id']}"
    auth = await token_for(client, "ann@example.com", "first password")
    assert_error(await client.get("/v1/agents", headers=auth), 403, "forbidden")

    r = await api.patch(url, json={"name": " Ann B. ", "role": "admin"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["role"]) == ("Ann B.", "admin")
    # The role change holds for the token issued before it.
    assert (await client.get("/v1/agents", headers=auth)).status_code == 200

    assert (await api.patch(url, json={"password": "second password"})).status_code == 200
    assert_error(
        await login(client, "ann@example.com", "first password"), 401, "invalid_credentials"
    )
    assert (await login(client, "ann@example.com", "second password")).status_code == 200


async def test_a_deactivated_agent_can_neither_log_in_nor_use_its_token(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    agent = await add_agent(api, password="correct horse")
    auth = await token_for(client, "ann@example.com", "correct horse")

    r = await api.patch(f"/v1/agents/{agent['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert_error(await client.get("/v1/conversations", headers=auth), 401, "invalid_token")
    assert_error(
        await login(client, "ann@example.com", "correct horse"), 401, "invalid_credentials"
    )

    await api.patch(f"/v1/agents/{agent['id']}", json={"active": True})
    assert (await client.get("/v1/conversations", headers=auth)).status_code == 200


async def test_logging_out_revokes_that_token_only(
    api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await add_agent(api, password="correct horse")
    phone = await token_for(client, "ann@example.com", "correct horse")
    laptop = await token_for(client, "ann@example.com", "correct horse")

    r = await client.post("/v1/auth/logout", headers=phone)
    assert r.status_code == 204, r.text
    assert_error(await client.get("/v1/auth/me", headers=phone), 401, "invalid_token")
    assert_error(await client.post("/v1/auth/logout", headers=phone), 401, "invalid_token")
    assert (await client.get("/v1/auth/me", headers=laptop)).status_code == 200
    # Logging in again gives a new, working token.
    again = await token_for(client, "ann@example.com", "correct horse")
    assert (await client.get("/v1/auth/me", headers=again)).status_code == 200


async def test_logout_needs_an_agent_token(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert_error(await api.post("/v1/auth/logout"), 403, "agent_token_required")
    assert_error(await client.post("/v1/auth/logout"), 401, "unauthorized")
    assert (await api.get("/v1/agents")).status_code == 200  # the API key still works


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "name": "X"}, "email"),
        ({"name": "X"}, "email"),
        ({"email": "x@example.com"}, "name"),
        ({"email": "x@example.com", "name": "  "}, "name"),
        ({"email": "x@example.com", "name": "X", "role": "owner"}, "role"),
        ({"email": "x@example.com", "name": "X", "password": "short"}, "password"),
        ({"email": "x@example.com", "name": "X", "team": "blue"}, "team"),
    ],
)
async def test_invalid_new_agents_are_422(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await api.post("/v1/agents", json=body)
    assert_error(r, 422, "validation_error")
    assert any(field in d["loc"] for d in r.json()["error"]["details"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"role": "owner"},
        {"active": "yes"},
        {"password": "short"},
        {"email": "a@b.co"},
    ],
)
async def test_invalid_agent_patches_are_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    agent = await add_agent(api)
    assert_error(await api.patch(f"/v1/agents/{agent['id']}", json=body), 422, "validation_error")


async def test_a_taken_email_is_409(api: httpx.AsyncClient) -> None:
    await add_agent(api)
    r = await api.post("/v1/agents", json={"email": "ANN@example.com", "name": "Ann 2"})
    assert_error(r, 409, "agent_exists")


async def test_another_workspace_cannot_see_or_change_these_agents(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    agent = await add_agent(api)
    assert (await other_api.get("/v1/agents")).json() == {"data": [], "next_cursor": None}
    assert_error(
        await other_api.patch(f"/v1/agents/{agent['id']}", json={"name": "X"}), 404, "not_found"
    )
    assert_error(await api.patch("/v1/agents/ag_nope", json={"name": "X"}), 404, "not_found")


async def test_me_needs_an_agent_token(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/auth/me"), 403, "agent_token_required")
