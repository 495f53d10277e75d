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
from typing import Any

from sqlalchemy.engine import make_url

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

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    tune_gc()
    return create_asgi(settings)[0]


def run(config_options: dict[str, Any], sock: Any, workers: int) -> None:
    """Serves ``sock`` with ``workers`` processes until stopped."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "chat.serve_processes:worker_app", factory=True, workers=workers, **config_options
    )
    Multiprocess(config, sockets=[sock]).run()
