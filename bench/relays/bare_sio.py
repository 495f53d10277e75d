"""Baseline python-socketio relay for bench/realtime.py: Parley's relay logic, no storage.

Usage: python bench/relays/bare_sio.py [port]   (or PORT=...). Binds 127.0.0.1 only.
Runs python-socketio's AsyncServer (ASGI) under uvicorn with uvloop + httptools and
permessage-deflate off. The websocket implementation is uvicorn's ``auto`` choice, the
one ``parley serve`` gets (``websockets-sansio`` with uvicorn 0.54); set
``BARE_SIO_WS=websockets`` (legacy) or ``wsproto`` to compare.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import socketio
import uvicorn

sio = socketio.AsyncServer(
    async_mode="asgi",
    transports=["websocket"],
    cors_allowed_origins=[],
    logger=False,
    engineio_logger=False,
)
app = socketio.ASGIApp(sio)

# sid -> room, so the message handler needs no lookup through the manager.
_rooms: dict[str, str] = {}


@sio.on("connect", namespace="/client")
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    room = "lobby"
    if isinstance(auth, dict) and isinstance(auth.get("room"), str) and auth["room"]:
        room = auth["room"]
    _rooms[sid] = room
    await sio.enter_room(sid, room, namespace="/client")


@sio.on("disconnect", namespace="/client")
async def disconnect(sid: str, *args: Any) -> None:
    _rooms.pop(sid, None)


@sio.on("message", namespace="/client")
async def message(sid: str, payload: Any) -> dict[str, Any]:
    room = _rooms.get(sid, "lobby")
    await sio.emit(
        "message",
        {"conversation_id": room, "message": payload},
        room=room,
        skip_sid=sid,
        namespace="/client",
    )
    return {"ok": True, "message": payload}


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8002"))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws=os.environ.get("BARE_SIO_WS", "auto"),
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
