"""``parley serve --workers N``: N processes serving one listening socket.

``parley serve`` binds the port once and hands the socket to uvicorn's process
supervisor, which spawns N processes (each builds its own app, event loop, database pool
and Redis connections from the same settings), replaces one that dies, and stops them
all on Ctrl+C or SIGTERM. The kernel hands each new connection to one of them. Every
process is a whole Parley server (API, Socket.IO, delivery worker, scheduler), as when
several ``parley serve`` run on different ports: they share PostgreSQL, and through Redis
the sockets' fan-out, presence and rate limits. So N > 1 needs both.

An Engine.IO session lives in the process that opened it. A websocket connection stays
on its process; a long-polling client makes a new HTTP request for every exchange, and
one landing on another process is refused (the client reconnects, and may be refused
again). Several workers on one port are for websocket clients (Parley's Python SDK and
the Android stub connect with websocket only); browsers with socket.io's default
transports (polling first, then the upgrade) need ``parley serve`` processes on ports
of their own behind a balancer with sticky sessions (README.md, Configuration).
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from chat.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve with ``settings`` (None: they can)."""
    if workers <= 1:
        return None
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        return (
            f"--workers {workers} needs PostgreSQL: SQLite serves one process "
            "(set PARLEY_DATABASE_URL to a postgresql+asyncpg:// URL)"
        )
    if not settings.redis_url:
        return (
            f"--workers {workers} needs PARLEY_REDIS_URL: the processes share socket "
            "fan-out and presence through Redis"
        )
    return None


def tune_gc() -> None:
    """Long-lived servers hold many objects (sockets, pooled statements); the default
    thresholds made full collections stall the loop for tens of milliseconds under load."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory, called in the process)."""
    from chat.app import create_asgi

    try:
        settings = Settings()
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
        tune_gc()
        return create_asgi(settings)[0]
    except Exception:
        # uvicorn restarts a process that crashes, without end; one that fails to start
        # stops them all (the same settings would fail every time).
        logging.getLogger(__name__).exception("this process cannot start")
        sys.exit(STARTUP_FAILURE)


# How long a stopping process may take over its shutdown (open sockets closed, the
# delivery worker's current jobs finished) before it is killed.
STOP_SECONDS = 30.0


def run(
    config_options: dict[str, Any], sock: Any, workers: int,
    app: str = "chat.serve_processes:worker_app", stop_seconds: float = STOP_SECONDS,
) -> int:
    """Serves ``sock`` with ``workers`` processes of ``app`` (a factory) until stopped;
    the exit status: 1 when a process failed to start (bad settings, database
    unreachable: every restart would fail the same way), else 0."""
    config = uvicorn.Config(app, factory=True, workers=workers, **config_options)
    supervisor = _Supervisor(config, sockets=[sock])
    supervisor.stop_seconds = stop_seconds
    supervisor.run()
    return 1 if supervisor.startup_failed else 0


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, which returns normally when a process fails to start and
    waits without end for a process that does not stop."""

    startup_failed = False
    stop_seconds = STOP_SECONDS

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        if any(p.exitcode == STARTUP_FAILURE for p in self.processes):
            self.startup_failed = True

    def join_all(self) -> None:
        deadline = time.monotonic() + self.stop_seconds
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.exitcode is None:
                logging.getLogger(__name__).warning(
                    "process %s did not stop within %.0f s; killing it", process.pid, self.stop_seconds
                )
                process.process.kill()
                process.process.join()
