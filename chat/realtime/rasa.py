"""``/rasa``: a drop-in for Rasa's socketio channel, so widgets written for Rasa connect
unchanged (botfront's rasa-webchat, the Rasa docs' examples, hand-written ones).

Rasa's protocol, as ``rasa.core.channels.socketio`` speaks it:

- ``session_request`` ``{"session_id"}`` -> ``session_confirm`` with the session id
  itself (a string; a new one when the widget sent none);
- ``user_uttered`` ``{"message", "session_id"?, "customData"?}`` -> the replies come as
  ``bot_uttered``: ``{"text"}``, ``{"text", "quick_replies": [...]}`` or
  ``{"attachment": {...}}``.

Rasa widgets send no credentials, so the workspace comes from the widget key in the
Socket.IO URL's query (``/rasa?widget_key=wk_...``, which every socket.io client passes
on) or in the connect ``auth``; the in-app channel's ``allowed_origins`` apply as for
``/client``. A session id names a contact (``chat.services.visitors.rasa_session``) and
its latest in-app conversation, so agents, bots and history work as for ``/client``; a
user message without a session id speaks for the socket's session, or for a session
named by the socket id (Rasa without ``session_persistence``). The sockets of a session
share a room, so replies reach them from any process. A session that never writes is
no contact (the first ``user_uttered`` makes it one), so widgets that only open the
page fill neither the contacts nor the inbox.
"""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from pydantic import Field, StrictStr, ValidationError

from chat.domain.enums import AuthorType, Direction
from chat.realtime import rooms
from chat.realtime.namespace import Ack, GuardedNamespace, Peer, handles, refuse
from chat.realtime.protocol import Payload, ok
from chat.services.conversations import NewMessage
from chat.services.presence import CONTACT, Person
from chat.services.visitors import RasaSession

SESSION_CONFIRM = "session_confirm"
SessionId = Field(default=None, max_length=200)


class RasaAuth(Payload):
    widget_key: StrictStr = Field(min_length=1, max_length=200)


class SessionRequest(Payload):
    session_id: StrictStr | None = SessionId  # empty or absent: the server picks one


class UserUttered(Payload):
    message: StrictStr = Field(min_length=1, max_length=10_000)
    session_id: StrictStr | None = SessionId
    # ``customData`` / ``metadata`` are accepted and not stored.


@dataclass(slots=True)
class RasaPeer(Peer):
    channel_id: str = ""
    session: RasaSession | None = None  # the session this socket speaks for and hears
    # The conversation each session id of this socket posts to (once it has one).
    conversations: dict[str, str] = field(default_factory=dict)
    switching: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Events inside or queued on ``switching``: while any is, later events queue too, so
    # none overtakes an earlier one that is still waiting for the lock.
    queued: int = 0


class RasaNamespace(GuardedNamespace):
    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> Peer:
        services = self.holder.get()
        try:
            given = RasaAuth.model_validate({"widget_key": _widget_key(environ, auth)})
        except ValidationError as exc:
            raise refuse(
                "invalid_auth", "name the widget with ?widget_key=... in the socket URL"
            ) from exc
        widget = await services.visitors.widget(given.widget_key, environ.get("HTTP_ORIGIN"))
        return RasaPeer(**self.new_peer(sid, widget.workspace_id), channel_id=widget.channel_id)

    async def leave(self, peer: Peer) -> None:
        assert isinstance(peer, RasaPeer)
        if peer.session is not None and peer.session.known:
            await self.holder.get().presence.leave(_person(peer, peer.session), peer.sid)

    @handles("session_request", SessionRequest)
    async def on_session_request(self, peer: RasaPeer, p: SessionRequest) -> Ack:
        session = await self._session(peer, p.session_id or uuid.uuid4().hex, create=False)
        await self.emit(SESSION_CONFIRM, session.session_id, to=peer.sid)
        return ok(session_id=session.session_id)

    @handles("user_uttered", UserUttered)
    async def on_user_uttered(self, peer: RasaPeer, p: UserUttered) -> Ack:
        session = await self._session(peer, p.session_id or None, create=True)
        # Nothing awaits between a known session and the queued post, so one socket's
        # messages are stored in the order it sent them.
        posted = await self.holder.get().conversations.post_message(
            NewMessage(
                workspace_id=peer.workspace_id,
                content={"type": "text", "text": p.message},
                direction=Direction.INBOUND,
                author_type=AuthorType.CONTACT.value,
                author_id=session.contact_id,
                conversation_id=peer.conversations.get(session.session_id),
                contact_id=session.contact_id,
                channel_id=peer.channel_id,
                origin=peer.sid,
            )
        )
        conversation_id = posted.conversation["id"]
        peer.conversations[session.session_id] = conversation_id
        return ok(
            session_id=session.session_id,
            conversation_id=conversation_id,
            seq=posted.message["seq"],
        )

    async def _session(
        self, peer: RasaPeer, session_id: str | None, *, create: bool
    ) -> RasaSession:
        """The socket's session, switched to ``session_id`` if that names another one
        (None: the current session, else one named by the socket id, as Rasa does), and
        made a contact if ``create``. The socket is in the room of the session's contact
        (or of the contact it will be), and online as that contact once it is one."""
        current = peer.session
        if peer.queued == 0 and _fits(current, session_id, create):
            assert current is not None
            return current  # the common case: no await
        peer.queued += 1
        try:
            return await self._switch(peer, session_id, create)
        finally:
            peer.queued -= 1

    async def _switch(self, peer: RasaPeer, session_id: str | None, create: bool) -> RasaSession:
        async with peer.switching:  # later events of the socket wait for the switch
            before = peer.session
            if _fits(before, session_id, create):
                assert before is not None
                return before
            session_id = session_id or (before.session_id if before else peer.sid)
            services = self.holder.get()
            session = await services.visitors.rasa_session(
                peer.workspace_id, session_id, create=create
            )
            if session.conversation_id:
                peer.conversations.setdefault(session_id, session.conversation_id)
            same = before is not None and before.contact_id == session.contact_id
            if not same:
                if before is not None:
                    await self.leave_room(peer.sid, rooms.rasa_session(before.contact_id))
                    if before.known:
                        await services.presence.leave(_person(peer, before), peer.sid)
                await self.enter_room(peer.sid, rooms.rasa_session(session.contact_id))
            if session.known and not (same and before is not None and before.known):
                await services.presence.join(_person(peer, session), peer.sid)
                if peer.sid not in self.peers:  # it disconnected meanwhile
                    await services.presence.leave(_person(peer, session), peer.sid)
            peer.session = session  # last: the fast path above must not overtake
            return session


def _fits(current: RasaSession | None, session_id: str | None, create: bool) -> bool:
    """Whether the socket's current session serves an event naming ``session_id``."""
    return (
        current is not None
        and session_id in (None, current.session_id)
        and (current.known or not create)
    )


def _person(peer: Peer, session: RasaSession) -> Person:
    return Person(peer.workspace_id, CONTACT, session.contact_id)


def _widget_key(environ: Mapping[str, Any], auth: Any) -> Any:
    """From ``auth`` if given, else from the query of the Socket.IO URL."""
    if isinstance(auth, Mapping) and "widget_key" in auth:
        return auth["widget_key"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    keys = query.get("widget_key") or [None]
    return keys[0]


# -- replies in Rasa's shape -------------------------------------------------------


def bot_messages(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A message as Rasa's ``bot_uttered`` payloads, in the order Rasa sends them
    (text before its attachment). Widgets such as rasa-webchat tell the kinds apart
    by their keys, so a payload carries nothing else."""
    content = message.get("content") or {}
    kind = content.get("type")
    if kind == "text":
        return [{"text": content["text"]}]
    if kind == "buttons":
        return [
            {
                "text": content["text"],
                "quick_replies": [
                    {"content_type": "text", "title": b["title"], "payload": b["id"]}
                    for b in content["buttons"]
                ],
            }
        ]
    if kind == "media":
        caption = content.get("caption")
        return ([{"text": caption}] if caption else []) + [{"attachment": _attachment(content)}]
    if kind == "location":
        return [{"text": _location_text(content)}]
    if kind == "template":
        return [{"text": _template_text(content)}]
    return []


def _attachment(media: Mapping[str, Any]) -> dict[str, Any]:
    url = str(media["url"])
    mime = media.get("mime_type") or mimetypes.guess_type(url.split("?", 1)[0])[0] or ""
    if mime.startswith("image/"):
        return {"type": "image", "payload": {"src": url}}
    if mime.startswith("video/"):
        return {"type": "video", "payload": {"src": url}}
    payload = {"src": url, "url": url}
    if media.get("filename"):
        payload["name"] = media["filename"]
    return {"type": "file", "payload": payload}


def _location_text(place: Mapping[str, Any]) -> str:
    lat, lon = place["latitude"], place["longitude"]
    label = ", ".join(str(place[k]) for k in ("name", "address") if place.get(k))
    link = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"
    return f"{label}\n{link}" if label else link


def _template_text(template: Mapping[str, Any]) -> str:
    params = template.get("parameters")
    if isinstance(params, Mapping):
        for key in ("text", "body"):
            if isinstance(params.get(key), str) and params[key]:
                return str(params[key])
        values = [str(v) for v in params.values() if isinstance(v, (str, int, float))]
    elif isinstance(params, list):
        values = [str(v) for v in params if isinstance(v, (str, int, float))]
    else:
        values = []
    name = str(template.get("name", "message"))
    return f"{name}: {', '.join(values)}" if values else name
