"""Error shapes, authentication and tenant isolation at the REST edge."""

from __future__ import annotations

import httpx

SEND = {"channel": "inapp", "to": {"address": "u"}, "content": {"type": "text", "text": "hi"}}


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_no_key_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/conversations"), 401, "unauthorized")


async def test_wrong_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/conversations", headers={"Authorization": "Bearer pk_nope"})
    assert_error(r, 401, "invalid_api_key")


async def test_garbage_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/conversations", headers={"Authorization": "Bearer a.b.c"})
    assert_error(r, 401, "invalid_token")


async def test_body_over_1_mib_is_413(api: httpx.AsyncClient) -> None:
    big = b'{"channel": "inapp", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = await api.post("/v1/messages", content=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


async def test_chunked_body_over_1_mib_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    r = await api.post("/v1/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


async def test_non_json_is_415(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/messages", content=b"channel=inapp", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "unsupported_media_type")


async def test_broken_json_is_400(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/messages", content=b'{"channel": ', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


async def test_unknown_ids_are_404(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/messages/msg_nope"), 404, "not_found")
    assert_error(await api.get("/v1/conversations/cnv_nope"), 404, "not_found")


async def test_bad_query_is_422(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/conversations?limit=0"), 422, "validation_error")
    assert_error(await api.get("/v1/conversations?status=closed"), 422, "validation_error")


async def test_unknown_route_and_method_keep_the_error_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/nothing-here"), 404, "not_found")
    assert_error(await api.put("/v1/messages", json={}), 405, "method_not_allowed")


async def test_another_workspace_sees_nothing(api: httpx.AsyncClient, other_api: httpx.AsyncClient) -> None:
    [sent] = (await api.post("/v1/messages", json=SEND)).json()["messages"]
    conv, msg = sent["conversation_id"], sent["message_id"]

    assert (await other_api.get("/v1/conversations")).json()["data"] == []
    assert_error(await other_api.get(f"/v1/conversations/{conv}"), 404, "not_found")
    assert_error(await other_api.get(f"/v1/conversations/{conv}/messages"), 404, "not_found")
    assert_error(await other_api.get(f"/v1/messages/{msg}"), 404, "not_found")
    assert_error(await other_api.delete(f"/v1/messages/{msg}"), 404, "not_found")
    r = await other_api.post(f"/v1/conversations/{conv}/messages", json={"content": {"type": "text", "text": "x"}})
    assert_error(r, 404, "not_found")
    assert_error(await other_api.patch(f"/v1/conversations/{conv}", json={"status": "resolved"}), 404, "not_found")
    # and nothing changed for the owner
    own = (await api.get(f"/v1/conversations/{conv}")).json()
    assert own["status"] == "open" and own["last_seq"] == 1


async def test_client_message_ids_are_scoped_to_a_workspace(api: httpx.AsyncClient, other_api: httpx.AsyncClient) -> None:
    a = (await api.post("/v1/messages", json={**SEND, "client_message_id": "same"})).json()
    b = (await other_api.post("/v1/messages", json={**SEND, "client_message_id": "same"})).json()
    assert a["messages"][0]["message_id"] != b["messages"][0]["message_id"]


async def test_an_error_half_way_writes_nothing(api: httpx.AsyncClient) -> None:
    # Resolving the first recipient creates its contact before the second one fails.
    recipients = [{"address": "fine"}, {"contact_id": "ct_missing"}]
    r = await api.post("/v1/messages", json={**SEND, "to": recipients})
    assert r.status_code == 422
    assert (await api.get("/v1/conversations")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []

    # Here the first recipient's contact, conversation and message are all written
    # before the second one's key turns out to be another author's.
    [taken] = (await api.post("/v1/messages", json={**SEND, "to": {"address": "owner"}})).json()[
        "messages"
    ]
    by_bot = await api.post(
        f"/v1/conversations/{taken['conversation_id']}/messages",
        json={
            "content": {"type": "text", "text": "the bot's"},
            "author": {"type": "bot", "id": "b1"},
            "client_message_id": "batch:1",
        },
    )
    assert by_bot.status_code == 201, by_bot.text
    before = (await api.get("/v1/contacts")).json()["data"]
    r = await api.post(
        "/v1/messages",
        json={**SEND, "to": [{"address": "new-one"}, {"address": "new-two"}], "client_message_id": "batch"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_client_message_id"
    assert (await api.get("/v1/contacts")).json()["data"] == before
    assert [c["id"] for c in (await api.get("/v1/conversations")).json()["data"]] == [
        taken["conversation_id"]
    ]
    history = (await api.get(f"/v1/conversations/{taken['conversation_id']}/messages")).json()
    assert [m["content"]["text"] for m in history["data"]] == ["hi", "the bot's"]
