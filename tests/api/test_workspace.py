"""``/v1/workspace``: the caller's workspace and widget key, and the teammates every agent may
assign to."""

from __future__ import annotations

import httpx

from tests.api.test_agents import add_agent, token_for


async def test_every_agent_reads_the_active_teammates_to_assign_to(
    api: httpx.AsyncClient, client: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    ann = await add_agent(api, email="ann@example.com", name="Ann", role="agent")
    bob = await add_agent(api, email="bob@example.com", name="Bob", role="admin")
    gone = await add_agent(api, email="cy@example.com", name="Cy")
    await api.patch(f"/v1/agents/{gone['id']}", json={"active": False})
    await add_agent(other_api, email="zed@example.com", name="Zed")
    as_ann = await token_for(client, ann["email"], ann["password"])

    r = await client.get("/v1/workspace/agents", headers=as_ann)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [
        {"id": ann["id"], "name": "Ann", "role": "agent"},
        {"id": bob["id"], "name": "Bob", "role": "admin"},
    ]
    me = (await client.get("/v1/workspace", headers=as_ann)).json()
    assert me["workspace_id"] == (await api.get("/v1/workspace")).json()["workspace_id"]
    assert me["widget_key"].startswith("wk_")
