"""Two ``parley serve`` processes sharing one PostgreSQL database and one Redis.

Everything is set up as an operator does it: ``parley migrate``, ``parley workspace
create`` and ``parley agent create`` on a fresh database, then two servers on two
ports with the same ``PARLEY_DATABASE_URL`` and ``PARLEY_REDIS_URL``. No
``PARLEY_SECRET_KEY`` is given, so both processes must agree on the secret kept in
the database: an agent token issued by one process and a customer session issued by
the other are used on the other process.

Clients are the Python SDK (``parley_client``) over real sockets; what one process
accepts must reach the sockets of the other through Redis, and ``seq`` must stay
gap-free when both processes write to one conversation at once.

(One process without Redis is what every other test in tests/realtime runs on.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley_client import AgentClient, ParleyClient, user_hmac
from tests.conftest import PG_ADMIN_URL, _pg_admin, free_port, need_redis, need_service
from tests.realtime.conftest import fast, text_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PARLEY = [sys.executable, "-m", "chat.cli"]
CLI_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Every wait for an event that crosses processes is bounded by this.
WAIT = 10.0


@dataclass
class ServerProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self, start: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    workspace: dict[str, str]
    # (email, password) of the agents created with ``parley agent create``.
    agents: list[tuple[str, str]] = field(default_factory=list)

    @property
    def servers(self) -> list[ServerProcess]:
        return [self.a, self.b]

    def http(self, server: ServerProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {self.workspace['api_key']}"},
            timeout=WAIT,
        )

    def hmac(self, external_id: str) -> dict[str, str]:
        return {
            "external_id": external_id,
            "hmac": user_hmac(self.workspace["identity_secret"], external_id),
        }


def _env(db_url: str, redis_url: str) -> dict[str, str]:
    # Nothing of the developer's PARLEY_* environment leaks in (a PARLEY_SECRET_KEY
    # would hide a disagreement between the processes).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(
        PARLEY_DATABASE_URL=db_url,
        PARLEY_REDIS_URL=redis_url,
        PARLEY_LOG_LEVEL="warning",
        PARLEY_WORKER_POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    r = subprocess.run(
        PARLEY + args, env=env, cwd=cwd, capture_output=True, text=True,
        timeout=CLI_TIMEOUT, check=False,
    )
    if r.returncode != 0:
        pytest.fail(f"parley {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def _cli_json(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    out = _cli(args, env, cwd)
    value: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return value


def _start(name: str, env: dict[str, str], cwd: Path) -> ServerProcess:
    port = free_port()
    log_path = cwd / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*PARLEY, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
        )
    return ServerProcess(name, port, process, log_path)


def _wait_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"server {server.name} exited {server.process.returncode} while starting:\n"
                + server.output()
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server {server.name} not healthy after {START_TIMEOUT}s:\n{server.output()}")


def _forget_redis_keys(redis_url: str, workspace_id: str | None) -> None:
    """Removes this test's presence keys; other users of the Redis db are left alone
    (a FLUSHDB would pull presence out from under a concurrent test run)."""
    if workspace_id is None:
        return
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        keys = list(r.scan_iter(match=f"parley:*{workspace_id}*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pg = httpx.URL(PG_ADMIN_URL.replace("postgresql+asyncpg://", "http://"))
    need_service("PostgreSQL", pg.host, pg.port or 5432)
    redis_url = need_redis()

    cwd = tmp_path_factory.mktemp("multiprocess")  # no stray .env is read from here
    name = f"parley_test_mp_{uuid.uuid4().hex[:10]}"
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    servers: list[ServerProcess] = []
    workspace_id: str | None = None
    try:
        env = _env(db_url, redis_url)
        assert "up to date" in _cli(["migrate"], env, cwd)
        workspace = _cli_json(["workspace", "create", "Multi"], env, cwd)
        workspace_id = workspace["workspace_id"]
        emails = [f"{n}-{uuid.uuid4().hex[:6]}@example.com" for n in ("ann", "bob")]
        with ThreadPoolExecutor(2) as pool:  # two CLI runs at once: a faster setup
            created = pool.map(
                lambda args: _cli_json(args, env, cwd),
                [
                    ["agent", "create", "--workspace", workspace_id, "--email", email,
                     "--name", agent_name, "--role", role]
                    for email, agent_name, role in zip(
                        emails, ("Ann", "Bob"), ("admin", "agent"), strict=True
                    )
                ],
            )
            agents = [(e, c["password"]) for e, c in zip(emails, created, strict=True)]
        for server_name in ("A", "B"):
            servers.append(_start(server_name, env, cwd))
        for server in servers:
            _wait_healthy(server)
            ready = httpx.get(f"{server.url}/ready", timeout=5)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}, ready.text
        yield Cluster(servers[0], servers[1], workspace, agents)
    finally:
        for server in servers:
            try:
                server.stop()
            except (OSError, subprocess.SubprocessError) as exc:  # still clean up the rest
                print(f"could not stop server {server.name}: {exc!r}")
        for server in servers:
            print(f"----- server {server.name} (exit {server.process.returncode}) -----")
            print(server.output())
        _forget_redis_keys(redis_url, workspace_id)
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def opened(cluster: Cluster) -> AsyncIterator[list[Any]]:
    """Clients to close after the test (before the servers stop). Shows what the servers
    logged during the test when it fails, and fails it if a server died."""
    starts = {s.name: s.log_size() for s in cluster.servers}
    clients: list[Any] = []
    yield clients
    for client in reversed(clients):
        await client.close()
    for server in cluster.servers:
        print(f"----- server {server.name} during this test -----")
        print(server.output(starts[server.name]))
    dead = [s.name for s in cluster.servers if s.process.poll() is not None]
    assert not dead, f"server(s) {dead} died during the test"


async def _login(server: ServerProcess, email: str, password: str) -> str:
    return await AgentClient.login(server.url, email, password)


async def _agent(
    opened: list[Any], server: ServerProcess, token: str, **options: Any
) -> AgentClient:
    client = AgentClient(server.url, token, **fast(**options))
    opened.append(client)
    await client.connect()
    return client


async def _customer(
    opened: list[Any], server: ServerProcess, widget_key: str, **options: Any
) -> ParleyClient:
    client = ParleyClient(server.url, widget_key, **fast(**options))
    opened.append(client)
    await client.connect()
    return client


def _message_id(message_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: bool(event["message"]["id"] == message_id)


def _collect(conversation_id: str, into: list[dict[str, Any]]) -> Callable[[Any], None]:
    def collect(event: Any) -> None:
        if event["conversation_id"] == conversation_id:
            into.append(event["message"])

    return collect


async def test_messages_typing_read_and_presence_cross_processes(
    cluster: Cluster, opened: list[Any]
) -> None:
    a, b = cluster.a, cluster.b
    wk = cluster.workspace["widget_key"]
    (ann_email, ann_password), (bob_email, bob_password) = cluster.agents

    # Bob watches the inbox on A. Ann logs in on A and opens her inbox on B: the token
    # one process signed is good on the other (the secret is shared through the database).
    bob = await _agent(opened, a, await _login(a, bob_email, bob_password))
    ann = await _agent(opened, b, await _login(a, ann_email, ann_password))
    assert ann.agent is not None and bob.agent is not None
    ann_id, bob_id = ann.agent["id"], bob.agent["id"]
    came = await bob.wait_for("presence", lambda e: e["id"] == ann_id, timeout=WAIT)
    assert came == {"type": "agent", "id": ann_id, "online": True}
    greeting = await ann.wait_for("session", timeout=WAIT)
    assert {"type": "agent", "id": bob_id, "online": True} in greeting["presence"]

    # A customer on A; both agents see them come online.
    phone = await _customer(opened, a, wk, user=cluster.hmac("cust-1"))
    contact_id = phone.contact_id
    for inbox in (ann, bob):
        seen = await inbox.wait_for(
            "presence", lambda e: e["id"] == contact_id and e["online"], timeout=WAIT
        )
        assert seen["type"] == "contact"

    # Customer on A -> agent on B (the new conversation first, then its message).
    first = await phone.send("hello from A")
    conv = first["conversation_id"]
    created = await ann.wait_for("conversation.created", lambda e: e["id"] == conv, timeout=WAIT)
    assert created["contact_id"] == contact_id
    got = await ann.wait_for("message", lambda e: e["message"]["id"] == first["id"], timeout=WAIT)
    assert text_of(got) == "hello from A" and got["message"]["seq"] == 1

    # A second device of the customer on B, signed in with the session A issued.
    laptop = await _customer(opened, b, wk, session=phone.session)
    assert laptop.contact_id == contact_id
    assert conv in laptop.conversations

    # Agent on B -> the customer's devices on A and on B, and the other agent on A.
    reply = await ann.send(conv, "reply from B")
    assert reply["seq"] == 2
    for device in (phone, laptop):
        got = await device.wait_for("message", lambda e: e["message"]["seq"] == 2, timeout=WAIT)
        assert text_of(got) == "reply from B"
        assert got["message"]["author"] == {"type": "agent", "id": ann_id}
    got = await bob.wait_for("message", lambda e: e["message"]["id"] == reply["id"], timeout=WAIT)
    assert text_of(got) == "reply from B"

    # The customer's message from the laptop (B) reaches the phone (A) and Bob (A).
    more = await laptop.send("sent from the laptop", conversation_id=conv)
    got = await phone.wait_for("message", lambda e: e["message"]["id"] == more["id"], timeout=WAIT)
    assert text_of(got) == "sent from the laptop" and got["message"]["seq"] == 3
    await bob.wait_for("message", lambda e: e["message"]["id"] == more["id"], timeout=WAIT)

    # Typing both ways across the processes.
    assert (await phone.typing(conv, True))["ok"] is True
    typing = await ann.wait_for("typing", lambda e: e["conversation_id"] == conv, timeout=WAIT)
    assert typing["typing"] is True and typing["author"] == {"type": "contact", "id": contact_id}
    assert (await ann.typing(conv, True))["ok"] is True
    for watcher in (phone, bob):  # customer on A, other agent on A
        typing = await watcher.wait_for(
            "typing",
            lambda e: e["conversation_id"] == conv and e["author"]["type"] == "agent",
            timeout=WAIT,
        )
        assert typing["typing"] is True and typing["author"]["id"] == ann_id
        assert typing["author"]["name"] == "Ann"
    await ann.typing(conv, False)
    stop = await phone.wait_for(
        "typing", lambda e: e["conversation_id"] == conv and not e["typing"], timeout=WAIT
    )
    assert stop["author"]["id"] == ann_id
    assert not phone.events.take("typing"), "the customer hears only the agents' typing"

    # Ann (B) reads; the customer's devices on A and B hear it and the message turns read.
    assert await ann.read(conv, 3) == 3
    for device in (phone, laptop):
        read = await device.wait_for("read", lambda e: e["conversation_id"] == conv, timeout=WAIT)
        assert read["reader"] == {"type": "agent", "id": ann_id} and read["seq"] == 3
    status = await phone.wait_for(
        "message.status",
        lambda e: e["message_id"] == first["id"] and e["status"] == "read",
        timeout=WAIT,
    )
    assert status["seq"] == 1

    # Presence is counted across processes: the contact stays online while the laptop
    # (B) is open after the phone (A) closed, and goes offline with the last device.
    await phone.close()
    assert {"type": "contact", "id": contact_id, "online": True} in await bob.presence()
    assert not [e for e in bob.events.take("presence") if e["id"] == contact_id]
    await laptop.close()
    went = await bob.wait_for(
        "presence", lambda e: e["id"] == contact_id and not e["online"], timeout=WAIT
    )
    assert went["type"] == "contact"
    await ann.close()
    went = await bob.wait_for(
        "presence", lambda e: e["id"] == ann_id and not e["online"], timeout=WAIT
    )
    assert went["type"] == "agent"
    assert {"type": "agent", "id": ann_id, "online": True} not in await bob.presence()


async def test_rest_posts_on_one_process_reach_sockets_on_the_other(
    cluster: Cluster, opened: list[Any]
) -> None:
    wk = cluster.workspace["widget_key"]
    on_b = await _customer(opened, cluster.b, wk, user=cluster.hmac("cust-rest"))
    on_a = await _customer(opened, cluster.a, wk, user=cluster.hmac("cust-rest"))
    conv = (await on_b.send("hi, anyone?"))["conversation_id"]
    await on_a.wait_for("message", lambda e: e["conversation_id"] == conv, timeout=WAIT)

    async with cluster.http(cluster.a) as rest_a, cluster.http(cluster.b) as rest_b:
        for rest, text in ((rest_a, "posted on A"), (rest_b, "posted on B")):
            resp = await rest.post(
                f"/v1/conversations/{conv}/messages",
                json={"content": {"type": "text", "text": text}, "author": {"type": "agent"}},
            )
            assert resp.status_code == 201, resp.text
            posted = resp.json()
            for device in (on_a, on_b):
                got = await device.wait_for("message", _message_id(posted["id"]), timeout=WAIT)
                assert text_of(got) == text and got["message"]["seq"] == posted["seq"]
        history = (await rest_b.get(f"/v1/conversations/{conv}/messages")).json()["data"]
    assert [(m["seq"], m["content"]["text"]) for m in history] == [
        (1, "hi, anyone?"), (2, "posted on A"), (3, "posted on B")
    ]


async def test_seq_stays_gap_free_when_both_processes_write_at_once(
    cluster: Cluster, opened: list[Any]
) -> None:
    """Per process: the customer's device, an agent and REST write concurrently into one
    conversation; every seq from 1 to N is used exactly once, and every socket ends up
    with every message (the customer's devices in seq order)."""
    a, b = cluster.a, cluster.b
    wk = cluster.workspace["widget_key"]
    (ann_email, ann_password), (bob_email, bob_password) = cluster.agents
    per_writer = 15
    per_rest = 10

    ann = await _agent(opened, b, await _login(b, ann_email, ann_password))
    bob = await _agent(opened, a, await _login(b, bob_email, bob_password))
    phone = await _customer(opened, a, wk, user=cluster.hmac("cust-burst"))
    laptop = await _customer(opened, b, wk, user=cluster.hmac("cust-burst"))
    opening = await phone.send("start")
    conv = opening["conversation_id"]

    received: dict[str, list[dict[str, Any]]] = {}
    for label, client in (("ann", ann), ("bob", bob), ("phone", phone), ("laptop", laptop)):
        received[label] = []
        client.on("message", _collect(conv, received[label]))
    await laptop.wait_for("message", lambda e: e["message"]["seq"] == 1, timeout=WAIT)
    received["laptop"].clear()
    for client in (ann, bob):
        await client.wait_for("message", lambda e: e["message"]["seq"] == 1, timeout=WAIT)
    received["ann"].clear()
    received["bob"].clear()

    async def rest_posts(server: ServerProcess) -> list[dict[str, Any]]:
        async with cluster.http(server) as rest:
            async def post(i: int) -> dict[str, Any]:
                resp = await rest.post(
                    f"/v1/conversations/{conv}/messages",
                    json={
                        "content": {"type": "text", "text": f"rest-{server.name}-{i}"},
                        "author": {"type": "agent"},
                    },
                )
                assert resp.status_code == 201, resp.text
                body: dict[str, Any] = resp.json()
                return body

            return list(await asyncio.gather(*(post(i) for i in range(per_rest))))

    async def sends(label: str, send: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(send(f"{label}-{i}") for i in range(per_writer))))

    batches = await asyncio.wait_for(
        asyncio.gather(
            sends("phone", lambda t: phone.send(t, conversation_id=conv)),   # A
            sends("bob", lambda t: bob.send(conv, t)),                        # A
            rest_posts(a),                                                    # A
            sends("laptop", lambda t: laptop.send(t, conversation_id=conv)), # B
            sends("ann", lambda t: ann.send(conv, t)),                        # B
            rest_posts(b),                                                    # B
        ),
        timeout=60,
    )
    acked = dict(zip(["phone", "bob", "rest-A", "laptop", "ann", "rest-B"], batches, strict=True))
    total = 1 + 4 * per_writer + 2 * per_rest

    # Stored: seqs 1..N, each once, and each acked message has the seq it is stored with.
    async with cluster.http(a) as rest:
        resp = await rest.get(f"/v1/conversations/{conv}/messages", params={"limit": 500})
    history = resp.json()["data"]
    assert [m["seq"] for m in history] == list(range(1, total + 1))
    by_id = {m["id"]: m["seq"] for m in history}
    all_acked = [m for batch in batches for m in batch]
    assert len({m["id"] for m in all_acked}) == len(all_acked) == total - 1
    assert all(by_id[m["id"]] == m["seq"] for m in all_acked)
    texts = sorted(m["content"]["text"] for m in history)
    assert len(set(texts)) == total
    print("stored order:", " ".join(m["content"]["text"] for m in history))
    # One socket's messages are stored in the order it sent them (pipelining is safe).
    for label in ("phone", "bob", "laptop", "ann"):
        seqs = [m["seq"] for m in acked[label]]
        assert seqs == sorted(seqs), f"{label}'s messages stored out of order: {seqs}"
    async with cluster.http(b) as rest:
        stored = (await rest.get(f"/v1/conversations/{conv}")).json()
    assert stored["last_seq"] == total

    # Each socket sees every message it did not send itself, exactly once; the customer
    # SDK delivers them in seq order (resyncing over cross-process reordering).
    # (seq 1, the opening message, was taken out of everyone's list above)
    own = {label: {m["seq"] for m in acked[label]} | {1} for label in received}
    deadline = asyncio.get_running_loop().time() + WAIT
    while asyncio.get_running_loop().time() < deadline and any(
        len(received[k]) < total - len(own[k]) for k in own
    ):
        await asyncio.sleep(0.05)
    for label in ("phone", "laptop", "ann", "bob"):
        seqs = [m["seq"] for m in received[label]]
        assert len(seqs) == len(set(seqs)), f"{label} got duplicates: {sorted(seqs)}"
        assert set(seqs) == set(range(1, total + 1)) - own[label], (
            f"{label} missing {sorted(set(range(1, total + 1)) - own[label] - set(seqs))}"
        )
    for label in ("phone", "laptop"):
        seqs = [m["seq"] for m in received[label]]
        assert seqs == sorted(seqs), f"{label} delivered out of order: {seqs}"
    assert phone.last_seq(conv) == laptop.last_seq(conv) == total


async def _closed_by_the_server(client: Any) -> None:
    gone = await client.wait_for("disconnected", timeout=WAIT)
    assert "server" in gone["reason"], gone
    assert not client.connected


async def test_deactivating_or_logging_out_on_one_process_closes_sockets_on_the_other(
    cluster: Cluster, opened: list[Any]
) -> None:
    a, b = cluster.a, cluster.b
    async with cluster.http(a) as rest_a:
        carl, dora = [
            (await rest_a.post("/v1/agents", json={
                "email": f"{name}-{uuid.uuid4().hex[:6]}@example.com", "name": name,
                "password": "a long enough password",
            })).json()
            for name in ("Carl", "Dora")
        ]
        carl_on_b = await _agent(
            opened, b, await _login(a, carl["email"], "a long enough password"),
            reconnection=False,
        )
        dora_token = await _login(a, dora["email"], "a long enough password")
        dora_on_b = await _agent(opened, b, dora_token, reconnection=False)
        dora_on_a = await _agent(opened, a, await _login(b, dora["email"], "a long enough password"))

        # Carl is deactivated through A: his socket on B is closed.
        r = await rest_a.patch(f"/v1/agents/{carl['id']}", json={"active": False})
        assert r.status_code == 200, r.text
        await _closed_by_the_server(carl_on_b)

        # Dora logs one token out through A: its socket on B is closed, her other
        # token's socket on A goes on working, and the token is refused on B too.
        r = await rest_a.post("/v1/auth/logout", headers={"Authorization": f"Bearer {dora_token}"})
        assert r.status_code == 204, r.text
        await _closed_by_the_server(dora_on_b)
        assert dora_on_a.connected and await dora_on_a.presence() is not None
    async with httpx.AsyncClient(base_url=b.url, timeout=WAIT) as anonymous_b:
        r = await anonymous_b.get("/v1/auth/me", headers={"Authorization": f"Bearer {dora_token}"})
        assert r.status_code == 401


async def test_deleting_a_contact_on_one_process_closes_its_sockets_on_the_other(
    cluster: Cluster, opened: list[Any]
) -> None:
    wk = cluster.workspace["widget_key"]
    on_b = await _customer(opened, cluster.b, wk, user=cluster.hmac("cust-deleted"),
                           reconnection=False)
    on_a = await _customer(opened, cluster.a, wk, session=on_b.session, reconnection=False)
    await on_b.send("please forget me")
    bystander = await _customer(opened, cluster.b, wk, user=cluster.hmac("cust-stays"))
    async with cluster.http(cluster.a) as rest_a:
        r = await rest_a.delete(f"/v1/contacts/{on_b.contact_id}")
        assert r.status_code == 204, r.text
    for device in (on_b, on_a):
        await _closed_by_the_server(device)
    assert (await bystander.send("still here"))["seq"] == 1
