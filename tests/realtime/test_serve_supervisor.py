"""The supervisor behind ``parley serve --workers N``: its exit status when a process
cannot start, and a process that does not stop is killed after a bounded wait. Each
case runs the supervisor in a process of its own (it installs signal handlers)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chat import serve_processes

ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = """
import socket, sys
from chat import serve_processes
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
sys.exit(serve_processes.run(
    {"host": "127.0.0.1", "port": sock.getsockname()[1], "log_level": "info"}, sock, 2,
    app=sys.argv[1], stop_seconds=float(sys.argv[2]),
))
"""


def broken_app() -> Any:
    """Its startup fails, as Parley's does when its database is unreachable."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": "this app cannot start"})

    return app


def raising_worker_app() -> Any:
    """Parley's own factory, failing inside (as a bad setting would make it)."""
    import chat.app

    def fail(_settings: Any) -> Any:
        raise RuntimeError("no app today")

    chat.app.create_asgi = fail  # type: ignore[assignment]
    return serve_processes.worker_app()


def stubborn_app() -> Any:
    """Starts, then never finishes its shutdown."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await asyncio.sleep(3600)

    return app


def supervise(app: str, stop_seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, f"tests.realtime.test_serve_supervisor:{app}", str(stop_seconds)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_a_process_that_cannot_start_makes_the_exit_status_1() -> None:
    proc = supervise("broken_app", 30)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "this app cannot start" in out


def test_a_worker_app_that_raises_stops_the_processes_instead_of_restarting_them() -> None:
    proc = supervise("raising_worker_app", 30)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert out.count("this process cannot start") == 2, out  # once per process, no restarts


def test_a_process_that_does_not_stop_is_killed_after_the_wait() -> None:
    proc = supervise("stubborn_app", 1)
    assert proc.stdout is not None
    started = 0
    deadline = time.monotonic() + 60
    while started < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        started += "Application startup complete" in line
    assert started == 2, "both processes started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "did not stop within 1 s; killing it" in out
