"""The ``parley`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

PARLEY = [sys.executable, "-m", "chat.cli"]


def run(args: list[str], db_url: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLEY_DATABASE_URL": db_url, "PARLEY_LOG_LEVEL": "warning"}
    return subprocess.run(
        PARLEY + args, env=env, capture_output=True, text=True, timeout=60, check=False, **kw  # type: ignore[call-overload]
    )


def test_workspace_and_agent_create_print_the_contract_json(db_url: str) -> None:
    r = run(["workspace", "create", "Acme"], db_url)
    assert r.returncode == 0, r.stderr
    keys = json.loads(r.stdout)
    assert {"workspace_id", "api_key", "widget_key", "identity_secret"} <= set(keys)

    r = run(
        ["agent", "create", "--workspace", keys["workspace_id"], "--email", "a@example.com",
         "--name", "Ann", "--role", "admin"],
        db_url,
    )
    assert r.returncode == 0, r.stderr
    agent = json.loads(r.stdout)
    assert set(agent) == {"agent_id", "password"} and len(agent["password"]) >= 12

    again = run(
        ["agent", "create", "--workspace", keys["workspace_id"], "--email", "a@example.com", "--name", "Ann"],
        db_url,
    )
    assert again.returncode == 1 and "agent_exists" in again.stderr


def test_agent_create_in_a_missing_workspace_fails_clearly(db_url: str) -> None:
    r = run(["agent", "create", "--workspace", "ws_nope", "--email", "a@b.c", "--name", "A"], db_url)
    assert r.returncode == 1 and "not_found" in r.stderr


def test_migrate_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    r = run(["migrate"], url)
    assert r.returncode == 0, r.stderr
    assert run(["migrate"], url).returncode == 0  # idempotent


@pytest.mark.slow
def test_serve_demo_on_an_empty_database_answers_at_once(tmp_path: Path) -> None:
    """`parley serve --demo` migrates an empty database, seeds, and serves what it printed."""
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        "PARLEY_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [*PARLEY, "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("api_key" in ln for ln in lines):
            lines.append(proc.stdout.readline())
        api_key = next(ln.split()[-1] for ln in lines if "api_key" in ln)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {api_key}"}
        sent = httpx.post(
            f"{base}/v1/messages", headers=auth,
            json={"channel": "inapp", "to": {"address": "visitor-1"}, "content": {"type": "text", "text": "Welcome!"}},
        )
        assert sent.status_code == 202, sent.text
        conv = sent.json()["messages"][0]["conversation_id"]
        history = httpx.get(f"{base}/v1/conversations/{conv}/messages", headers=auth).json()
        assert history["data"][0]["content"]["text"] == "Welcome!"
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
