"""The Android client stub (mobile-sdk-stubs/android) speaks the /client protocol to a live server.

Builds the Java stub with its build.sh (plain javac against Debian's libokhttp-java, libokio-java
and libandroid-json-java jars) and runs its `io.parley.client.Check` program as a subprocess
against the in-process `live_server`, driving it over stdout/stdin: the check prints one JSON
line per step; when it waits for an incoming message this test posts an agent reply over REST.

Without javac or the jars the tests skip, unless PARLEY_REQUIRE_SERVICES=1 (CI), where they fail.
"""

import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ANDROID_DIR = Path(__file__).resolve().parents[2] / "mobile-sdk-stubs" / "android"
INSTALL_HINT = (
    "apt-get install -y default-jdk-headless libokhttp-java libokio-java libandroid-json-java"
)
AGENT_TEXT = "hello from agent"
OFFLINE_TEXT = "sent while offline"
STEP_TIMEOUT = 60  # seconds to wait for the next line of the check program


def _unavailable(reason: str) -> None:
    if os.environ.get("PARLEY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PARLEY_REQUIRE_SERVICES=1; install with: {INSTALL_HINT})")
    pytest.skip(f"{reason}; install with: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def android_classpath(tmp_path_factory) -> str:
    """Builds the stub into a temporary directory; returns the runtime classpath."""
    if shutil.which("javac") is None or shutil.which("java") is None:
        _unavailable("no JDK (javac/java) on PATH")
    out = tmp_path_factory.mktemp("android-build")
    proc = subprocess.run(
        ["bash", str(ANDROID_DIR / "build.sh"), str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode == 3:  # build.sh: a jar or javac is missing
        _unavailable(proc.stderr.strip())
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return (out / "classpath").read_text().strip()


def test_the_install_hint_names_every_package_build_sh_needs():
    """The skip message is a newcomer's instructions: every jar build.sh looks for is in it."""
    build_sh = (ANDROID_DIR / "build.sh").read_text()
    needed = set(re.findall(r"apt-get install (lib[a-z-]+-java)\)", build_sh))
    assert needed == {"libokhttp-java", "libokio-java", "libandroid-json-java"}
    assert needed <= set(INSTALL_HINT.split())


def test_android_packet_codec(android_classpath):
    """Offline: Engine.IO/Socket.IO packet encoding and decoding of the Java stub."""
    proc = subprocess.run(
        ["java", "-cp", android_classpath, "io.parley.client.ProtocolSelfTest"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed, 0 failed" in proc.stdout


async def _post_agent_reply(live_server, conversation_id: str, text: str) -> None:
    resp = await live_server.http.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"content": {"type": "text", "text": text}, "author": {"type": "agent"}},
    )
    assert resp.status_code in (200, 201, 202), resp.text


async def _run_check(live_server, classpath: str, *extra: str) -> dict:
    """Runs the Java check, answers its waits, returns {step name: JSON line}."""
    workspace = live_server.workspace
    external_id = f"android-{uuid.uuid4().hex[:10]}"
    user_hmac = hmac.new(
        workspace["identity_secret"].encode(), external_id.encode(), hashlib.sha256
    ).hexdigest()
    args = {
        "--url": live_server.url,
        "--widget-key": workspace["widget_key"],
        "--external-id": external_id,
        "--hmac": user_hmac,
        "--name": "Android Check",
        "--email": f"{external_id}@example.com",
        "--timeout": "20",
        "--expect-text": AGENT_TEXT,
    }
    proc = await asyncio.create_subprocess_exec(
        "java",
        "-cp",
        classpath,
        "io.parley.client.Check",
        *[item for pair in args.items() for item in pair],
        *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    stderr_task = asyncio.create_task(proc.stderr.read())
    steps: dict = {}
    transcript: list[str] = []

    def report() -> str:
        err = stderr_task.result().decode(errors="replace") if stderr_task.done() else ""
        return "\n".join(transcript) + ("\n--- stderr ---\n" + err if err else "")

    try:
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), timeout=STEP_TIMEOUT)
            if not raw:
                break
            line = raw.decode().strip()
            transcript.append(line)
            try:
                step = json.loads(line)
            except ValueError:
                continue  # not a step line
            name = step.get("step")
            steps[name] = step
            if not step.get("ok"):
                break
            if name == "waiting_incoming":
                await _post_agent_reply(live_server, step["conversation_id"], AGENT_TEXT)
            elif name == "offline":
                # posted while the client is away: must come back through the automatic resync
                await _post_agent_reply(live_server, step["conversation_id"], OFFLINE_TEXT)
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            elif name == "done":
                break
        rc = await asyncio.wait_for(proc.wait(), timeout=STEP_TIMEOUT)
    except TimeoutError:
        pytest.fail(f"the Java check hung; output so far:\n{transcript}")
    finally:
        if proc.returncode is None:  # hung, or this side failed: do not leave the JVM behind
            proc.kill()
            await proc.wait()
        await stderr_task
    assert rc == 0 and "done" in steps, f"Java check failed (exit {rc}):\n{report()}"
    return steps


async def test_android_client_against_live_server(live_server, android_classpath):
    steps = await _run_check(live_server, android_classpath)

    conversation_id = steps["send_new"]["conversation_id"]
    assert steps["session"]["contact_id"]
    assert steps["send_existing"]["conversation_id"] == conversation_id
    seq1, seq2 = steps["send_new"]["seq"], steps["send_existing"]["seq"]
    assert seq2 > seq1
    resynced = steps["resync"]["seqs"]
    assert seq1 in resynced and seq2 in resynced and resynced == sorted(resynced)
    assert steps["register_push"]["ack"]["ok"] is True
    assert steps["incoming"]["text"] == AGENT_TEXT
    assert steps["incoming"]["seq"] > seq2

    # the server stored what the client sent
    resp = await live_server.http.get(f"/v1/conversations/{conversation_id}/messages")
    assert resp.status_code == 200, resp.text
    for text in (
        "hello from the android check (1)",
        "hello from the android check (2)",
        AGENT_TEXT,
    ):
        assert text in resp.text


async def test_android_client_resumes_and_resyncs_after_reconnect(live_server, android_classpath):
    steps = await _run_check(
        live_server, android_classpath, "--reconnect-check", "--offline-text", OFFLINE_TEXT
    )

    contact_id = steps["session"]["contact_id"]
    assert steps["resumed"]["contact_id"] == contact_id
    assert steps["resynced_after_reconnect"]["text"] == OFFLINE_TEXT
    assert steps["resynced_after_reconnect"]["seq"] > steps["incoming"]["seq"]
    assert steps["auto_reconnect"]["contact_id"] == contact_id
    assert steps["auto_reconnect"]["seq"] > steps["resynced_after_reconnect"]["seq"]
