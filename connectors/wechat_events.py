"""What a WeChat callback's XML becomes (after decryption, in safe mode).

Messages (``MsgType``), each stored once per ``MsgId``, from the customer's OpenID:

| MsgType | Parley content |
| --- | --- |
| ``text`` (also a tap on a ``msgmenu`` button, with ``bizmsgmenuid``) | text ``Content`` |
| ``image`` | media ``PicUrl`` (``image/jpeg``) |
| ``voice`` | media ``/cgi-bin/media/get?media_id=...`` by ``Format`` (``audio/amr`` ...); ``Recognition`` (WeChat's speech-to-text, when enabled) is the caption |
| ``video``, ``shortvideo`` | media ``/cgi-bin/media/get?media_id=...`` (``video/mp4``) |
| ``location`` | location ``Location_X`` (latitude), ``Location_Y`` (longitude), ``Label`` as the address |
| ``link`` | text: ``Title``, ``Description``, ``Url`` on their own lines |
| ``file`` | text ``File: <Title>`` (WeChat gives no download link for files) |
| ``miniprogrampage`` | text ``Mini program: <Title>`` |
| anything else | ``ValueError``: the callback is kept as ``webhook.unparsed`` for inspection |

Media URLs name the file without an access token (one is needed to download it).

Events (``MsgType`` ``event``), which are not messages a customer wrote:

| Event | becomes |
| --- | --- |
| ``TEMPLATESENDJOBFINISH`` | a ``StatusUpdate`` of the template message ``MsgID``: ``success`` delivered, ``failed:user block`` failed ``user_block``, ``failed: system failed`` failed ``system_failed`` |
| ``CLICK`` (a custom menu button) | an inbound text of its ``EventKey``, like a postback, so agents and bots see the choice; stored once per customer, ``CreateTime`` and key |
| ``subscribe``, ``unsubscribe``, ``SCAN``, ``LOCATION``, ``VIEW``, ``kf_*``, others | nothing: no conversation is opened for a follow, a QR scan, a periodic position report or a link opened from the menu |
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import quote

from connectors.base import Inbound, Parsed, StatusUpdate

API_BASE_URL = "https://api.weixin.qq.com"
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_AUDIO = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg", "silk": "audio/silk"}


def media_url(media_id: str) -> str:
    """Where a customer's voice or video can be fetched (with an access token added)."""
    return f"{API_BASE_URL}/cgi-bin/media/get?media_id={quote(media_id, safe='')}"


def fields(xml: bytes) -> dict[str, str]:
    """The ``<xml>`` element's children by tag (CDATA unwrapped); ``ValueError`` for
    anything else (a DTD is refused: WeChat never sends one)."""
    if _DTD.search(xml):
        raise ValueError("a WeChat callback has no DTD")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    if root.tag != "xml":
        raise ValueError(f"the root element is <{root.tag}>, not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def encrypted_field(xml: bytes) -> str | None:
    """The safe-mode ``Encrypt`` value, or None for a plain (or unreadable) body."""
    try:
        return fields(xml).get("Encrypt") or None
    except ValueError:
        return None


def parse_xml(xml: bytes) -> list[Parsed]:
    f = fields(xml)
    sender, msg_type = f.get("FromUserName"), f.get("MsgType")
    if not sender or not msg_type:
        raise ValueError("not a WeChat message: no FromUserName or MsgType")
    if msg_type == "event":
        return _event(f, sender)
    content = _content(msg_type, f)
    # Every message has a MsgId; should one lack it, WeChat's rule for events applies.
    provider_id = f.get("MsgId") or f.get("MsgID") or f"{sender}:{f.get('CreateTime', '')}"
    return [Inbound(provider_id, sender, content, sent_at=_time(f.get("CreateTime")))]


def _content(msg_type: str, f: dict[str, str]) -> dict[str, object]:
    if msg_type == "text":
        return {"type": "text", "text": _required(f, "Content")}
    if msg_type == "image":
        url = f.get("PicUrl", "")
        if not url.startswith(("http://", "https://")):
            url = media_url(_required(f, "MediaId"))
        return {"type": "media", "url": url, "mime_type": "image/jpeg"}
    if msg_type == "voice":
        audio_format = f.get("Format", "amr").lower()
        media: dict[str, object] = {
            "type": "media",
            "url": media_url(_required(f, "MediaId")),
            "mime_type": _AUDIO.get(audio_format, f"audio/{audio_format}"),
        }
        if f.get("Recognition"):
            media["caption"] = f["Recognition"]
        return media
    if msg_type in ("video", "shortvideo"):
        return {
            "type": "media",
            "url": media_url(_required(f, "MediaId")),
            "mime_type": "video/mp4",
        }
    if msg_type == "location":
        location: dict[str, object] = {
            "type": "location",
            "latitude": float(_required(f, "Location_X")),
            "longitude": float(_required(f, "Location_Y")),
        }
        if f.get("Label"):
            location["address"] = f["Label"]
        return location
    if msg_type == "link":
        lines = [f[k] for k in ("Title", "Description", "Url") if f.get(k)]
        if not lines:
            raise ValueError("a link without a Title, Description or Url")
        return {"type": "text", "text": "\n".join(lines)}
    if msg_type == "file":
        return {"type": "text", "text": f"File: {f.get('Title') or f.get('FileKey') or 'unnamed'}"}
    if msg_type == "miniprogrampage":
        return {"type": "text", "text": f"Mini program: {f.get('Title') or f.get('PagePath', '')}"}
    raise ValueError(f"unknown MsgType {msg_type!r}")


def _event(f: dict[str, str], sender: str) -> list[Parsed]:
    event = f.get("Event", "")
    if event == "TEMPLATESENDJOBFINISH":
        msg_id = _required(f, "MsgID") if "MsgID" in f else _required(f, "MsgId")
        status = f.get("Status", "")
        if status == "success":
            return [StatusUpdate(msg_id, "delivered", at=_time(f.get("CreateTime")))]
        reason = status.partition(":")[2].strip() or status or "failed"
        return [
            StatusUpdate(
                msg_id,
                "failed",
                error_code=reason.replace(" ", "_"),
                error_message=status or None,
                at=_time(f.get("CreateTime")),
            )
        ]
    if event == "CLICK" and f.get("EventKey"):
        key = f["EventKey"]
        return [
            Inbound(
                f"event:{sender}:{f.get('CreateTime', '')}:CLICK:{key}",
                sender,
                {"type": "text", "text": key},
                sent_at=_time(f.get("CreateTime")),
            )
        ]
    return []


def _required(f: dict[str, str], name: str) -> str:
    value = f.get(name)
    if not value:
        raise ValueError(f"no {name}")
    return value


def _time(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value and value.isdigit() else None
