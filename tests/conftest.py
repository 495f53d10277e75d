"""One fixture chain builds the app: database backend -> app -> client -> workspace.

Every test that takes ``db_url`` (directly or through ``app``) runs on SQLite and on
PostgreSQL. PostgreSQL and Redis tests skip when the service is unreachable, unless
``PARLEY_REQUIRE_SERVICES=1`` (CI), which turns a missing service into a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chat.app import create_app, create_asgi
from chat.db.migrate import upgrade
from chat.db.models import Base
from chat.domain.channels import REGISTRY, Registry
from chat.realtime.websocket import LeanWebSocketProtocol
from chat.settings import Settings

REQUIRE = os.environ.get("PARLEY_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "PARLEY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE:
        pytest.fail(f"{message} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(f"{message}; start it or set PARLEY_TEST_* to run these tests")


def need_redis() -> str:
    url = httpx.URL(REDIS_URL.replace("redis://", "http://"))
    need_service("Redis", url.host, url.port or 6379)
    return REDIS_URL


async def _run(coro: Any) -> Any:
    return await coro


def _pg_admin(sql: str) -> None:
    async def go() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(go())


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "parley.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = httpx.URL(PG_ADMIN_URL.replace("postgresql+asyncpg://", "http://"))
    need_service("PostgreSQL", url.host, url.port or 5432)
    name = f"parley_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(db_url)
    yield db_url
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    yield url
    clear_database(url)


def clear_database(url: str) -> None:
    async def go() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    if table.name != "instance_secrets":
                        await conn.execute(table.delete())
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "redis_url": None,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "worker_poll_seconds": 0.05,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.5,
        "webhook_timeout_seconds": 2.0,
        # The tests' webhook receivers listen on 127.0.0.1 (tests/api/test_egress.py
        # checks the default, which refuses them).
        "webhook_allow_private_networks": True,
        # Tests call as fast as they can; tests/api/test_rate_limits.py sets real limits.
        "api_rate_per_second": 100_000.0,
        "api_rate_burst": 100_000,
        "login_attempts_per_minute": 100_000,
        "socket_connects_per_minute": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return test_settings(db_url)


@pytest.fixture
def registry() -> Registry:
    """The channel registry the app is built with (a test may parametrize its own)."""
    return REGISTRY


@pytest.fixture
async def app(settings: Settings, registry: Registry) -> AsyncIterator[Any]:
    application = create_app(settings, registry=registry)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def services(app: Any) -> Any:
    return app.state.services


@pytest.fixture
def runtime(app: Any) -> Any:
    return app.state.runtime


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as c:
        yield c


@pytest.fixture
async def workspace(services: Any) -> dict[str, str]:
    keys: dict[str, str] = await services.workspaces.create("Acme")
    return keys


@pytest.fixture
async def api(app: Any, workspace: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with the workspace's API key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://parley.test",
        headers={"Authorization": f"Bearer {workspace['api_key']}"},
    ) as c:
        yield c


@pytest.fixture
async def other_api(app: Any, services: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second workspace, for isolation tests."""
    keys = await services.workspaces.create("Other")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://parley.test",
        headers={"Authorization": f"Bearer {keys['api_key']}"},
    ) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    port: int
    app: Any
    workspace: dict[str, str]
    http: httpx.AsyncClient

    @property
    def services(self) -> Any:
        return self.app.state.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], Any, int]:
    """uvicorn on 127.0.0.1 in this event loop, so tests can talk to it and to its services."""
    outer, inner = create_asgi(settings)
    port = free_port()
    config = uvicorn.Config(
        outer, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False,
        lifespan="on", ws=LeanWebSocketProtocol,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, inner, port


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server, task, inner, port = await start_server(settings)
    url = f"http://127.0.0.1:{port}"
    keys = await inner.state.services.workspaces.create("Live")
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {keys['api_key']}"}, timeout=10
    ) as http:
        yield LiveServer(url, port, inner, keys, http)
    server.should_exit = True
    await task


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
