"""chat/realtime/engine.py (with sio.py, dispatch.py and broadcast.py) overrides internals of python-engineio and python-socketio, so
both are pinned to exact versions. These tests fail when the installed versions differ from
the pins, or when the internals engine.py relies on change: then re-read engine.py against
the new versions (and update the recorded fingerprints) before moving a pin."""

from __future__ import annotations

import hashlib
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import engineio
import pytest
import socketio
from engineio import packet
from engineio.async_drivers import asgi
from engineio.async_socket import AsyncSocket
from socketio.async_pubsub_manager import AsyncPubSubManager

from chat.realtime.broadcast import FrameEmit
from chat.realtime.dispatch import ack_frame, decode_event
from chat.realtime.engine import DRAINED, LeanEngineServer, LeanSocket
from chat.realtime.eviction import EvictingRedisManager
from chat.realtime.sio import LeanSocketIOServer
from chat.realtime.wire import JsonPacket

PINNED = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}

# The upstream methods engine.py replaces with its own copies: any change to them must be
# looked at (sha256 of their source, first 16 hex digits, at the pinned versions).
REPLACED = {
    "engineio.AsyncServer._handle_connect": (engineio.AsyncServer._handle_connect, "5bd7edc1d1ae115a"),
    "AsyncSocket._websocket_handler": (AsyncSocket._websocket_handler, "27f120df4d717a24"),
    # LeanSocket.schedule_ping: a timer instead of the task running _send_ping.
    "AsyncSocket.schedule_ping": (AsyncSocket.schedule_ping, "fe316639159cd70d"),
    "AsyncSocket._send_ping": (AsyncSocket._send_ping, "67db82a704ea49d0"),
    # dispatch.py: the lean EVENT path does what these do for Parley's namespaces.
    "socketio.AsyncServer._handle_event": (socketio.AsyncServer._handle_event, "65178105ef8b593d"),
    "socketio.AsyncServer._handle_event_internal": (
        socketio.AsyncServer._handle_event_internal, "472e8b723a12d507"
    ),
    # broadcast.py: FrameEmit.emit is AsyncManager.emit without a task per recipient.
    "socketio.AsyncManager.emit": (socketio.AsyncManager.emit, "01ccd5b82b4f955e"),
}


def params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_pyproject_pins_the_installed_versions(repo_root: Path) -> None:
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.fullmatch(r"([\w-]+)(?:\[[\w,-]+\])?==([\w.]+)", d).groups() for d in deps if "==" in d)  # type: ignore[union-attr]
    assert {name: pins.get(name) for name in PINNED} == PINNED
    assert {name: version(name) for name in PINNED} == PINNED


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_upstream_methods_engine_replaces_are_unchanged(name: str) -> None:
    fn, fingerprint = REPLACED[name]
    assert hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16] == fingerprint, (
        f"{name} changed upstream: compare it with chat/realtime/engine.py"
    )


def test_the_signatures_engine_overrides_and_calls_are_as_assumed() -> None:
    assert params(AsyncSocket.__init__) == ["self", "server", "sid"]
    assert params(AsyncSocket.send) == ["self", "pkt"]
    assert params(AsyncSocket.close) == ["self", "wait", "abort", "reason"]
    assert params(AsyncSocket._websocket_handler) == ["self", "ws"]
    assert params(AsyncSocket.handle_get_request) == ["self", "environ"]
    connect = inspect.signature(engineio.AsyncServer._handle_connect)
    assert list(connect.parameters) == ["self", "environ", "transport", "jsonp_index"]
    assert connect.parameters["jsonp_index"].default is None
    for name in ("_upgrades", "_unauthorized", "_ok", "_bad_request", "_service_task",
                 "generate_id", "start_background_task"):
        assert callable(getattr(engineio.AsyncServer, name)), name
    for name in ("check_ping_timeout", "schedule_ping", "poll"):
        assert callable(getattr(AsyncSocket, name)), name
    assert params(socketio.AsyncServer._engineio_server_class) == ["self"]
    assert issubclass(engineio.exceptions.QueueEmpty, Exception)


def test_upstream_still_calls_the_overridden_methods() -> None:
    """engine.py's overrides only work while upstream calls them by these names."""
    assert "self._handle_connect(environ, transport" in inspect.getsource(engineio.AsyncServer.handle_request)
    assert "self._websocket_handler" in inspect.getsource(AsyncSocket._upgrade_websocket)
    assert "self._engineio_server_class()(" in inspect.getsource(socketio.base_server.BaseServer.__init__)


async def test_the_lean_server_and_socket_have_what_engine_uses() -> None:
    sio = LeanSocketIOServer(async_mode="asgi")
    eio = sio.eio
    assert isinstance(eio, LeanEngineServer)
    for name in ("start_service_task", "sockets", "ping_timeout", "ping_interval",
                 "ping_interval_grace_period", "max_http_buffer_size", "async_handlers"):
        assert hasattr(eio, name), name
    assert eio.reason.TRANSPORT_CLOSE and eio.reason.CLIENT_DISCONNECT
    # The reader hands messages over as _trigger_event("message", sid, data, run_async=...).
    got: list[tuple[str, str]] = []

    async def on_message(sid: str, data: str) -> str:
        got.append((sid, data))
        return "handled"

    eio.on("message", on_message)
    assert await eio._trigger_event("message", "sid1", "2[]", run_async=False) == "handled"
    assert got == [("sid1", "2[]")]
    sock = LeanSocket(eio, "sid1")
    assert (sock.connected, sock.upgraded, sock.upgrading, sock.closed) == (False, False, False, False)
    await sock.queue.put(packet.Packet(packet.NOOP))
    assert not sock.queue.empty()
    assert sock.queue.get_nowait().packet_type == packet.NOOP
    sock.queue.task_done()
    # Engine.IO v4 text framing: the type digit, then the data.
    assert packet.Packet(packet.NOOP).encode() == "6"
    assert packet.Packet(packet.MESSAGE, "2[\"x\"]").encode() == '42["x"]'
    assert packet.Packet(packet.OPEN, {"sid": "s"}).encode().startswith('0{"sid"')


def test_the_asgi_websocket_wrapper_has_what_the_reader_uses() -> None:
    ws = asgi.WebSocket(None, None)
    assert hasattr(ws, "asgi_receive")
    for name in ("wait", "send", "close"):
        assert inspect.iscoroutinefunction(getattr(asgi.WebSocket, name)), name


def test_upstream_leaves_the_polling_queue_alone_once_upgraded() -> None:
    """engine.py swaps an upgraded socket's asyncio.Queue for the shared DRAINED stub."""
    get = inspect.getsource(AsyncSocket.handle_get_request)
    assert get.index("if self.upgrading or self.upgraded") < get.index("self.poll()")
    assert "self.queue.join()" in inspect.getsource(AsyncSocket.close)
    assert DRAINED.empty() and DRAINED.qsize() == 0
    with pytest.raises(RuntimeError):
        DRAINED.put_nowait(packet.Packet(packet.NOOP))


def test_the_frame_emit_sits_under_the_pubsub_manager_and_reads_its_rooms() -> None:
    mro = EvictingRedisManager.__mro__
    assert mro.index(AsyncPubSubManager) < mro.index(FrameEmit) < mro.index(socketio.AsyncManager)
    assert "await super().emit(" in inspect.getsource(AsyncPubSubManager._handle_emit)
    manager = FrameEmit()
    manager.rooms = {}
    manager.basic_enter_room("sid1", "/client", "room", eio_sid="eio1")
    assert dict(manager.rooms["/client"]["room"]._fwdm) == {"sid1": "eio1"}


@pytest.mark.parametrize(
    "encoded",
    ['2["message",{"a":1}]', '2/client,["typing"]', '2/client,17["message",{"x":[1,2]}]',
     '2/agent?x=1,3["a","b",{"c":null}]', '212["x"]'],
)
def test_the_lean_event_decoder_reads_what_python_socketio_reads(encoded: str) -> None:
    pkt = JsonPacket(encoded_packet=encoded)
    assert decode_event(encoded) == (pkt.namespace or "/", pkt.id, pkt.data[0], pkt.data[1:])


@pytest.mark.parametrize("bad", ['2/client,{"a":1}', "2/client,5", '2[]', "2/client,5[", '2"x"'])
def test_the_lean_event_decoder_refuses_what_is_no_event(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_event(bad)


@pytest.mark.parametrize(
    ("namespace", "result"),
    [("/client", {"ok": True, "n": [1, "é"]}), ("/", None), ("/agent", ("a", 2))],
)
def test_the_lean_ack_frame_is_what_python_socketio_sends(namespace: str, result: Any) -> None:
    data = [] if result is None else list(result) if isinstance(result, tuple) else [result]
    expected = JsonPacket(socketio.packet.ACK, namespace=namespace, id=42, data=data).encode()
    assert ack_frame(namespace, 42, result) == packet.Packet(packet.MESSAGE, expected).encode()
