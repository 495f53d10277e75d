"""A fake WeChat Official Account API on 127.0.0.1.

| path | checks | answers |
| --- | --- | --- |
| ``GET /cgi-bin/token`` | ``grant_type=client_credential`` (40002), ``appid`` (40013), ``secret`` (40001) | ``{"access_token", "expires_in"}``, a new token each time |
| ``POST /cgi-bin/message/custom/send`` | the access token (41001 missing, 40001 unknown or revoked, 42001 expired), JSON (47001), ``touser`` an OpenID of this account (40003), ``msgtype`` (40008) and its object (44002/44004 empty, 40007 unknown ``media_id``, 45002 text over 2,048 bytes) | ``{"errcode": 0, "errmsg": "ok"}`` |
| ``POST /cgi-bin/message/template/send`` | the token, ``touser``, ``template_id`` (40037), ``data`` | ``{"errcode": 0, "errmsg": "ok", "msgid"}`` |
| ``POST /cgi-bin/media/upload?type=image`` | the token, ``type`` (40004), a multipart ``media`` file (41005) | ``{"type", "media_id", "created_at"}`` |
| ``GET /files/<name>`` | | a file put in ``files`` (a stand-in CDN) |

Like WeChat it answers HTTP 200 with an ``errcode`` for every refusal. A token expires
after ``token_lifetime`` seconds, or at once with ``expire_tokens()``; ``revoke_tokens()``
makes them invalid (as another server fetching a newer one eventually does).

Sends and template sends answer by a script, like tests/fakes/local.py: ``Ok()``,
``Err(errcode, errmsg)`` (HTTP 200 with that body), ``Http(status)`` (a gateway's error
page), or ``HANG``; once the script is used up it accepts. ``token_respond`` scripts the
token endpoint the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
APP_ID = "wx1234567890abcdef"
APP_SECRET = "wechat-app-secret-0010"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
_OPENID = re.compile(r"^o[A-Za-z0-9_-]{27}$")
_MSGTYPES = {"text", "image", "voice", "video", "music", "news", "mpnews", "msgmenu", "wxcard"}


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class Err:
    errcode: int
    errmsg: str


@dataclass(frozen=True)
class Http:
    status: int


Answer = Ok | Err | Http | Literal["hang"]

SYSTEM_BUSY = Err(-1, "system error rid: 66a8f2c1-00000000-00000001")
QUOTA = Err(45009, "reach max api daily quota limit rid: 66a8f2c1-00000000-00000002")


@dataclass
class Call:
    path: str  # "/cgi-bin/message/custom/send" ...
    body: dict[str, Any]
    access_token: str
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    errcode: int | None = None  # what was answered (None: an HTTP error)


@dataclass
class FakeWeChat(ScriptedFake[Answer]):
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    token_lifetime: int = 7200
    calls: list[Call] = field(default_factory=list)  # sends that passed the checks
    refused: list[tuple[str, int]] = field(default_factory=list)  # (path, errcode)
    token_calls: int = 0
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (mime, data)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expires at
    _token_script: deque[Answer] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(200228332))

    @property
    def sent(self) -> list[Call]:
        """Messages WeChat accepted, in order."""
        return [c for c in self.calls if c.errcode == 0]

    def token_respond(self, *answers: Answer) -> None:
        self._token_script.extend(answers)

    def expire_tokens(self) -> None:
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path.startswith("/files/"):
            name = path.removeprefix("/files/")
            if name not in self.files:
                return web.Response(status=404)
            data, mime = self.files[name]
            return web.Response(body=data, content_type=mime)
        if request.method == "GET" and path == "/cgi-bin/token":
            return await self._token(request)
        if request.method != "POST" or path not in _SENDS:
            return web.Response(status=404, text="404 Not Found")
        refusal = self._check_token(request.query.get("access_token"))
        if refusal is not None:
            return self._refuse(path, refusal)
        if path == "/cgi-bin/media/upload":
            return await self._upload(request)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._refuse(path, Err(47001, "data format error"))
        problem = _SENDS[path](self, body)
        if problem is not None:
            return self._refuse(path, problem)
        call = Call(path, body, request.query["access_token"])
        self.calls.append(call)
        self._changed.set()
        answer = self._script.popleft() if self._script else Ok()
        try:
            if answer == HANG:
                call.outcome = "held"
                self._changed.set()
                await self._release.wait()
                answer = Ok()
        except (asyncio.CancelledError, ConnectionError):
            call.outcome = "caller left"
            self._changed.set()
            raise
        call.outcome = "answered"
        self._changed.set()
        if isinstance(answer, Http):
            return web.Response(status=answer.status, text="<html>Bad Gateway</html>")
        if isinstance(answer, Err):
            call.errcode = answer.errcode
            return _answer(answer)
        call.errcode = 0
        if path.endswith("/template/send"):
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._ids)})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _token(self, request: web.BaseRequest) -> web.StreamResponse:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _answer(Err(40002, "invalid grant_type"))
        if q.get("appid") != self.app_id:
            return _answer(Err(40013, "invalid appid"))
        if q.get("secret") != self.app_secret:
            return _answer(Err(40001, "invalid credential, access_token is invalid or not latest"))
        self.token_calls += 1
        self._changed.set()
        answer = self._token_script.popleft() if self._token_script else Ok()
        if isinstance(answer, Http):
            return web.Response(status=answer.status, text="<html>Bad Gateway</html>")
        if isinstance(answer, Err):
            return _answer(answer)
        token = f"83_FakeAccessToken_{self.token_calls:04d}"
        self._tokens[token] = time.monotonic() + self.token_lifetime
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime})

    def _check_token(self, token: str | None) -> Err | None:
        if not token:
            return Err(41001, "access_token missing")
        if token not in self._tokens:
            return Err(40001, "invalid credential, access_token is invalid or not latest")
        if time.monotonic() >= self._tokens[token]:
            return Err(42001, "access_token expired")
        return None

    async def _upload(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        kind = request.query.get("type")
        if kind not in ("image", "voice", "video", "thumb"):
            return self._refuse(path, Err(40004, "invalid media type"))
        if request.content_type != "multipart/form-data":
            return self._refuse(path, Err(41005, "media data missing"))
        form = await request.post()
        media = form.get("media")
        if not isinstance(media, web.FileField):
            return self._refuse(path, Err(41005, "media data missing"))
        data = media.file.read()
        if kind == "image" and len(data) > 10 * 1024 * 1024:
            return self._refuse(path, Err(40009, "invalid image size"))
        media_id = f"media_{len(self.media) + 1:04d}_{kind}"
        self.media[media_id] = (media.content_type, data)
        self._changed.set()
        return web.json_response({"type": kind, "media_id": media_id, "created_at": 1722337400})

    def _custom(self, body: Any) -> Err | None:
        if not isinstance(body, dict):
            return Err(47001, "data format error")
        problem = self._touser(body)
        if problem is not None:
            return problem
        msgtype = body.get("msgtype")
        if msgtype not in _MSGTYPES or not isinstance(body.get(msgtype), dict):
            return Err(40008, "invalid message type")
        inner = body[msgtype]
        if msgtype == "text":
            content = inner.get("content")
            if not isinstance(content, str) or not content:
                return Err(44004, "empty content")
            if len(content.encode()) > 2048:
                return Err(45002, "content size out of limit")
        if msgtype in ("image", "voice") and inner.get("media_id") not in self.media:
            return Err(40007, "invalid media_id")
        if msgtype == "msgmenu":
            items = inner.get("list")
            ok = (
                isinstance(items, list)
                and items
                and all(isinstance(i, dict) and i.get("id") and i.get("content") for i in items)
            )
            if not ok or not isinstance(inner.get("head_content"), str):
                return Err(44002, "empty post data")
        return None

    def _template(self, body: Any) -> Err | None:
        if not isinstance(body, dict):
            return Err(47001, "data format error")
        problem = self._touser(body)
        if problem is not None:
            return problem
        if not body.get("template_id"):
            return Err(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and "value" in v for v in data.values()
        ):
            return Err(47001, "data format error")
        return None

    def _touser(self, body: Mapping[str, Any]) -> Err | None:
        if not _OPENID.match(str(body.get("touser") or "")):
            return Err(40003, "invalid openid")
        return None

    def _refuse(self, path: str, err: Err) -> web.Response:
        self.refused.append((path, err.errcode))
        self._changed.set()
        return _answer(err)


def _answer(err: Err) -> web.Response:
    return web.json_response({"errcode": err.errcode, "errmsg": err.errmsg})


_SENDS: Mapping[str, Any] = {
    "/cgi-bin/message/custom/send": FakeWeChat._custom,
    "/cgi-bin/message/template/send": FakeWeChat._template,
    "/cgi-bin/media/upload": None,
}
