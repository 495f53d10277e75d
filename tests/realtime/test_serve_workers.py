"""``parley serve --workers N``: N processes on one port, sharing PostgreSQL and Redis; and
the settings it refuses.

Which process holds a client's connection is read from ``/proc`` (the process whose
socket is connected to the client's port), so the test knows two devices sit in
different processes before it shows a message crossing between them.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley_client import ParleyClient
from tests.conftest import PG_ADMIN_URL, _pg_admin, free_port, need_redis, need_service
from tests.realtime.conftest import fast, text_of
from tests.realtime.test_multiprocess import (
    CLI_TIMEOUT,
    PARLEY,
    WAIT,
    ServerProcess,
    _cli,
    _cli_json,
    _env,
    _forget_redis_keys,
    _wait_healthy,
)

PROC = Path("/proc")
# Connections opened in the hope of landing on the other process before giving up.
TRIES = 40


def _children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")"
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _peer_ports(pid: int, port: int) -> set[int]:
    """The client ports of the established connections to ``port`` held by ``pid``."""
    inodes = set()
    fds = PROC / str(pid) / "fd"
    try:
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        return set()
    peers = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and inode in inodes and int(local.rsplit(":", 1)[1], 16) == port:
                peers.add(int(remote.rsplit(":", 1)[1], 16))
    return peers


def _holders(server: ServerProcess) -> dict[int, set[int]]:
    """Each worker process's connections to the port (by client port)."""
    return {pid: _peer_ports(pid, server.port) for pid in _children(server.process.pid)}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    if not (PROC / "self" / "net" / "tcp").exists():
        pytest.skip("needs Linux's /proc to tell which process holds a connection")
    pg = httpx.URL(PG_ADMIN_URL.replace("postgresql+asyncpg://", "http://"))
    need_service("PostgreSQL", pg.host, pg.port or 5432)
    redis_url = need_redis()
    cwd = tmp_path_factory.mktemp("workers")
    name = f"parley_test_workers_{uuid.uuid4().hex[:10]}"
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    server: ServerProcess | None = None
    workspace: dict[str, Any] | None = None
    try:
        env = _env(db_url, redis_url)
        _cli(["migrate"], env, cwd)
        workspace = _cli_json(["workspace", "create", "Workers"], env, cwd)
        port = free_port()
        log_path = cwd / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*PARLEY, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
            )
        server = ServerProcess("workers", port, process, log_path)
        _wait_healthy(server)
        yield server, workspace
    finally:
        if server is not None:
            children = _children(server.process.pid)
            server.stop()
            print(server.output())
            assert server.process.returncode == 0, "stopped with SIGTERM, it exits cleanly"
            deadline = time.monotonic() + 10
            while [c for c in children if (PROC / str(c)).exists()] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not [c for c in children if (PROC / str(c)).exists()], "a process outlived serve"
        _forget_redis_keys(redis_url, workspace and workspace["workspace_id"])
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def opened() -> AsyncIterator[list[ParleyClient]]:
    clients: list[ParleyClient] = []
    yield clients
    for client in clients:
        await client.close()


async def _device(
    opened: list[ParleyClient], server: ServerProcess, widget_key: str, **options: Any
) -> tuple[ParleyClient, int]:
    """A connected customer device, and the worker process that holds its connection."""
    before = _holders(server)
    client = ParleyClient(server.url, widget_key, **fast(**options))
    opened.append(client)
    await client.connect()
    after = _holders(server)
    grew = [pid for pid, peers in after.items() if peers - before.get(pid, set())]
    assert len(grew) == 1, (before, after)
    return client, grew[0]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
async def test_two_workers_on_one_port_pass_messages_between_them(served, opened) -> None:
    server, workspace = served
    wk = workspace["widget_key"]
    workers = _children(server.process.pid)
    phone, phone_pid = await _device(opened, server, wk)
    first = await phone.send("hello from one process")
    conv = first["conversation_id"]

    laptop = None
    for _ in range(TRIES):
        device, pid = await _device(opened, server, wk, session=phone.session)
        if pid != phone_pid:
            laptop = device
            break
        opened.remove(device)
        await device.close()
    assert laptop is not None, f"{TRIES} connections all landed on process {phone_pid}"
    assert phone_pid in workers and pid in workers

    sent = await laptop.send("from the other process", conversation_id=conv)
    got = await phone.wait_for("message", lambda e: e["message"]["id"] == sent["id"], timeout=WAIT)
    assert text_of(got) == "from the other process" and got["message"]["seq"] == 2
    back = await phone.send("and back", conversation_id=conv)
    got = await laptop.wait_for("message", lambda e: e["message"]["id"] == back["id"], timeout=WAIT)
    assert text_of(got) == "and back" and got["message"]["seq"] == 3


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PARLEY_DATABASE_URL": "sqlite+aiosqlite:///./parley.db"}, "needs PostgreSQL"),
        (
            {"PARLEY_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"},
            "needs PARLEY_REDIS_URL",
        ),
    ],
)
def test_several_workers_are_refused_without_postgresql_and_redis(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    r = subprocess.run(
        [*PARLEY, "serve", "--port", str(free_port()), "--workers", "2"],
        env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True,
        timeout=CLI_TIMEOUT, check=False,
    )
    assert r.returncode == 2, r
    assert says in r.stderr
    assert not (tmp_path / "parley.db").exists(), "refused before touching the database"


def test_workers_must_be_positive(tmp_path: Path) -> None:
    r = subprocess.run(
        [*PARLEY, "serve", "--workers", "0"], cwd=tmp_path, capture_output=True, text=True,
        timeout=CLI_TIMEOUT, check=False,
    )
    assert r.returncode == 2
    assert "--workers: must be 1 or more" in r.stderr
