"""Health, readiness, metrics, the generated OpenAPI document and its page."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    r = await client.get("/ready")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


async def test_openapi_is_valid_3_1_and_covers_the_contract(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    for path, method in [
        ("/v1/messages", "post"),
        ("/v1/messages/{message_id}", "get"),
        ("/v1/messages/{message_id}", "delete"),
        ("/v1/conversations", "get"),
        ("/v1/conversations/{conversation_id}", "patch"),
        ("/v1/conversations/{conversation_id}/messages", "post"),
    ]:
        assert method in spec["paths"][path], (path, method)
    send = spec["paths"]["/v1/messages"]["post"]
    body_ref = send["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"channel", "to", "content"} <= set(body["required"])
    assert "413" in send["responses"] and "415" in send["responses"]


async def test_docs_page_needs_no_internet(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # no scripts, styles or fonts from elsewhere: everything is inline
    assert not re.search(r"""(src|href)=["']?https?://""", r.text)
    assert "/openapi.json" in r.text


async def test_metrics_count_responses_and_events(api: httpx.AsyncClient) -> None:
    await api.post(
        "/v1/messages",
        json={"channel": "inapp", "to": {"address": "u"}, "content": {"type": "text", "text": "hi"}},
    )
    text = (await api.get("/metrics")).text
    assert 'parley_events_total{type="message.created"} 1' in text
    assert 'parley_http_responses_total{code="202"} 1' in text
    assert "parley_outbox_entries" in text


async def test_ready_is_503_when_configured_redis_is_down(db_url: str) -> None:
    from chat.app import create_app
    from tests.conftest import free_port, test_settings

    app = create_app(test_settings(db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as c:
            r = await c.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["redis"].startswith("error")


async def test_metrics_want_the_token_when_one_is_set(db_url: str) -> None:
    from chat.app import create_app
    from tests.conftest import test_settings

    app = create_app(test_settings(db_url, metrics_token="scrape-me-0123456789"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as c:
            missing = await c.get("/metrics")
            wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
            right = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert right.status_code == 200 and "parley_events_total" in right.text
