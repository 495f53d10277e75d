"""``ParleyClient``: an end customer on the ``/client`` namespace (what a widget or SDK does).

    client = ParleyClient(url, widget_key, user={"external_id": "u-42", "hmac": hmac_hex})
    await client.connect()
    sent = await client.send("hello")                  # ack after the server stored it
    reply = await client.wait_for("message")           # {"conversation_id", "message"}
    await client.read(sent["conversation_id"])         # everything so far was read

The client keeps what a reconnect needs: the ``session`` token (so the same contact
comes back, identified or not) and the last ``seq`` seen per conversation. Incoming
messages are delivered once each and in seq order: a gap (or a reconnect) triggers a
``resync`` whose messages are delivered as ``message`` events too. Every outbound
message that reached the app is acknowledged with ``delivered`` automatically.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from typing import Any

from parley_client.connection import Connection
from parley_client.errors import NotConnected, ParleyError

Content = dict[str, Any] | str


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def new_client_message_id() -> str:
    return uuid.uuid4().hex


class ParleyClient(Connection):
    namespace = "/client"

    def __init__(
        self,
        url: str,
        widget_key: str,
        *,
        user: dict[str, Any] | None = None,
        user_token: str | None = None,
        session: str | None = None,
        last_seqs: dict[str, int] | None = None,
        auto_delivered: bool = True,
        auto_resync: bool = True,
        # One receipt per conversation at most this often: a server lets a socket send
        # about 20 events a second, and receipts must not take them all.
        delivered_delay: float = 0.25,
        origin: str | None = None,
        **options: Any,
    ) -> None:
        headers = dict(options.pop("headers", None) or {})
        if origin is not None:
            headers["Origin"] = origin
        super().__init__(url, headers=headers, **options)
        self.widget_key = widget_key
        self.user = user
        self.user_token = user_token
        self.session: str | None = session
        # From the ``session`` greeting. For an anonymous visitor that has not written yet,
        # the id its contact will get with the first message (there is no contact before).
        self.contact_id: str | None = None
        self.conversations: dict[str, dict[str, Any]] = {}
        self.auto_delivered = auto_delivered
        self.auto_resync = auto_resync
        self.delivered_delay = delivered_delay
        self._last_seq: dict[str, int] = dict(last_seqs or {})
        self._greeted = False
        self._sent_ids: deque[str] = deque(maxlen=1000)
        self._resyncing: dict[str, bool] = {}  # conversation -> run again when done
        self._undelivered: dict[str, int] = {}
        self._delivering: asyncio.Task[None] | None = None
        self.sio.on("message", self._on_message, namespace=self.namespace)

    def auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"widget_key": self.widget_key}
        if self.session:
            auth["session"] = self.session
        if self.user is not None:
            auth["user"] = self.user
        if self.user_token is not None:
            auth["user_token"] = self.user_token
        return auth

    def last_seq(self, conversation_id: str) -> int | None:
        """The highest seq of ``conversation_id`` delivered to the app without a gap."""
        return self._last_seq.get(conversation_id)

    @property
    def last_seqs(self) -> dict[str, int]:
        """Persist with ``session`` to resume exactly after an app restart."""
        return dict(self._last_seq)

    # -- requests --------------------------------------------------------------------

    async def send(
        self,
        content: Content,
        conversation_id: str | None = None,
        client_message_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Sends a message; returns it once stored. Without ``conversation_id`` the server
        uses the contact's open in-app conversation or opens one. Resent with the same
        ``client_message_id`` across reconnects, so it is stored at most once."""
        cmid = client_message_id or new_client_message_id()
        self._sent_ids.append(cmid)
        data: dict[str, Any] = {
            "client_message_id": cmid,
            "content": text(content) if isinstance(content, str) else content,
        }
        if conversation_id is not None:
            data["conversation_id"] = conversation_id
        ack = await self.call_retrying("message", data, timeout)
        message: dict[str, Any] = ack["message"]
        if ack.get("conversation"):
            self.conversations[message["conversation_id"]] = ack["conversation"]
        self._observe_own(message)
        return message

    async def typing(self, conversation_id: str, typing: bool = True) -> dict[str, Any]:
        return await self.call("typing", {"conversation_id": conversation_id, "typing": typing})

    async def read(self, conversation_id: str, seq: int | None = None) -> int:
        """Marks everything up to ``seq`` (default: the last seen) read; returns the horizon."""
        seq = self._last_seq.get(conversation_id, 0) if seq is None else seq
        ack = await self.call("read", {"conversation_id": conversation_id, "seq": seq})
        return int(ack["seq"])

    async def delivered(self, conversation_id: str, seq: int) -> int:
        ack = await self.call("delivered", {"conversation_id": conversation_id, "seq": seq})
        return int(ack["seq"])

    async def register_push(self, channel_type: str, token: str) -> dict[str, Any]:
        ack = await self.call("register_push", {"channel_type": channel_type, "token": token})
        identity: dict[str, Any] = ack["identity"]
        return identity

    # -- incoming --------------------------------------------------------------------

    def greeted(self, session: dict[str, Any]) -> None:
        self.session = session.get("session") or self.session
        self.contact_id = session.get("contact_id")
        for conv in session.get("conversations") or []:
            if isinstance(conv, dict):
                self.conversations[conv["id"]] = conv

    def ready(self, session: dict[str, Any]) -> None:
        listed = [c for c in session.get("conversations") or [] if isinstance(c, dict)]
        first = not self._greeted
        self._greeted = True
        if first:
            # What happened before this client started is history, not news: start
            # from each conversation's current end unless told where we were.
            for conv in listed:
                self._last_seq.setdefault(conv["id"], int(conv.get("last_seq") or 0))
        else:
            for conv in listed:  # conversations that appeared while we were away
                self._last_seq.setdefault(conv["id"], 0)
        if self.auto_resync:
            for conversation_id in list(self._last_seq):
                if first and not _behind(self._last_seq[conversation_id], listed, conversation_id):
                    continue
                self._request_resync(conversation_id)
        if self._undelivered:
            self._schedule_delivered()

    def _on_message(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            return
        message = data["message"]
        conversation_id = data.get("conversation_id") or message.get("conversation_id")
        seq = message.get("seq")
        last = self._last_seq.get(conversation_id)
        if not isinstance(seq, int) or last is None or seq == last + 1:
            if isinstance(seq, int):
                self._last_seq[conversation_id] = seq
            self._deliver(conversation_id, message)
        elif seq > last + 1:
            self._request_resync(conversation_id)  # a gap: fetch it, this message included
        # else: already delivered

    def _observe_own(self, message: dict[str, Any]) -> None:
        conversation_id, seq = message["conversation_id"], message["seq"]
        last = self._last_seq.get(conversation_id)
        if last is None or seq == last + 1:
            self._last_seq[conversation_id] = seq
        elif seq > last + 1:
            self._request_resync(conversation_id)

    def _deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        self._publish("message", {"conversation_id": conversation_id, "message": message})
        if self.auto_delivered and message.get("direction") == "outbound":
            seq = int(message["seq"])
            self._undelivered[conversation_id] = max(seq, self._undelivered.get(conversation_id, 0))
            self._schedule_delivered()

    # -- background work ---------------------------------------------------------------

    def _request_resync(self, conversation_id: str) -> None:
        if conversation_id in self._resyncing:
            self._resyncing[conversation_id] = True
            return
        self._resyncing[conversation_id] = False
        self._spawn(self._resync_loop(conversation_id))

    async def _resync_loop(self, conversation_id: str) -> None:
        try:
            while True:
                await self._catch_up(conversation_id)
                if not self._resyncing.get(conversation_id):
                    return
                self._resyncing[conversation_id] = False
        except ParleyError as exc:
            # Down again, or refused: the next session event resyncs anew.
            self._publish("resync_failed", {"conversation_id": conversation_id, "error": str(exc)})
        finally:
            self._resyncing.pop(conversation_id, None)

    async def _catch_up(self, conversation_id: str) -> None:
        while True:
            after = self._last_seq.get(conversation_id, 0)
            ack = await self.call(
                "resync", {"conversation_id": conversation_id, "after_seq": after}
            )
            own = set(self._sent_ids)
            for message in ack["messages"]:
                seq = int(message["seq"])
                if seq <= self._last_seq.get(conversation_id, 0):
                    continue
                self._last_seq[conversation_id] = seq
                if (
                    message.get("client_message_id") not in own
                    or message.get("author", {}).get("type") != "contact"
                ):
                    self._deliver(conversation_id, message)
            covered = int(ack["last_seq"])
            if covered > self._last_seq.get(conversation_id, 0):
                self._last_seq[conversation_id] = covered  # e.g. private notes we never see
            if not ack.get("has_more"):
                return

    def _schedule_delivered(self) -> None:
        if self._delivering is None or self._delivering.done():
            self._delivering = self._spawn(self._flush_delivered())

    async def _flush_delivered(self) -> None:
        await asyncio.sleep(self.delivered_delay)  # one receipt for a burst of messages
        while self._undelivered and self.connected:
            conversation_id, seq = self._undelivered.popitem()
            try:
                await self.call("delivered", {"conversation_id": conversation_id, "seq": seq})
            except NotConnected:
                self._undelivered[conversation_id] = max(
                    seq, self._undelivered.get(conversation_id, 0)
                )
                return
            except ParleyError:
                continue  # e.g. rate limited: delivery receipts are best effort


def _behind(known: int, listed: list[dict[str, Any]], conversation_id: str) -> bool:
    for conv in listed:
        if conv["id"] == conversation_id:
            return int(conv.get("last_seq") or 0) > known
    return True
