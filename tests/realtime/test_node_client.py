"""The official JavaScript ``socket.io-client`` (npm, v4) as a Parley customer.

``node/customer.mjs`` connects to ``/client`` with an identified user (the hmac is
computed here), sends messages with acks, types, reads, resyncs and waits for an
agent's reply, which this test posts over REST once the script prints its
conversation id. Run on the websocket transport alone, with the client's default
(long-polling, then the upgrade to websocket, usually done before the first
event) and on long-polling alone (every event and ack over HTTP). An inbox on
the Python client watches what the JavaScript customer does.

Needs ``node`` and ``npm``; ``npm ci`` runs in tests/realtime/node when its
node_modules is missing. Without them the tests skip (fail under
PARLEY_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from parley_client import user_hmac
from tests.conftest import REQUIRE, LiveServer
from tests.realtime.conftest import TIMEOUT, post_reply, text_of

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "customer.mjs"
INSTALL_TIMEOUT = 300
# The script bounds each of its own waits by this; the test allows a little more.
STEP_MS = 10_000
LINE_TIMEOUT = 15.0
RUN_TIMEOUT = 60.0


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with socket.io-client installed next to the script."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        _missing("node and npm are needed for the socket.io-client tests")
    assert node_bin is not None and npm_bin is not None
    if not (NODE_DIR / "node_modules" / "socket.io-client" / "package.json").exists():
        try:
            r = subprocess.run(
                [npm_bin, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                text=True, timeout=INSTALL_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired:
            _missing(f"npm ci in {NODE_DIR} took over {INSTALL_TIMEOUT}s")
        if r.returncode != 0:
            _missing(f"npm ci in {NODE_DIR} failed:\n{r.stdout}\n{r.stderr}")
    return node_bin


class Script:
    """``node customer.mjs`` as a subprocess of this event loop (the live server keeps
    serving while the test reads the script's JSON lines)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []

    @classmethod
    async def start(cls, node: str, config: dict[str, Any]) -> Script:
        proc = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), json.dumps({"timeout_ms": STEP_MS, **config}),
            cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    def transcript(self) -> str:
        return "\n".join(self.raw)

    async def step(self, name: str) -> dict[str, Any]:
        """Reads lines up to the next ``{"step": name}``; fails on an error line or an exit."""
        assert self.proc.stdout is not None
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"no {name!r} line from node in {LINE_TIMEOUT}s:\n{self.transcript()}")
            if not raw:
                stderr = await self._stderr()
                pytest.fail(
                    f"node ended before {name!r}:\n{self.transcript()}\nstderr:\n{stderr}"
                )
            line = raw.decode().rstrip("\n")
            self.raw.append(line)
            data: dict[str, Any] = json.loads(line)
            self.lines.append(data)
            if data["step"] == "error":
                pytest.fail(f"node failed: {data}\n{self.transcript()}\n{await self._stderr()}")
            if data["step"] == name:
                return data

    async def finish(self) -> None:
        """Waits for a clean exit (0, nothing left unread that is an error)."""
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"node did not exit in {RUN_TIMEOUT}s:\n{self.transcript()}")
        for line in out.decode().splitlines():
            self.raw.append(line)
            self.lines.append(json.loads(line))
        assert self.proc.returncode == 0, f"{self.transcript()}\nstderr:\n{err.decode()}"

    async def _stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        try:
            return (await asyncio.wait_for(self.proc.stderr.read(), 5)).decode(errors="replace")
        except TimeoutError:
            return "(stderr unreadable)"

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def scripts() -> Any:
    running: list[Script] = []
    yield running
    for script in running:
        await script.kill()
        print(f"----- node transcript -----\n{script.transcript()}")  # shown on failure


@pytest.mark.parametrize(
    "transports",
    [["websocket"], None, ["polling"]],
    ids=["websocket", "polling-then-upgrade", "polling-only"],
)
async def test_socketio_client_customer_conversation(
    live_server: LiveServer, node: str, scripts: list[Script], agent: Any,
    transports: list[str] | None,
) -> None:
    inbox = await agent()  # an agent on the Python client watches the JavaScript customer
    secret = live_server.workspace["identity_secret"]
    external_id = f"node-{'-'.join(transports or ['default'])}"
    config: dict[str, Any] = {
        "url": live_server.url,
        "widget_key": live_server.workspace["widget_key"],
        "external_id": external_id,
        "hmac": user_hmac(secret, external_id),
    }
    if transports:
        config["transports"] = transports
    script = await Script.start(node, config)
    scripts.append(script)

    connected = await script.step("connected")
    if transports:
        assert connected["opened"] == connected["transport"] == transports[0]
    else:
        assert connected["opened"] == "polling"

    session = await script.step("session")
    assert session["external_id"] == external_id and session["has_session_token"]
    assert session["conversations"] == []
    contact_id = session["contact_id"]

    first = (await script.step("ack"))["ack"]
    message = first["message"]
    conv = message["conversation_id"]
    assert first["duplicate"] is False and first["conversation"]["id"] == conv
    assert message["seq"] == 1 and message["direction"] == "inbound"
    assert message["author"] == {"type": "contact", "id": contact_id}
    assert message["content"] == {"type": "text", "text": "hello from node"}
    assert message["client_message_id"] == f"node-{external_id}-1"

    second = (await script.step("ack"))["ack"]
    assert second["message"]["conversation_id"] == conv and second["message"]["seq"] == 2
    again = (await script.step("ack"))["ack"]
    assert again["duplicate"] is True and again["message"]["id"] == second["message"]["id"]

    typing = await script.step("typing")
    assert typing["ack"]["ok"] is True
    read = await script.step("read")
    assert read["ack"] == {"ok": True, "seq": 2}
    resync = (await script.step("resync"))["ack"]
    assert [m["seq"] for m in resync["messages"]] == [1, 2]
    assert resync["last_seq"] == 2 and resync["has_more"] is False
    invalid = (await script.step("invalid"))["ack"]
    assert invalid["ok"] is False and invalid["error"]["code"] == "invalid_payload"

    waiting = await script.step("waiting")
    assert waiting["conversation_id"] == conv

    # The inbox saw what the JavaScript customer did.
    created = await inbox.wait_for("conversation.created", lambda e: e["id"] == conv, timeout=TIMEOUT)
    assert created["contact_id"] == contact_id
    seen = [
        await inbox.wait_for(
            "message", lambda e, s=s: e["message"]["seq"] == s and e["conversation_id"] == conv,
            timeout=TIMEOUT,
        )
        for s in (1, 2)
    ]
    assert [text_of(e) for e in seen] == ["hello from node", "second, same conversation"]
    typed = await inbox.wait_for(
        "typing", lambda e: e["conversation_id"] == conv and e["typing"], timeout=TIMEOUT
    )
    assert typed["author"] == {"type": "contact", "id": contact_id}

    reply = await post_reply(live_server, conv, "Hi from the inbox")
    got = (await script.step("reply"))["event"]
    assert got["conversation_id"] == conv
    assert got["message"]["id"] == reply["id"] and got["message"]["seq"] == 3
    assert got["message"]["content"] == {"type": "text", "text": "Hi from the inbox"}
    assert got["message"]["direction"] == "outbound"

    assert (await script.step("delivered"))["ack"] == {"ok": True, "seq": 3}
    assert (await script.step("read_reply"))["ack"] == {"ok": True, "seq": 3}
    done = await script.step("done")
    # The default upgrades from long-polling; a pinned transport stays what it was.
    assert done["transport"] == (transports[0] if transports else "websocket")
    assert done["others"] == 0  # the socket's own messages came back as acks, not events
    await script.finish()

    # The receipts the JavaScript client sent are stored: the reply is read.
    stored = (await live_server.http.get(f"/v1/messages/{reply['id']}")).json()
    assert stored["status"] == "read"
    stopped = await inbox.wait_for(
        "typing", lambda e: e["conversation_id"] == conv and not e["typing"], timeout=TIMEOUT
    )
    assert stopped["author"]["id"] == contact_id


async def test_socketio_client_sees_a_refusal_as_documented(
    live_server: LiveServer, node: str, scripts: list[Script]
) -> None:
    """A wrong hmac: socket.io-client shows the reason as ``err.message`` and ``err.data.code``."""
    script = await Script.start(
        node,
        {
            "mode": "refused",
            "url": live_server.url,
            "widget_key": live_server.workspace["widget_key"],
            "external_id": "node-refused",
            "hmac": user_hmac("not-the-secret", "node-refused"),
        },
    )
    scripts.append(script)
    refused = await script.step("connect_error")
    assert refused["data"]["code"] == "invalid_hmac"
    assert refused["message"] == refused["data"]["message"] and refused["message"]
    await script.finish()
