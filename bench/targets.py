"""Benchmark targets: how to start each server and how to talk to it.

A target is two small pieces:

* a :class:`Profile`, the client side: namespace, ``auth`` per (room, member), the
  message payload, and how a room's conversation id is obtained (fixed, or from the
  ack of a first message that opens the conversation);
* the server side: :meth:`Target.prepare` (one-time setup such as ``npm ci`` or
  migrations, may raise :class:`TargetUnavailable`), :meth:`Target.server_spec`
  (command + env to start one server on a port) and :meth:`Target.cleanup`.

Every scenario starts a fresh server process (pinned to core 0) from ``server_spec``.
Add a target by writing one subclass and registering it in :data:`TARGETS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
NODE_RELAY_DIR = BENCH / "relays" / "node"
HOST = "127.0.0.1"
SERVER_CORE = 0
LOADGEN_CORE = 1


class TargetUnavailable(Exception):
    """The target cannot run here (missing tool, server failed to start, ...)."""


# --------------------------------------------------------------------------- profiles


def bench_text(ts: float) -> str:
    """Message text carrying the send timestamp (``time.perf_counter()``)."""
    return f'{{"ts":{ts!r}}}'


def text_ts(text: str) -> float | None:
    try:
        value = json.loads(text).get("ts")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Profile:
    """Client-side protocol of a target. The defaults describe Parley's ``/client``."""

    namespace: str = "/client"
    send_event: str = "message"
    delivery_event: str = "message"
    # True: a room's first message is sent without conversation_id and the ack's
    # message.conversation_id is used afterwards. False: the room name is the id.
    opens_conversation: bool = False
    auth_fn: Callable[[str], dict[str, Any]] = field(default=lambda room: {"room": room})

    def auth(self, room: str) -> dict[str, Any]:
        """Connect ``auth`` of any member of ``room`` (all members share it)."""
        return self.auth_fn(room)

    def message(
        self, conversation_id: str | None, client_message_id: str, ts: float
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "client_message_id": client_message_id,
            "content": {"type": "text", "text": bench_text(ts)},
        }
        if conversation_id is not None:
            payload["conversation_id"] = conversation_id
        return payload

    def conversation_from_ack(self, ack: Any, room: str) -> str:
        if not self.opens_conversation:
            return room
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise RuntimeError(f"opening message refused: {ack!r}")
        return str(ack["message"]["conversation_id"])

    def delivery_ts(self, args: list[Any]) -> float | None:
        """Send timestamp of a delivered ``message`` event (its argument list)."""
        try:
            return text_ts(args[0]["message"]["content"]["text"])
        except (IndexError, KeyError, TypeError):
            return None


# --------------------------------------------------------------------------- servers


@dataclass
class ServerSpec:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    start_timeout: float = 30.0
    # taskset's core list for this server instead of the runner's one core ("0,1": a
    # server of several processes), and how long its processes take to start once the
    # port answers (the first one to listen would take every early connection).
    cores: str | None = None
    settle_seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


class ServerProcess:
    """A server pinned to ``core`` (via taskset), stopped on exit."""

    def __init__(
        self, name: str, spec: ServerSpec, port: int, log_path: Path, core: int | None
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        env = dict(os.environ)
        env.update(spec.env)
        argv = list(spec.argv)
        cores = spec.cores or (None if core is None else str(core))
        if cores is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", cores, *argv]
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + spec.start_timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise TargetUnavailable(
                    f"{name}: server exited with {self.proc.returncode}; log:\n{self.log_tail()}"
                )
            if _port_open(port):
                time.sleep(spec.settle_seconds)
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TargetUnavailable(
                    f"{name}: server did not listen on {HOST}:{port} within "
                    f"{spec.start_timeout:.0f}s; log:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The server and its descendants."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def rss_kb(self) -> int:
        """VmRSS of the server tree, in kB."""
        total = 0
        for p in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server tree."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for p in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


# --------------------------------------------------------------------------- targets


class Target:
    name = ""
    description = ""
    # Command names of unpinned helper processes that belong to the system under test
    # (their CPU is reported separately instead of as interference).
    services: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.profile = Profile()

    def prepare(self, workdir: Path) -> None:
        """One-time setup before the first server start; may raise TargetUnavailable."""

    def server_spec(self, port: int) -> ServerSpec:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Undo :meth:`prepare` (drop databases, ...)."""


def _run(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 300
) -> str:
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetUnavailable(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise TargetUnavailable(
            f"{' '.join(argv)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}"
        )
    return done.stdout


class NodeRelay(Target):
    name = "node"
    description = "Node.js socket.io 4 relay (bench/relays/node), no storage"

    def prepare(self, workdir: Path) -> None:
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            raise TargetUnavailable("node/npm not found on PATH")
        ensure_node_modules(npm)
        self._node = node

    def server_spec(self, port: int) -> ServerSpec:
        return ServerSpec(
            [self._node, str(NODE_RELAY_DIR / "relay.js"), str(port)], start_timeout=20
        )


def ensure_node_modules(npm: str | None = None) -> None:
    """``npm ci`` bench/relays/node when its node_modules is missing (fresh clone)."""
    if (NODE_RELAY_DIR / "node_modules" / "socket.io" / "package.json").exists():
        return
    npm = npm or shutil.which("npm")
    if not npm:
        raise TargetUnavailable("npm not found on PATH")
    print(f"[bench] npm ci in {NODE_RELAY_DIR.relative_to(REPO)} ...", file=sys.stderr, flush=True)
    _run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_RELAY_DIR, timeout=300
    )


class BareSio(Target):
    name = "bare_sio"
    description = (
        "python-socketio AsyncServer relay (bench/relays/bare_sio.py) under uvicorn, no storage"
    )

    def server_spec(self, port: int) -> ServerSpec:
        return ServerSpec(
            [sys.executable, str(BENCH / "relays" / "bare_sio.py"), str(port)], start_timeout=20
        )


BENCH_SOCKET_RATE = 1_000_000


class Parley(Target):
    """Parley's own server (``parley serve``) with SQLite or PostgreSQL + Redis."""

    def __init__(self, backend: str, workers: int = 1) -> None:
        super().__init__()
        self.backend = backend
        self.workers = workers
        self.name = f"parley_{backend}" + (f"_{workers}proc" if workers > 1 else "")
        self.description = (
            "Parley `parley serve`, SQLite (aiosqlite), single process"
            if backend == "sqlite"
            else "Parley `parley serve`, PostgreSQL (asyncpg) + Redis"
        )
        if workers > 1:
            # The load generator runs on core 1 too: the two processes share core 1 with it.
            self.description += (
                f", `--workers {workers}` on cores 0-{workers - 1} (core 1 shared with the "
                "load generator)"
            )
        self.env: dict[str, str] = {}
        self._pg_db: str | None = None
        self._parley = ""

    def prepare(self, workdir: Path) -> None:
        exe = Path(sys.executable).parent / "parley"
        if not exe.exists():
            found = shutil.which("parley")
            if not found:
                raise TargetUnavailable(
                    f"`parley` executable not found ({exe}); is the package installed?"
                )
            exe = Path(found)
        self._parley = str(exe)
        if self.backend == "sqlite":
            self.env = {"PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db"}
        else:
            self.services = ("postgres", "redis-server")
            self._pg_db = f"parley_bench_{secrets.token_hex(4)}"
            _pg_admin(f'CREATE DATABASE "{self._pg_db}"')
            _redis_ping()
            self.env = {
                "PARLEY_DATABASE_URL": f"postgresql+asyncpg://postgres@{HOST}:5432/{self._pg_db}",
                "PARLEY_REDIS_URL": f"redis://{HOST}:6379/0",
            }
        # The per-socket rate limit is a policy (20 events/s by default), not capacity:
        # the scenarios push 60-150 events/s through each socket, and open 5,000
        # connections from one address (120 a minute by default), so both are raised out of
        # the way. Every event still goes through the limiter.
        self.env |= {
            "PARLEY_SOCKET_RATE_PER_SECOND": str(BENCH_SOCKET_RATE),
            "PARLEY_SOCKET_RATE_BURST": str(BENCH_SOCKET_RATE),
            "PARLEY_SOCKET_CONNECTS_PER_MINUTE": str(BENCH_SOCKET_RATE),
        }
        _run([self._parley, "migrate"], env=self.env, timeout=180)
        out = _run([self._parley, "workspace", "create", "bench"], env=self.env, timeout=60)
        try:
            ws = json.loads(out.strip().splitlines()[-1])
            widget_key = str(ws["widget_key"])
            secret = str(ws["identity_secret"]).encode()
        except (ValueError, KeyError, IndexError) as exc:
            raise TargetUnavailable(
                f"`parley workspace create bench` printed no workspace JSON: {out!r}"
            ) from exc

        def auth(room: str) -> dict[str, Any]:
            digest = hmac.new(secret, room.encode(), hashlib.sha256).hexdigest()
            return {"widget_key": widget_key, "user": {"external_id": room, "hmac": digest}}

        self.profile = Profile(opens_conversation=True, auth_fn=auth)

    def server_spec(self, port: int) -> ServerSpec:
        argv = [self._parley, "serve", "--host", HOST, "--port", str(port)]
        if self.workers == 1:
            return ServerSpec(argv, env=self.env, start_timeout=60)
        return ServerSpec(
            [*argv, "--workers", str(self.workers)],
            env=self.env,
            start_timeout=60,
            cores=f"0-{self.workers - 1}",
            settle_seconds=5.0,
        )

    def cleanup(self) -> None:
        if self._pg_db:
            with contextlib.suppress(TargetUnavailable):
                _pg_admin(f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)')
            self._pg_db = None


def _pg_admin(sql: str) -> None:
    try:
        import asyncpg
    except ImportError as exc:
        raise TargetUnavailable("asyncpg is not installed") from exc

    async def go() -> None:
        conn = await asyncpg.connect(
            host=HOST, port=5432, user="postgres", database="postgres", timeout=5
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(go())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise TargetUnavailable(f"PostgreSQL at {HOST}:5432 (user postgres): {exc}") from exc


def _redis_ping() -> None:
    try:
        with socket.create_connection((HOST, 6379), timeout=2) as s:
            s.sendall(b"PING\r\n")
            if not s.recv(64).startswith(b"+PONG"):
                raise TargetUnavailable(f"Redis at {HOST}:6379 did not answer PING")
    except OSError as exc:
        raise TargetUnavailable(f"Redis at {HOST}:6379: {exc}") from exc


TARGETS: dict[str, Callable[[], Target]] = {
    "node": NodeRelay,
    "bare_sio": BareSio,
    "parley_sqlite": lambda: Parley("sqlite"),
    "parley_pg": lambda: Parley("pg"),
    "parley_pg_2proc": lambda: Parley("pg", workers=2),
}
