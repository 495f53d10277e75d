"""A Socket.IO v5 client over Engine.IO v4 written out by hand, for tests that need to
see or send exact frames (order, malformed packets, stalled readers)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

from parley_client import user_hmac
from tests.conftest import LiveServer
from tests.realtime.conftest import TIMEOUT

CLIENT = "/client"
AGENT = "/agent"


def auth_for(live: LiveServer) -> dict[str, Any]:
    external_id = f"raw-{uuid.uuid4().hex[:8]}"
    return {
        "widget_key": live.workspace["widget_key"],
        "user": {
            "external_id": external_id,
            "hmac": user_hmac(live.workspace["identity_secret"], external_id),
        },
    }


class RawClient:
    """A Socket.IO client written out by hand: one websocket, one namespace."""

    def __init__(self, ws: Any, namespace: str = CLIENT) -> None:
        self.ws = ws
        self.ns = namespace
        self.acks: dict[int, Any] = {}
        self.events: list[tuple[str, Any]] = []
        self.next_id = 0
        self.answer_pings = True

    @classmethod
    async def open(
        cls, live: LiveServer, *, upgrade_sid: str | None = None, namespace: str = CLIENT
    ) -> RawClient:
        query = "EIO=4&transport=websocket" + (f"&sid={upgrade_sid}" if upgrade_sid else "")
        ws = await websockets.connect(f"ws://127.0.0.1:{live.port}/socket.io/?{query}")
        return cls(ws, namespace)

    async def handshake(self, live: LiveServer, auth: dict[str, Any] | None = None) -> None:
        """Opens the namespace (as a new identified customer unless ``auth`` says else)
        and waits for the session greeting, checking the CONNECT answer comes first."""
        opened = await self.frame()
        assert opened.startswith("0{") and "sid" in json.loads(opened[1:])
        await self.ws.send(f"40{self.ns},{json.dumps(auth or auth_for(live))}")
        answer = await self.frame()
        ns = self.ns
        assert answer.startswith(f"40{ns},") and "sid" in json.loads(answer[len(ns) + 3 :])
        await self.until(lambda: any(name == "session" for name, _ in self.events))

    async def frame(self) -> str:
        data = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(data, str)
        return data

    def take(self, data: str) -> None:
        """Files one incoming frame."""
        if data == "2":
            if self.answer_pings:
                asyncio.get_running_loop().create_task(self.ws.send("3"))
            return
        prefix = f"43{self.ns},"  # an ack
        if data.startswith(prefix):
            rest = data[len(prefix) :]
            digits = len(rest) - len(rest.lstrip("0123456789"))
            self.acks[int(rest[:digits])] = json.loads(rest[digits:])[0]
        elif data.startswith(f"42{self.ns},"):
            name, *args = json.loads(data[len(f"42{self.ns},") :])
            self.events.append((name, args[0] if args else None))

    async def until(self, done: Any) -> None:
        while not done():
            self.take(await self.frame())

    async def emit(self, event: str, payload: Any) -> int:
        ack_id = self.next_id
        self.next_id += 1
        await self.ws.send(f"42{self.ns},{ack_id}{json.dumps([event, payload])}")
        return ack_id

    async def call(self, event: str, payload: Any) -> Any:
        ack_id = await self.emit(event, payload)
        await self.until(lambda: ack_id in self.acks)
        return self.acks[ack_id]
