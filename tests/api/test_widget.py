"""``GET /widget.js``, the demo page, and the widget's settings in the in-app channel's config."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.api.widget import WIDGET_JS, _built
from chat.domain.errors import NotFound

SETTINGS = {
    "color": "#0F766E",
    "title": "Acme help",
    "greeting": "Hi! Ask us about your order.",
    "pre_chat_form": {
        "enabled": True,
        "fields": [{"key": "name", "required": False}, {"key": "email", "required": True}],
    },
}


async def test_widget_js_is_served_as_a_cacheable_script(client: httpx.AsyncClient) -> None:
    r = await client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "content-encoding" not in r.headers
    assert r.content == WIDGET_JS.read_bytes()

    again = await client.get("/widget.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == r.headers["etag"]


async def test_widget_js_is_gzipped_for_browsers_that_accept_it(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/widget.js", headers={"Accept-Encoding": "gzip, br"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == WIDGET_JS.read_bytes()
    assert len(raw) <= 60 * 1024


async def test_the_demo_page_carries_the_snippet(client: httpx.AsyncClient) -> None:
    r = await client.get("/widget/demo", params={"widget_key": "wk_abc-123", "locale": "fr"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/widget.js" data-widget-key="wk_abc-123" data-locale="fr" async></script>' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]

    plain = await client.get("/widget/demo")
    assert plain.status_code == 200 and "<script" not in plain.text
    assert "parley serve --demo" in plain.text

    bad = await client.get("/widget/demo", params={"widget_key": '"><script>alert(1)</script>'})
    assert bad.status_code == 422 and "<script>" not in bad.text

    landing = await client.get("/")
    assert 'href="/widget/demo"' in landing.text


async def _inapp(api: httpx.AsyncClient) -> dict[str, Any]:
    channels = (await api.get("/v1/channels")).json()["data"]
    channel: dict[str, Any] = next(c for c in channels if c["type"] == "inapp")
    return channel


async def test_widget_settings_live_in_the_inapp_config_next_to_the_origins(
    api: httpx.AsyncClient,
) -> None:
    inapp = await _inapp(api)
    r = await api.patch(f"/v1/channels/{inapp['id']}", json={"config": {"widget": SETTINGS}})
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {"allowed_origins": ["*"], "widget": SETTINGS}
    assert (await api.get(f"/v1/channels/{inapp['id']}")).json()["config"]["widget"] == SETTINGS

    # The widget object is replaced as a whole (a merge patch works on the config's top
    # level); what it leaves out takes its default.
    r = await api.patch(f"/v1/channels/{inapp['id']}", json={"config": {"widget": {"color": "#111111"}}})
    widget = r.json()["config"]["widget"]
    assert widget["color"] == "#111111" and "greeting" not in widget
    assert widget["pre_chat_form"]["enabled"] is False
    r = await api.patch(f"/v1/channels/{inapp['id']}", json={"config": {"widget": None}})
    assert r.json()["config"] == {"allowed_origins": ["*"]}


@pytest.mark.parametrize(
    ("widget", "where"),
    [
        ({"color": "blue"}, ["config", "widget", "color"]),
        ({"color": "#12345"}, ["config", "widget", "color"]),
        ({"greeting": "x" * 501}, ["config", "widget", "greeting"]),
        ({"title": ""}, ["config", "widget", "title"]),
        ({"launcher": "left"}, ["config", "widget", "launcher"]),
        ({"pre_chat_form": {"enabled": "maybe"}}, ["config", "widget", "pre_chat_form", "enabled"]),
        ({"pre_chat_form": {"fields": []}}, ["config", "widget", "pre_chat_form", "fields"]),
        ({"pre_chat_form": {"fields": [{"key": "phone"}]}}, ["config", "widget", "pre_chat_form", "fields", 0, "key"]),
        (
            {"pre_chat_form": {"fields": [{"key": "name"}, {"key": "name"}]}},
            ["config", "widget", "pre_chat_form", "fields"],
        ),
    ],
)
async def test_bad_widget_settings_are_refused_and_change_nothing(
    api: httpx.AsyncClient, widget: dict[str, Any], where: list[Any]
) -> None:
    inapp = await _inapp(api)
    r = await api.patch(f"/v1/channels/{inapp['id']}", json={"config": {"widget": widget}})
    assert r.status_code == 422, r.text
    locs = [d["loc"][-len(where):] for d in r.json()["error"]["details"]]
    assert where in locs, locs
    assert (await api.get(f"/v1/channels/{inapp['id']}")).json()["config"] == {"allowed_origins": ["*"]}


def test_an_unbuilt_widget_is_a_404_that_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        _built(tmp_path / "widget.js")
    assert caught.value.code == "widget_not_built" and "npm run build" in str(caught.value)
