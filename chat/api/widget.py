"""The web chat widget: its script (``GET /widget.js``) and a page to try it (``/widget/demo``).

The script is built from ``web-widget/`` into ``chat/static/widget.js`` and committed, so a
server needs no npm. It is served with a short public cache life and an ETag (sites embed the
unversioned URL, so a new release reaches visitors within minutes), gzipped when the browser
accepts it. Its settings (colour, greeting, pre-chat form) reach each visitor in the
``/client`` ``session`` event, after the origin check, so nothing here reads the database.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from chat.api.common import Strict
from chat.api.routing import Ctx, Router
from chat.domain.errors import NotFound

WIDGET_JS = Path(__file__).resolve().parent.parent / "static" / "widget.js"
CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"
_DEMO_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src * data:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

router = Router("widget")


@dataclass(frozen=True)
class _Built:
    mtime_ns: int
    body: bytes
    gzipped: bytes
    etag: str


_cache: dict[Path, _Built] = {}


def _built(path: Path) -> _Built:
    """The script, its gzip and its ETag, read again only when the file changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise NotFound(
            "widget.js is not built: run `npm ci && npm run build` in web-widget/",
            code="widget_not_built",
        ) from exc
    cached = _cache.get(path)
    if cached is None or cached.mtime_ns != mtime:
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        cached = _Built(mtime, body, gzip.compress(body, 9, mtime=0), etag)
        _cache[path] = cached
    return cached


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


@router.route(
    "GET", "/widget.js", summary="The embeddable web chat widget (one script tag)",
    access="public", produces="text/javascript", errors=(404,),
)
async def widget_js(ctx: Ctx) -> Any:
    """Embed with ``<script src="https://HOST/widget.js" data-widget-key="wk_..." async>``.
    Answers 304 to a matching ``If-None-Match``."""
    built = _built(WIDGET_JS)
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": built.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # Pages that isolate themselves (COEP require-corp) may still load it.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if built.etag in ctx.request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = built.body
    if _accepts_gzip(ctx.request):
        body = built.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


class DemoQuery(Strict):
    widget_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{1,200}$")
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@router.route(
    "GET", "/widget/demo", summary="A plain page carrying the widget snippet, to try it",
    access="public", query=DemoQuery, produces="text/html",
)
async def widget_demo(ctx: Ctx) -> Any:
    """``?widget_key=wk_...`` (printed by ``parley serve --demo``); ``&locale=fr`` forces
    the widget's language. Without a key the page says how to get one."""
    q: DemoQuery = ctx.query
    if q.widget_key is None:
        snippet = "<p>Add <code>?widget_key=wk_…</code> to this page's address: "
        snippet += "<code>parley serve --demo</code> prints the whole link.</p>"
    else:
        locale = f' data-locale="{escape(q.locale)}"' if q.locale else ""
        tag = f'<script src="/widget.js" data-widget-key="{escape(q.widget_key)}"{locale} async></script>'
        shown = tag.replace('src="/widget.js"', f'src="{escape(str(ctx.request.base_url))}widget.js"')
        snippet = (
            "<p>This page carries the widget's one-tag snippet. Open the chat button in the "
            "corner and write; answer from the agent inbox or the API in another tab.</p>"
            f"<pre><code>{escape(shown)}</code></pre>\n{tag}"
        )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley widget demo</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}}
pre{{background:#f3f3f3;padding:.75rem;overflow:auto;white-space:pre-wrap}}</style></head>
<body><main><h1>Parley widget demo</h1>
{snippet}
</main></body></html>
"""
    return HTMLResponse(body, headers={"Content-Security-Policy": _DEMO_CSP})
