"""``/inbox``: the agent inbox (a single page built from web-inbox/, committed under
chat/static/inbox/) with a strict Content-Security-Policy.

The page loads only its own script and style, connects only to this origin (HTTP and the
Socket.IO websocket), cannot be framed, and keeps the agent's token out of every URL (it
travels in ``Authorization`` headers and the socket's ``auth``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse

from chat.api.routing import Ctx, Router
from chat.domain.errors import NotFound

INBOX = Path(__file__).resolve().parent.parent / "static" / "inbox"
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
}

router = Router("inbox")


def content_security_policy(request: Request) -> str:
    """Only this origin; the socket's ws(s):// form of it named, as older browsers need."""
    host = request.headers.get("host", "")
    sockets = f" ws://{host} wss://{host}" if host and "'" not in host and ";" not in host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


@router.route(
    "GET", "/inbox", summary="The agent inbox (a web page)", access="public", produces="text/html",
    errors=(404,),
)
async def inbox_page(ctx: Ctx) -> Any:
    page = INBOX / "index.html"
    if not page.is_file():
        raise NotFound("the inbox is not built: run npm run build in web-inbox/")
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=security_headers(ctx.request))


@router.route(
    "GET", "/inbox/assets/{name}", summary="The inbox's script and style", access="public",
    produces="text/javascript", errors=(404,),
)
async def inbox_asset(ctx: Ctx) -> Any:
    """Only the built files, by name: no path reaches outside chat/static/inbox/assets."""
    name: str = ctx.path["name"]
    path = INBOX / "assets" / name
    media_type = ASSET_TYPES.get(Path(name).suffix)
    if "/" in name or name.startswith(".") or media_type is None or not path.is_file():
        raise NotFound("no such inbox asset")
    return FileResponse(path, media_type=media_type, headers=security_headers(ctx.request))
