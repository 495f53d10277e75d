"""A fake X API v2 on 127.0.0.1: ``POST /2/dm_conversations/with/{participant_id}/messages``.

It checks what the real one checks: an ``Authorization: OAuth ...`` header in user
context whose consumer key and access token it knows, whose HMAC-SHA1 signature
(RFC 5849, recomputed here from the request it received, with both secrets) matches,
whose timestamp is within 5 minutes and whose nonce is not replayed (401 problem JSON
otherwise); a numeric participant id and a JSON body with ``text`` or ``attachments``
(400 ``invalid-request`` otherwise); text of at most 10,000 characters. It answers 201
``{"data": {"dm_conversation_id", "dm_event_id"}}`` with rising Snowflake event ids (their
top bits the time they were made, as X's are), and counts
requests against a configurable rate limit (``x-rate-limit-*`` headers, 429 when spent).

It answers by a script, like tests/fakes/provider.py: ``Ok()``, ``Problem(status, body,
headers)`` or ``HANG``. Once the script is used up it accepts.

Media come through X's chunked upload, checked step by step: ``POST
/2/media/upload/initialize`` (JSON ``media_type``, ``total_bytes`` within the category's
limit, ``media_category`` ``dm_image|dm_gif|dm_video``), ``POST .../{id}/append``
(multipart ``segment_index`` and ``media`` of at most 5 MB, only before FINALIZE, never
past ``total_bytes``), ``POST .../{id}/finalize`` (every segment from 0 there, adding up
to ``total_bytes``) and ``GET /2/media/upload?command=STATUS&media_id=`` (signed with its
query). Every step is OAuth-checked. ``processing`` scripts the ``processing_info`` that
FINALIZE and each STATUS answer (none: ready at once); a DM may attach only a media whose
processing ``succeeded``. ``fail_upload(step, problem)`` fails the next request of a step.
``files`` is a stand-in CDN for Parley's media URLs (``stream_files``: sent chunked,
without ``Content-Length``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from connectors.x_dm import (
    SNOWFLAKE_EPOCH_MS,
    hmac_sha1_signature,
    parse_oauth_header,
    signature_base_string,
)
from tests.fakes.local import ScriptedFake

HANG: Literal["hang"] = "hang"
_PATH = ("2", "dm_conversations", "with")
MB = 1024 * 1024
# X's limits per DM media category, and for one APPEND segment.
CATEGORY_LIMITS = {"dm_image": 5 * MB, "dm_gif": 15 * MB, "dm_video": 512 * MB}
SEGMENT_LIMIT = 5 * MB
UploadStep = Literal["initialize", "append", "finalize", "status"]


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class Problem:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


Answer = Ok | Problem | Literal["hang"]


def unauthorized() -> Problem:
    return Problem(
        401,
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    )


def rate_limited(reset_in: int) -> Problem:
    body = {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    reset = str(int(time.time()) + reset_in)
    return Problem(
        429,
        body,
        {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
    )


def _invalid(message: str, parameters: Mapping[str, Any] | None = None) -> Problem:
    error: dict[str, Any] = {"message": message}
    if parameters:
        error["parameters"] = dict(parameters)
    return Problem(
        400,
        {
            "errors": [error],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


@dataclass
class Call:
    participant_id: str
    body: dict[str, Any]
    oauth: dict[str, str]
    outcome: str = "pending"  # "answered" | "held" | "caller left"
    dm_event_id: str | None = None


@dataclass
class Upload:
    """One chunked upload as the fake saw it."""

    media_id: str
    category: str
    mime_type: str
    total_bytes: int
    segments: dict[int, bytes] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)  # "initialize", "append 0", ...
    finalized: bool = False
    state: str | None = None  # the processing state last reported
    finalized_at: float = 0.0  # time.monotonic() of FINALIZE
    status_at: list[float] = field(default_factory=list)  # of each STATUS request

    @property
    def data(self) -> bytes:
        return b"".join(self.segments[i] for i in sorted(self.segments))


@dataclass
class FakeX(ScriptedFake[Answer]):
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    rate_limit: int = 200  # DM create: per user per 15 minutes
    calls: list[Call] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)  # auth or validation failures
    # Uploaded media by id: (category, MIME type, bytes). A DM may attach only these.
    media: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    # Files served at ``/files/<name>`` (a stand-in CDN for Parley's media URLs).
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    stream_files: bool = False
    uploads: dict[str, Upload] = field(default_factory=dict)
    # The processing_info FINALIZE and then each STATUS answer, in order.
    processing: deque[dict[str, Any]] = field(default_factory=deque)
    _upload_failures: dict[str, deque[Problem]] = field(default_factory=dict)
    _nonces: set[str] = field(default_factory=set)
    _last_id: int = 0

    @property
    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.dm_event_id is not None]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 2 and parts[0] == "files":
            return await self._file(request, parts[1])
        if tuple(parts[:3]) == ("2", "media", "upload"):
            return await self._upload(request, parts[3:])
        if request.method != "POST" or len(parts) != 5 or tuple(parts[:3]) != _PATH:
            return _problem(Problem(404, {"title": "Not Found Error", "type": "about:blank"}))
        if parts[4] != "messages":
            return _problem(Problem(404, {"title": "Not Found Error", "type": "about:blank"}))
        oauth = self._authenticate(request)
        if oauth is None:
            return self._refuse(unauthorized())
        participant = parts[3]
        if not participant.isdigit():
            return self._refuse(
                _invalid(
                    f"The `participant_id` query parameter value [{participant}] is not valid",
                    {"participant_id": [participant]},
                )
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._refuse(_invalid("Request body is not valid JSON"))
        problem = _check(body, self.media)
        if problem is not None:
            return self._refuse(problem)
        call = Call(participant, body, oauth)
        self.calls.append(call)
        self._changed.set()
        answer = self._script.popleft() if self._script else Ok()
        if isinstance(answer, Ok) and len(self.sent) >= self.rate_limit:
            answer = rate_limited(900)
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
        if isinstance(answer, Problem):
            self._changed.set()
            return _problem(answer)
        call.dm_event_id = self.new_id()
        self._changed.set()
        remaining = self.rate_limit - len(self.sent)
        return web.json_response(
            {
                "data": {
                    "dm_conversation_id": f"{participant}-4337869213",
                    "dm_event_id": call.dm_event_id,
                }
            },
            status=201,
            headers={
                "x-rate-limit-limit": str(self.rate_limit),
                "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(time.time()) + 900),
            },
        )

    def fail_upload(self, step: UploadStep, problem: Problem) -> None:
        """The next request of ``step`` is answered with ``problem``."""
        self._upload_failures.setdefault(step, deque()).append(problem)

    async def _file(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        if name not in self.files:
            return web.Response(status=404)
        data, mime = self.files[name]
        if not self.stream_files:
            return web.Response(body=data, content_type=mime)
        response = web.StreamResponse(headers={"content-type": mime})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 64 * 1024):
            await response.write(data[start : start + 64 * 1024])
        await response.write_eof()
        return response

    async def _upload(self, request: web.BaseRequest, rest: list[str]) -> web.StreamResponse:
        step: UploadStep
        if request.method == "POST" and rest == ["initialize"]:
            step = "initialize"
        elif request.method == "POST" and len(rest) == 2 and rest[1] in ("append", "finalize"):
            step = "append" if rest[1] == "append" else "finalize"
        elif request.method == "GET" and rest == [] and request.query.get("command") == "STATUS":
            step = "status"
        else:
            return _problem(Problem(404, {"title": "Not Found Error", "type": "about:blank"}))
        if self._authenticate(request) is None:
            return self._refuse(unauthorized())
        failures = self._upload_failures.get(step)
        if failures:
            return _problem(failures.popleft())
        if step == "initialize":
            return await self._initialize(request)
        media_id = rest[0] if rest else request.query.get("media_id", "")
        upload = self.uploads.get(media_id)
        if upload is None:
            return self._refuse(_invalid(f"The media id [{media_id}] is not valid"))
        if step == "append":
            return await self._append(request, upload)
        if step == "finalize":
            return self._finalize(upload)
        return self._status(upload)

    async def _initialize(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._refuse(_invalid("Request body is not valid JSON"))
        if not isinstance(body, dict):
            return self._refuse(_invalid("Request body must be a JSON object"))
        category, mime, total = body.get("media_category"), body.get("media_type"), body.get("total_bytes")
        if category not in CATEGORY_LIMITS:
            return self._refuse(_invalid(f"`media_category` [{category}] is not valid"))
        if not isinstance(mime, str) or "/" not in mime:
            return self._refuse(_invalid("`media_type` is required"))
        if not isinstance(total, int) or total <= 0:
            return self._refuse(_invalid("`total_bytes` must be a positive integer"))
        if total > CATEGORY_LIMITS[category]:
            return self._refuse(_invalid(f"`total_bytes` is over the {category} limit"))
        upload = Upload(self.new_id(), category, mime, total, steps=["initialize"])
        self.uploads[upload.media_id] = upload
        self._changed.set()
        data = {"id": upload.media_id, "media_key": f"3_{upload.media_id}", "expires_after_secs": 86400}
        return web.json_response({"data": data})

    async def _append(self, request: web.BaseRequest, upload: Upload) -> web.StreamResponse:
        if upload.finalized:
            return self._refuse(_invalid("The upload is already finalized"))
        if request.content_type != "multipart/form-data":
            return self._refuse(_invalid("A multipart/form-data body is required"))
        # aiohttp reads 1 MB at most unless told; X refuses a big segment itself (below).
        form = await request.clone(client_max_size=2 * SEGMENT_LIMIT).post()
        media = form.get("media")
        index = str(form.get("segment_index") or "")
        if not isinstance(media, web.FileField):
            return self._refuse(_invalid("The `media` field is required"))
        if not index.isdigit() or int(index) > 999:
            return self._refuse(_invalid("`segment_index` must be 0 to 999"))
        data = media.file.read()
        if len(data) > SEGMENT_LIMIT:
            return self._refuse(_invalid("A segment is at most 5 MB"))
        upload.segments[int(index)] = data
        if len(upload.data) > upload.total_bytes:
            del upload.segments[int(index)]
            return self._refuse(_invalid("The segments are over `total_bytes`"))
        upload.steps.append(f"append {index}")
        self._changed.set()
        return web.Response(status=204)

    def _finalize(self, upload: Upload) -> web.StreamResponse:
        if upload.finalized:
            return self._refuse(_invalid("The upload is already finalized"))
        if sorted(upload.segments) != list(range(len(upload.segments))) or (
            len(upload.data) != upload.total_bytes
        ):
            return self._refuse(_invalid("The segments do not add up to `total_bytes`"))
        upload.finalized = True
        upload.finalized_at = time.monotonic()
        upload.steps.append("finalize")
        return self._processed(upload, {"size": upload.total_bytes, "expires_after_secs": 86400})

    def _status(self, upload: Upload) -> web.StreamResponse:
        if not upload.finalized:
            return self._refuse(_invalid("The upload is not finalized"))
        upload.status_at.append(time.monotonic())
        upload.steps.append("status")
        return self._processed(upload, {})

    def _processed(self, upload: Upload, extra: dict[str, Any]) -> web.StreamResponse:
        data: dict[str, Any] = {"id": upload.media_id, "media_key": f"3_{upload.media_id}", **extra}
        info = self.processing.popleft() if self.processing else None
        if info is not None:
            data["processing_info"] = info
            upload.state = str(info.get("state"))
        else:
            upload.state = "succeeded"
        if upload.state == "succeeded":
            self.media[upload.media_id] = (upload.category, upload.mime_type, upload.data)
        self._changed.set()
        return web.json_response({"data": data})

    def new_id(self) -> str:
        """A Snowflake: milliseconds since X's epoch in the top bits, rising."""
        made = (int(time.time() * 1000) - SNOWFLAKE_EPOCH_MS) << 22
        self._last_id = max(made, self._last_id + 1)
        return str(self._last_id)

    def _authenticate(self, request: web.BaseRequest) -> dict[str, str] | None:
        try:
            oauth = parse_oauth_header(request.headers.get("Authorization", ""))
        except ValueError:
            return None
        given = oauth.pop("oauth_signature", None)
        oauth.pop("realm", None)
        if (
            given is None
            or oauth.get("oauth_consumer_key") != self.consumer_key
            or oauth.get("oauth_token") != self.access_token
            or oauth.get("oauth_signature_method") != "HMAC-SHA1"
            or oauth.get("oauth_version", "1.0") != "1.0"
        ):
            return None
        stamp = oauth.get("oauth_timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time()) > 300:
            return None
        nonce = oauth.get("oauth_nonce", "")
        if not nonce or nonce in self._nonces:
            return None
        # The URL as the client addressed it: X signs over its public host, we over ours.
        url = f"{self.url}{request.rel_url.path}"
        if request.query_string:
            url += f"?{request.query_string}"
        base = signature_base_string(request.method, url, oauth.items())
        expected = hmac_sha1_signature(base, self.consumer_secret, self.access_token_secret)
        if given != expected:
            return None
        self._nonces.add(nonce)
        return {**oauth, "oauth_signature": given}

    def _refuse(self, problem: Problem) -> web.Response:
        self.refused.append(problem)
        self._changed.set()
        return _problem(problem)


def _problem(problem: Problem) -> web.Response:
    return web.Response(
        status=problem.status,
        text=json.dumps(dict(problem.body)),
        content_type="application/problem+json",
        headers=dict(problem.headers),
    )


def _check(body: object, media: Mapping[str, object]) -> Problem | None:
    if not isinstance(body, dict):
        return _invalid("Request body must be a JSON object")
    text = body.get("text")
    attachments = body.get("attachments")
    if not text and not attachments:
        return _invalid("One of `text` or `attachments` is required")
    if text is not None and (not isinstance(text, str) or len(text) > 10_000):
        return _invalid("`text` must be a string of at most 10000 characters")
    if attachments is not None:
        ok = (
            isinstance(attachments, list)
            and len(attachments) == 1
            and all(
                isinstance(a, dict) and str(a.get("media_id", "")).isdigit() for a in attachments
            )
        )
        if not ok:
            return _invalid("`attachments` takes exactly one {media_id} of an uploaded media")
        for item in attachments:
            if str(item["media_id"]) not in media:
                return _invalid(f"The media id [{item['media_id']}] is not valid")
    unknown = set(body) - {"text", "attachments"}
    if unknown:
        return _invalid(f"[{', '.join(sorted(unknown))}] is not one of [text, attachments]")
    return None
