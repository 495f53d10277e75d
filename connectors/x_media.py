"""Media for X direct messages: fetch Parley's file, upload it in chunks, attach its id.

A DM takes media only as the id of an upload made in the sender's user context. The
upload is X's chunked one (API v2), for images, GIFs and videos alike:

| step | request | answer |
| --- | --- | --- |
| INIT | ``POST /2/media/upload/initialize`` JSON ``{"media_type", "total_bytes", "media_category"}`` | ``{"data": {"id", "media_key", "expires_after_secs"}}`` |
| APPEND | ``POST /2/media/upload/{id}/append``, multipart ``segment_index`` and ``media`` (a segment of at most 5 MB) | 2xx |
| FINALIZE | ``POST /2/media/upload/{id}/finalize`` | ``{"data": {"id", "size", "processing_info"?}}`` |
| STATUS | ``GET /2/media/upload?command=STATUS&media_id={id}``, while ``processing_info.state`` is ``pending`` or ``in_progress``, each ``check_after_secs`` later | ``{"data": {"processing_info": {"state", "check_after_secs", "progress_percent"}}}`` |

``media_category`` is ``dm_image``, ``dm_gif`` or ``dm_video`` (``category_for``). The file
is fetched from the content's ``url`` with the connector's HTTP client, at most
``MAX_BYTES`` of it per category (checked on ``Content-Length`` and while reading, so a
too-large file is never held whole): more is ``GiveUp`` ``media_too_large``; a 4xx is
``GiveUp`` ``media_unreachable``; a 5xx, a timeout or a refused connection may pass and is
``RetryLater`` (``media_unreachable`` / ``media_timeout``). Processing that X reports
``failed`` is ``GiveUp`` ``media_processing_failed`` with X's own error.

The whole send, upload and processing included, runs under the delivery deadline
(``delivery_timeout_seconds``): a video X processes for longer is retried, and the retry
uploads it again (an upload id is not kept between attempts).
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from connectors.errors import GiveUp, RetryLater

MB = 1024 * 1024
SEGMENT_BYTES = 5 * MB  # X's largest APPEND segment
# What X takes in a DM per category, and what Parley holds in memory for one send.
MAX_BYTES = {"dm_image": 5 * MB, "dm_gif": 15 * MB, "dm_video": 64 * MB}
PENDING = ("pending", "in_progress")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

Sleep = Callable[[float], Awaitable[None]]


class SignedApi(Protocol):
    """The connector's signed access to X: one request in user context, its JSON answer
    (``{}`` for an empty body); a failure raised as ``RetryLater`` / ``GiveUp``."""

    base: str

    async def call(self, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    mime_type: str
    category: str


def category_for(content: Mapping[str, Any]) -> str | None:
    """``dm_image`` / ``dm_gif`` / ``dm_video`` by the MIME type, else the URL's suffix;
    None for what a DM cannot carry as media (documents, audio)."""
    mime = str(content.get("mime_type") or "").lower()
    path = urlsplit(str(content.get("url") or "")).path.lower()
    if mime == "image/gif" or (not mime and path.endswith(".gif")):
        return "dm_gif"
    if mime.startswith("image/") or (not mime and path.endswith(_IMAGE_SUFFIXES)):
        return "dm_image"
    if mime.startswith("video/") or (not mime and path.endswith(_VIDEO_SUFFIXES)):
        return "dm_video"
    return None


async def fetch(http: httpx.AsyncClient, content: Mapping[str, Any], category: str) -> MediaFile:
    """The file at ``content["url"]``, read no further than its category allows."""
    url = str(content["url"])
    limit = MAX_BYTES[category]
    too_large = GiveUp(
        f"X takes {category} media of at most {limit // MB} MB in a DM", code="media_too_large"
    )
    try:
        async with http.stream("GET", url, follow_redirects=True) as got:
            if got.status_code >= 500:
                raise RetryLater(f"HTTP {got.status_code} fetching the media", code="media_unreachable")
            if got.status_code != 200:
                raise GiveUp(f"HTTP {got.status_code} fetching the media", code="media_unreachable")
            declared = got.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            chunks: list[bytes] = []
            size = 0
            async for chunk in got.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
            served = got.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.TimeoutException as exc:
        raise RetryLater("timeout fetching the media", code="media_timeout") from exc
    except httpx.TransportError as exc:
        raise RetryLater(f"fetching the media: {exc}", code="media_unreachable") from exc
    if size == 0:
        raise GiveUp("the media file is empty", code="media_unreachable")
    mime = str(content.get("mime_type") or "") or _usable(served) or _guess(url, category)
    return MediaFile(b"".join(chunks), mime, category)


async def upload(api: SignedApi, media: MediaFile, sleep: Sleep = asyncio.sleep) -> str:
    """INIT, APPEND each segment, FINALIZE, then STATUS until processed: the media id."""
    init = await api.call(
        "POST",
        f"{api.base}/2/media/upload/initialize",
        json={
            "media_type": media.mime_type,
            "total_bytes": len(media.data),
            "media_category": media.category,
        },
    )
    media_id = str(_data(init).get("id") or "")
    if not media_id.isdigit():
        raise RetryLater(f"INIT answered no media id: {init!r}"[:300], code="bad_answer")
    for index, start in enumerate(range(0, len(media.data), SEGMENT_BYTES)):
        await api.call(
            "POST",
            f"{api.base}/2/media/upload/{media_id}/append",
            data={"segment_index": str(index)},
            files={"media": ("media", media.data[start : start + SEGMENT_BYTES], "application/octet-stream")},
        )
    final = await api.call("POST", f"{api.base}/2/media/upload/{media_id}/finalize")
    info = _processing(final)
    while info.get("state") in PENDING:
        await sleep(_after(info))
        status = await api.call(
            "GET", f"{api.base}/2/media/upload?command=STATUS&media_id={media_id}"
        )
        info = _processing(status)
    state = info.get("state")
    if state == "failed":
        found = info.get("error")
        error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        detail = error.get("message") or error.get("name") or "X could not process the media"
        raise GiveUp(f"X could not process the media: {detail}", code="media_processing_failed")
    if state not in (None, "succeeded"):
        raise RetryLater(f"X's media processing is {state!r}", code="bad_answer")
    return media_id


def _data(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    data = answer.get("data")
    return data if isinstance(data, Mapping) else {}


def _processing(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    info = _data(answer).get("processing_info")
    return info if isinstance(info, Mapping) else {}


def _after(info: Mapping[str, Any]) -> float:
    try:
        return max(0.0, float(info["check_after_secs"]))
    except (KeyError, TypeError, ValueError):
        return 1.0  # X always says; one second if it does not


def _usable(mime: str) -> str:
    return mime if mime.startswith(("image/", "video/")) else ""


def _guess(url: str, category: str) -> str:
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed:
        return guessed
    return {"dm_gif": "image/gif", "dm_video": "video/mp4"}.get(category, "image/jpeg")
