"""WeChat Official Account: customer-service messages out, XML callbacks in.

Outbound goes through the customer-service API, ``POST {api_base_url}/cgi-bin/message/
custom/send?access_token=...`` (only within 48 hours of the customer's last interaction;
outside it WeChat answers 45015), and templates through ``/cgi-bin/message/template/send``:

| Parley content | WeChat message |
| --- | --- |
| text | ``text`` |
| buttons | ``msgmenu`` (a tap comes back as a text message with the button's title) |
| media, ``image/*`` | fetched, uploaded (``/cgi-bin/media/upload``), sent as ``image``; a caption follows as text |
| media, other types | text: the caption and the link (customer-service messages carry no files) |
| location | text: name, address and a map link |
| template | ``template/send``: ``name`` is the ``template_id``, ``parameters`` fill ``data`` (``url`` opens on tap) |

The access token (``GET /cgi-bin/token?grant_type=client_credential``) is kept in the
shared ``TokenCache`` until shortly before ``expires_in``; a call refused with 40001,
40014 or 42001 refreshes it once and is sent again. WeChat answers HTTP 200 with an
``errcode``: -1 (busy), 45009/45011 (quota) and HTTP 5xx or timeouts are ``RetryLater``;
every other code is ``GiveUp`` with WeChat's code and message (45015 outside the
48-hour window, 40003 a bad OpenID, 43004 not subscribed ...). A customer-service send
answers no message id, so the provider id is ``custom:<Parley message id>``; a template's
is its ``msgid``, which the ``TEMPLATESENDJOBFINISH`` event reports on.

Inbound: see ``connectors.wechat_events`` for what each ``MsgType`` and event becomes.
Every callback carries ``signature`` (SHA-1 of the sorted token, timestamp and nonce);
in safe mode the body's ``Encrypt`` is checked against ``msg_signature`` and decrypted
(``connectors.wechat_crypto``). ``signature`` does not cover the body, so a channel with
an ``encoding_aes_key`` takes only encrypted bodies (WeChat's "compatible" mode sends
both); timestamps are not checked for age (WeChat's own libraries do not), repeats are
dropped by ``MsgId``. The answer is ``success``: replies go out through the
customer-service API, never in the 5-second callback answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from connectors.base import (
    AccessToken,
    Outbound,
    Parsed,
    SendResult,
    TokenCache,
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
)
from connectors.errors import GiveUp, RetryLater
from connectors.tokens import MemoryTokenCache
from connectors.wechat_crypto import DecryptError, MessageCrypto, signature_matches
from connectors.wechat_events import encrypted_field, parse_xml

API_BASE_URL = "https://api.weixin.qq.com"
# The token was refused: invalid or not the latest (40001), invalid (40014), expired (42001).
TOKEN_REFUSED = frozenset({40001, 40014, 42001})
# System busy, API daily and per-minute quotas: another attempt later may pass.
RETRYABLE = frozenset({-1, 45009, 45011})
MAX_IMAGE_BYTES = 10 * 1024 * 1024
ACK = WebhookAnswer(body=b"success")


class WeChatConnector:
    type: ClassVar[str] = "wechat"

    def __init__(self, config: Mapping[str, Any], http: httpx.AsyncClient) -> None:
        self.base = str(config.get("api_base_url") or API_BASE_URL).rstrip("/")
        self.token_url = str(config.get("token_url") or f"{self.base}/cgi-bin/token")
        self.app_id = str(config["app_id"])
        self.app_secret = str(config["app_secret"])
        self.token = str(config["token"])  # the callback token, not an access token
        key = config.get("encoding_aes_key")
        self.crypto = MessageCrypto(str(key), self.app_id) if key else None
        self.http = http
        # Without the app's shared cache (a one-off connector), a token per instance.
        self.tokens: TokenCache = MemoryTokenCache()
        # The cache key names the credentials without holding them: a channel of another
        # workspace with the same app_id but not its secret never gets this token.
        secret_hash = hashlib.sha256(self.app_secret.encode()).hexdigest()[:16]
        self.cache_key = f"wechat:{self.token_url}:{self.app_id}:{secret_hash}"

    def use_tokens(self, tokens: TokenCache) -> None:
        self.tokens = tokens

    # -- outbound ----------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        content = message.content
        kind = content.get("type")
        if kind == "template":
            answer = await self._api("/cgi-bin/message/template/send", json=template_body(message))
            return SendResult(str(answer.get("msgid") or f"template:{message.message_id}"))
        if kind == "media" and str(content.get("mime_type") or "").startswith("image/"):
            media_id = await self._upload_image(str(content["url"]))
            await self._custom(message.to, "image", {"media_id": media_id})
            if content.get("caption"):
                await self._custom(message.to, "text", {"content": str(content["caption"])})
        else:
            msgtype, body = custom_body(content)
            await self._custom(message.to, msgtype, body)
        return SendResult(f"custom:{message.message_id}")

    async def _custom(self, openid: str, msgtype: str, body: Mapping[str, Any]) -> None:
        payload = {"touser": openid, "msgtype": msgtype, msgtype: dict(body)}
        await self._api("/cgi-bin/message/custom/send", json=payload)

    async def _upload_image(self, url: str) -> str:
        """Parley's image, fetched and uploaded as temporary media; its ``media_id``."""
        try:
            got = await self.http.get(url, follow_redirects=True)
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout fetching the media", code="media_timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"fetching the media: {exc}", code="media_unreachable") from exc
        if got.status_code >= 500:
            raise RetryLater(f"HTTP {got.status_code} fetching the media", code="media_unreachable")
        if got.status_code != 200:
            raise GiveUp(f"HTTP {got.status_code} fetching the media", code="media_unreachable")
        if len(got.content) > MAX_IMAGE_BYTES:
            raise GiveUp("WeChat takes images of at most 10 MB", code="media_too_large")
        mime = got.headers.get("content-type", "").split(";")[0].strip() or "image/jpeg"
        name = "image." + (mime.rsplit("/", 1)[-1] or "jpg")
        answer = await self._api(
            "/cgi-bin/media/upload",
            params={"type": "image"},
            files={"media": (name, got.content, mime)},
        )
        if not answer.get("media_id"):
            raise RetryLater("a media upload answer without a media_id", code="bad_answer")
        return str(answer["media_id"])

    async def _api(self, path: str, **request: Any) -> dict[str, Any]:
        """POST to the API with a current access token (refreshed once if refused); the
        answer, or ``RetryLater``/``GiveUp`` with WeChat's errcode and errmsg."""
        token = await self.tokens.get(self.cache_key, self._fetch_token)
        answer = await self._post(path, token, **request)
        if answer.get("errcode") in TOKEN_REFUSED:
            token = await self.tokens.get(self.cache_key, self._fetch_token, refused=token)
            answer = await self._post(path, token, **request)
            if answer.get("errcode") in TOKEN_REFUSED:
                # A fresh token refused: another process may have just replaced it.
                raise _error(answer, retry=True)
        if answer.get("errcode", 0) != 0:
            raise _error(answer)
        return answer

    async def _post(self, path: str, token: str, **request: Any) -> dict[str, Any]:
        params = {**request.pop("params", {}), "access_token": token}
        return await self._request("POST", f"{self.base}{path}", params=params, **request)

    async def _fetch_token(self) -> AccessToken:
        query = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}
        answer = await self._request("GET", self.token_url, params=query)
        if answer.get("errcode", 0) != 0:
            raise _error(answer)
        try:
            return AccessToken(str(answer["access_token"]), float(answer["expires_in"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryLater("a token answer without access_token", code="bad_answer") from exc

    async def _request(self, method: str, url: str, **request: Any) -> dict[str, Any]:
        try:
            r = await self.http.request(method, url, **request)
        except httpx.TimeoutException as exc:
            raise RetryLater("timeout", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}", code="connection_error") from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 200 and isinstance(body, dict):
            return body
        # Not the API speaking (a gateway's error page): the HTTP status decides.
        message = f"HTTP {r.status_code} without a WeChat answer"
        if r.status_code >= 500 or r.status_code == 429 or r.status_code == 200:
            raise RetryLater(message, code=str(r.status_code), status_code=r.status_code)
        raise GiveUp(message, code=str(r.status_code), status_code=r.status_code)

    # -- inbound -----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        q = request.query
        given, timestamp, nonce = q.get("signature"), q.get("timestamp"), q.get("nonce")
        if not given or not timestamp or not nonce:
            raise WebhookRejected("no signature, timestamp and nonce in the query")
        if not signature_matches(given, self.token, timestamp, nonce):
            raise WebhookRejected("wrong signature", status=403)
        if request.method.upper() != "POST":
            return
        encrypted = encrypted_field(request.body)
        if encrypted is None:
            # ``signature`` does not cover the body: with a key set, only an encrypted
            # body (checked by ``msg_signature``) is taken as WeChat's.
            if self.crypto is not None or q.get("encrypt_type") == "aes":
                raise WebhookRejected("the channel is in safe mode: no Encrypt field", status=403)
            return
        if self.crypto is None:
            raise WebhookRejected(
                "an encrypted callback, but the channel has no encoding_aes_key", status=403
            )
        msg_signature = q.get("msg_signature")
        if not msg_signature:
            raise WebhookRejected("no msg_signature for an encrypted callback")
        if not signature_matches(msg_signature, self.token, timestamp, nonce, encrypted):
            raise WebhookRejected("wrong msg_signature", status=403)
        try:
            self.crypto.decrypt(encrypted)
        except DecryptError as exc:
            raise WebhookRejected(f"cannot decrypt: {exc}", status=403) from exc

    def challenge(self, request: WebhookRequest) -> WebhookAnswer | None:
        echostr = request.query.get("echostr")
        if request.method.upper() != "GET" or echostr is None:
            return None
        return WebhookAnswer(body=echostr.encode())  # verbatim

    def parse(self, request: WebhookRequest) -> Sequence[Parsed]:
        if request.method.upper() != "POST":
            return []  # a signed GET without echostr: nothing to store
        xml = request.body
        encrypted = encrypted_field(xml)
        if encrypted is not None:
            if self.crypto is None:
                raise ValueError("an encrypted callback, but the channel has no encoding_aes_key")
            xml = self.crypto.decrypt(encrypted)
        return parse_xml(xml)

    def callback_answer(self, request: WebhookRequest) -> WebhookAnswer | None:
        return ACK  # "success": nothing in the answer; replies use the customer-service API


def custom_body(content: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The customer-service ``msgtype`` and its object for Parley ``content`` (images
    other than by upload aside)."""
    kind = content.get("type")
    if kind == "text":
        return "text", {"content": str(content["text"])}
    if kind == "buttons":
        items = [{"id": str(b["id"]), "content": str(b["title"])} for b in content["buttons"]]
        return "msgmenu", {"head_content": str(content["text"]), "list": items, "tail_content": ""}
    if kind == "media":
        lines = [str(content["caption"])] if content.get("caption") else []
        return "text", {"content": "\n".join([*lines, str(content["url"])])}
    if kind == "location":
        lat, lng = content["latitude"], content["longitude"]
        lines = [str(content[k]) for k in ("name", "address") if content.get(k)]
        lines.append(f"https://uri.amap.com/marker?position={lng},{lat}")
        return "text", {"content": "\n".join(lines)}
    raise GiveUp(f"WeChat cannot carry {kind!r} content", code="content_not_supported")


def template_body(message: Outbound) -> dict[str, Any]:
    """``template/send``: ``name`` is the template id; named parameters fill ``data``
    (``{"thing1": "Shipped"}`` or ``{"thing1": {"value": ..., "color": ...}}``), and a
    ``url`` parameter is the page the message opens."""
    content = message.content
    params = content.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise GiveUp(
            "WeChat template parameters are named: an object, not a list",
            code="template_parameters",
        )
    data = {
        str(k): dict(v) if isinstance(v, Mapping) else {"value": str(v)}
        for k, v in params.items()
        if k not in ("url", "miniprogram")
    }
    body: dict[str, Any] = {"touser": message.to, "template_id": str(content["name"]), "data": data}
    if params.get("url"):
        body["url"] = str(params["url"])
    if isinstance(params.get("miniprogram"), Mapping):
        body["miniprogram"] = dict(params["miniprogram"])
    return body


def _error(answer: Mapping[str, Any], retry: bool = False) -> GiveUp | RetryLater:
    code = answer.get("errcode")
    message = str(answer.get("errmsg") or f"errcode {code}")
    if retry or code in RETRYABLE:
        return RetryLater(message, code=str(code))
    return GiveUp(message, code=str(code))
