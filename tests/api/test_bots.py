"""``/v1/bots``: bots as data over REST, their turns, and tenants kept apart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chat.settings import Settings
from tests.bot_helpers import BRAIN, attach_bot, customer_says

SECRET = "a-shared-secret-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_enabled": False})


async def test_create_read_list_change_and_delete_a_bot(api: httpx.AsyncClient) -> None:
    channel_id = (await api.get("/v1/channels")).json()["data"][0]["id"]
    r = await api.post("/v1/bots", json={
        "name": "Support", "kind": "http", "config": {"url": "https://bots.example.com/turn", "secret": SECRET},
        "channel_ids": [channel_id], "timeout_seconds": 3,
    })
    assert r.status_code == 201, r.text
    bot = r.json()
    assert bot["id"].startswith("bot_")
    assert bot["config"] == {"url": "https://bots.example.com/turn", "secret": "********"}
    assert (bot["channel_ids"], bot["active"], bot["timeout_seconds"]) == ([channel_id], True, 3.0)
    assert (await api.get(f"/v1/bots/{bot['id']}")).json() == bot
    assert [b["id"] for b in (await api.get("/v1/bots")).json()["data"]] == [bot["id"]]

    # The masked secret sent back keeps the stored one; the rest changes.
    r = await api.patch(f"/v1/bots/{bot['id']}", json={
        "name": "Support 2", "config": {"url": "https://bots.example.com/v2", "secret": "********"},
        "channel_ids": [], "active": False, "timeout_seconds": None,
    })
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["channel_ids"], changed["active"], changed["timeout_seconds"]) == (
        "Support 2", [], False, None,
    )
    assert changed["config"]["url"] == "https://bots.example.com/v2"

    assert (await api.delete(f"/v1/bots/{bot['id']}")).status_code == 204
    assert (await api.get(f"/v1/bots/{bot['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "python", "config": {"path": "tests.no_such_module:bot"}}, "invalid_bot"),
        ({"kind": "python", "config": {"path": "tests.fakes.brains:not_a_brain"}}, "invalid_bot"),
        ({"kind": "python", "config": {"path": "tests.fakes.brains:nothing"}}, "invalid_bot"),
        ({"kind": "rasa", "config": {"url": "not a url"}}, "invalid_config"),
        ({"kind": "http", "config": {"url": "https://bots.example.com"}}, "invalid_config"),
        ({"kind": "http", "config": {"url": "https://b.example.com", "secret": "short"}}, "invalid_config"),
        ({"kind": "rasa", "config": {"url": "http://rasa:5005"}, "channel_ids": ["ch_nope"]}, "unknown_channel"),
        ({"kind": "smalltalk", "config": {}}, "validation_error"),
    ],
)
async def test_a_bot_that_cannot_work_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    r = await api.post("/v1/bots", json={"name": "Broken", **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert (await api.get("/v1/bots")).json()["data"] == []


async def test_a_python_bot_that_fails_to_load_says_why(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/bots", json={"name": "B", "kind": "python", "config": {"path": "tests.fakes.brains:not_a_brain"}})
    assert "not a bot" in r.json()["error"]["message"]


async def test_another_workspaces_bot_is_not_found(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    posted = await customer_says(services, workspace["workspace_id"], "hi")
    for method, path, body in [
        ("GET", f"/v1/bots/{bot['id']}", None),
        ("PATCH", f"/v1/bots/{bot['id']}", {"name": "Mine now"}),
        ("DELETE", f"/v1/bots/{bot['id']}", None),
        ("GET", f"/v1/bots/{bot['id']}/turns", None),
        ("GET", f"/v1/conversations/{posted.conversation['id']}/bot-turns", None),
    ]:
        r = await other_api.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
    assert (await other_api.get("/v1/bots")).json()["data"] == []
    # Nor can it be given another workspace's conversation, or a bot it does not have.
    r = await other_api.patch(
        f"/v1/conversations/{posted.conversation['id']}", json={"assignee": {"type": "bot", "id": bot["id"]}}
    )
    assert r.status_code == 404
    r = await api.patch(
        f"/v1/conversations/{posted.conversation['id']}", json={"assignee": {"type": "bot", "id": "bot_nope"}}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_assignee"
    assert (await api.get(f"/v1/bots/{bot['id']}")).json()["name"] == "Helper"


async def test_turns_are_listed_by_bot_and_by_conversation_newest_first(
    api: httpx.AsyncClient, services: Any, runtime: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    ws = workspace["workspace_id"]
    first = await customer_says(services, ws, "one")
    await runtime.worker.drain()
    second = await customer_says(services, ws, "two")
    await runtime.worker.drain()
    other = await customer_says(services, ws, "three", who="visitor-2")
    await runtime.worker.drain()

    by_bot = (await api.get(f"/v1/bots/{bot['id']}/turns?limit=2")).json()
    assert [t["message_id"] for t in by_bot["data"]] == [other.message["id"], second.message["id"]]
    rest = (await api.get(f"/v1/bots/{bot['id']}/turns?cursor={by_bot['next_cursor']}")).json()
    assert [t["message_id"] for t in rest["data"]] == [first.message["id"]]
    assert rest["next_cursor"] is None
    in_conv = (await api.get(f"/v1/conversations/{first.conversation['id']}/bot-turns")).json()["data"]
    assert [t["message_id"] for t in in_conv] == [second.message["id"], first.message["id"]]
    turn = in_conv[0]
    assert set(turn) >= {"intent", "score", "handler", "latency_ms", "outcome", "error"}
    assert turn["outcome"] == "replied" and turn["latency_ms"] >= 0


async def test_deleting_or_deactivating_a_bot_puts_its_conversations_in_the_agents_queue(
    api: httpx.AsyncClient, services: Any, workspace: dict[str, str]
) -> None:
    bot = await attach_bot(api)
    ws = workspace["workspace_id"]
    updated: list[Any] = []

    async def listen(event: Any) -> None:
        if event.type == "conversation.updated":
            updated.append(event.data)

    services.bus.subscribe(listen)
    posted = await customer_says(services, ws, "hi")
    r = await api.patch(f"/v1/bots/{bot['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    conv = (await api.get(f"/v1/conversations/{posted.conversation['id']}")).json()
    assert conv["assignee"] is None
    assert [(c["id"], c["assignee"]) for c in updated] == [(conv["id"], None)]  # agents hear of it
    # Inactive: the next customer is not given to it either.
    assert (await customer_says(services, ws, "hi", who="visitor-2")).conversation["assignee"] is None

    r = await api.patch(f"/v1/bots/{bot['id']}", json={"active": True})
    third = await customer_says(services, ws, "hi", who="visitor-3")
    assert third.conversation["assignee"] == {"type": "bot", "id": bot["id"]}
    assert (await api.delete(f"/v1/bots/{bot['id']}")).status_code == 204
    conv = (await api.get(f"/v1/conversations/{third.conversation['id']}")).json()
    assert conv["assignee"] is None


async def test_team_is_set_cleared_and_filtered(api: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    posted = await customer_says(services, workspace["workspace_id"], "hi")
    cid = posted.conversation["id"]
    r = await api.patch(f"/v1/conversations/{cid}", json={"team": "billing"})
    assert r.status_code == 200 and r.json()["team"] == "billing"
    assert [c["id"] for c in (await api.get("/v1/conversations?team=billing")).json()["data"]] == [cid]
    assert (await api.get("/v1/conversations?team=sales")).json()["data"] == []
    r = await api.patch(f"/v1/conversations/{cid}", json={"team": None})
    assert r.json()["team"] is None
    assert [c["id"] for c in (await api.get("/v1/conversations?team=none")).json()["data"]] == [cid]


async def test_only_admins_and_api_keys_manage_bots(api: httpx.AsyncClient, client: httpx.AsyncClient, services: Any, workspace: dict[str, str]) -> None:
    _, password = await services.agents.create(workspace["workspace_id"], "agent@example.com", "Agent")
    token = (await client.post("/v1/auth/login", json={"email": "agent@example.com", "password": password})).json()["token"]
    r = await client.post(
        "/v1/bots", headers={"Authorization": f"Bearer {token}"},
        json={"name": "B", "kind": "python", "config": {"path": BRAIN}},
    )
    assert r.status_code == 403


async def test_a_bot_url_inside_the_servers_network_is_refused_unless_allowed(services: Any, workspace: dict[str, str]) -> None:
    from chat.domain.errors import Unprocessable
    from chat.services.bot_brains import load_bot
    from chat.services.bots import Bots

    strict = Bots(services.db, services.bus, load_bot, allow_private_networks=False)
    for url in ("http://127.0.0.1:5005", "http://localhost/bot", "http://10.0.0.8/"):
        with pytest.raises(Unprocessable) as refused:
            await strict.create(workspace["workspace_id"], "B", "rasa", {"url": url})
        assert refused.value.code == "url_not_allowed"
    created = await strict.create(workspace["workspace_id"], "B", "rasa", {"url": "https://rasa.example.com"})
    assert created["config"] == {"url": "https://rasa.example.com/"}
