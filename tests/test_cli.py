"""The ``parley`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.cli import PUBLISHED_SECRET_KEYS, _parser
from tests.conftest import free_port

PARLEY = [sys.executable, "-m", "chat.cli"]
# The docs' own examples and the usual reserved test names pass; malformed addresses do not.
ACCEPTED_EMAILS = ["ann@acme.test", "demo@parley.local", "ada@example.com", "bo@intranet.localhost"]
REFUSED_EMAILS = ["ann", "ann@acme", "ann@acme..test", "ann@x.onion", "ann smith@acme.test"]


def run(args: list[str], db_url: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: no PARLEY_LOG_LEVEL, so its own defaults apply."""
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_LOG_LEVEL"}
    env["PARLEY_DATABASE_URL"] = db_url
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
        while time.monotonic() < deadline and not any("the agent inbox" in ln for ln in lines):
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
        assert any(f"open {base}/inbox (the agent inbox; log in as demo@parley.local / " in ln for ln in lines)
        inbox = httpx.get(f"{base}/inbox")
        assert inbox.status_code == 200 and "/inbox/assets/inbox.js" in inbox.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def ok_json(args: list[str], db_url: str) -> Any:
    r = run(args, db_url)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_version(tmp_path: Path) -> None:
    from chat.api.system import _version

    r = run(["--version"], f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    assert r.returncode == 0 and r.stdout.strip() == f"parley {_version()}"


def test_commands_are_quiet_by_default_and_tell_more_with_verbose(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    quiet = run(["workspace", "create", "Acme"], url)  # migrates the empty database too
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert run(["migrate"], url).stderr == ""
    verbose = run(["migrate", "--verbose"], url)
    assert verbose.returncode == 0 and "INFO alembic" in verbose.stderr
    assert "INFO alembic" in run(["-v", "workspace", "list"], url).stderr


def test_every_command_and_option_has_help_text() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for sub, subparser in action.choices.items():
                    if not helps.get(sub):
                        missing.append(f"{name} {sub}")
                    walk(subparser, f"{name} {sub}")
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(_parser(), "parley")
    assert missing == []
    for command in (["workspace", "rotate-key"], ["agent", "reset-password"], ["serve"]):
        shown = subprocess.run([*PARLEY, *command, "--help"], capture_output=True, text=True, check=False)
        assert shown.returncode == 0 and "--verbose" in shown.stdout


def test_workspace_list_shows_every_workspace_without_secrets(db_url: str) -> None:
    acme = ok_json(["workspace", "create", "Acme"], db_url)
    globex = ok_json(["workspace", "create", "Globex"], db_url)
    listed = ok_json(["workspace", "list"], db_url)
    assert [(w["workspace_id"], w["name"]) for w in listed] == [
        (acme["workspace_id"], "Acme"), (globex["workspace_id"], "Globex")
    ]
    assert set(listed[0]) == {"workspace_id", "name", "widget_key", "created_at"}


async def test_rotate_key_stops_the_old_api_key_at_once(db_url: str, services: Any) -> None:
    keys = ok_json(["workspace", "create", "Acme"], db_url)
    ws = keys["workspace_id"]
    rotated = ok_json(["workspace", "rotate-key", ws, "--which", "api_key"], db_url)
    assert await services.workspaces.by_api_key(keys["api_key"]) is None
    assert await services.workspaces.by_api_key(rotated["api_key"]) == ws


async def test_rotate_key_with_grace_keeps_the_old_api_key_working_until_then(
    db_url: str, services: Any
) -> None:
    keys = ok_json(["workspace", "create", "Acme"], db_url)
    ws = keys["workspace_id"]
    graced = ok_json(["workspace", "rotate-key", ws, "--grace", "3600"], db_url)
    assert await services.workspaces.by_api_key(keys["api_key"]) == ws  # for an hour
    assert await services.workspaces.by_api_key(graced["api_key"]) == ws
    # Rotating again without grace ends every older key's grace too.
    latest = ok_json(["workspace", "rotate-key", ws], db_url)
    assert await services.workspaces.by_api_key(keys["api_key"]) is None
    assert await services.workspaces.by_api_key(graced["api_key"]) is None
    assert await services.workspaces.by_api_key(latest["api_key"]) == ws


async def test_rotate_key_replaces_the_widget_key_and_identity_secret_at_once(
    db_url: str, services: Any
) -> None:
    keys = ok_json(["workspace", "create", "Acme"], db_url)
    ws = keys["workspace_id"]
    widget = ok_json(["workspace", "rotate-key", ws, "--which", "widget_key"], db_url)
    assert await services.workspaces.by_widget_key(keys["widget_key"]) is None
    assert (await services.workspaces.by_widget_key(widget["widget_key"])).id == ws
    secret = ok_json(["workspace", "rotate-key", ws, "--which", "identity_secret"], db_url)
    assert secret["identity_secret"] != keys["identity_secret"]
    assert (await services.workspaces.get(ws)).identity_secret == secret["identity_secret"]
    refused = run(["workspace", "rotate-key", ws, "--which", "widget_key", "--grace", "60"], db_url)
    assert refused.returncode == 1 and "grace_not_supported" in refused.stderr
    missing = run(["workspace", "rotate-key", "ws_nope"], db_url)
    assert missing.returncode == 1 and "not_found" in missing.stderr


async def test_agent_reset_password_prints_a_new_password_and_the_old_one_stops(
    db_url: str, services: Any
) -> None:
    ws = ok_json(["workspace", "create", "Acme"], db_url)["workspace_id"]
    agent = ok_json(
        ["agent", "create", "--workspace", ws, "--email", "ann@acme.test", "--name", "Ann"], db_url
    )
    reset = ok_json(["agent", "reset-password", "--workspace", ws, "--email", "Ann@Acme.test"], db_url)
    assert reset["agent_id"] == agent["agent_id"] and reset["password"] != agent["password"]
    assert (await services.agents.login("ann@acme.test", reset["password"], ws))["agent"]["id"]
    with pytest.raises(Exception, match="wrong email or password"):
        await services.agents.login("ann@acme.test", agent["password"], ws)
    nobody = run(["agent", "reset-password", "--workspace", ws, "--email", "bob@acme.test"], db_url)
    assert nobody.returncode == 1 and "not_found" in nobody.stderr


def test_agent_create_checks_emails_by_the_rest_apis_rule(db_url: str) -> None:
    """The rule is chat.domain.emails.normalise_email; tests/api/test_email_rule.py
    runs the same addresses through POST /v1/agents."""
    ws = ok_json(["workspace", "create", "Acme"], db_url)["workspace_id"]
    for email in ACCEPTED_EMAILS:
        ok_json(["agent", "create", "--workspace", ws, "--email", email, "--name", "Ann"], db_url)
    for email in REFUSED_EMAILS:
        r = run(["agent", "create", "--workspace", ws, "--email", email, "--name", "Ann"], db_url)
        assert r.returncode == 1, email
        error = json.loads(r.stderr)["error"]
        assert error["code"] == "validation_error" and error["details"][0]["loc"] == ["email"]


def read_demo(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The demo's printed keys, read up to the line saying where it listens."""
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    for line in proc.stdout:
        words = line.split()
        if len(words) >= 2 and words[0] in {"workspace_id", "api_key", "widget_key", "identity_secret"}:
            printed[words[0]] = words[1]
        elif line.strip().startswith("agent login"):
            printed["login"] = line.split("login", 1)[1].strip()
        elif "Ctrl+C" in line:
            return printed
    raise AssertionError(f"serve --demo ended early: {printed}")


def serve_demo_once(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_LOG_LEVEL"}
    env["PARLEY_DATABASE_URL"] = db_url
    proc = subprocess.Popen(
        [*PARLEY, "serve", "--demo", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        return read_demo(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_serve_demo_seeds_once_and_prints_the_same_keys_and_login_again(db_url: str) -> None:
    first = serve_demo_once(db_url)
    second = serve_demo_once(db_url)
    assert first == second
    assert first["api_key"].startswith("pk_") and first["login"].startswith("demo@parley.local / ")
    demos = [w for w in ok_json(["workspace", "list"], db_url) if w["name"] == "Demo"]
    assert [w["workspace_id"] for w in demos] == [first["workspace_id"]]


@pytest.mark.slow
def test_serve_demo_says_when_a_printed_key_was_rotated_since(db_url: str) -> None:
    first = serve_demo_once(db_url)
    ok_json(["workspace", "rotate-key", first["workspace_id"]], db_url)
    again = serve_demo_once(db_url)
    assert again["workspace_id"] == first["workspace_id"] and again["api_key"] == "(rotated"


def test_serve_on_a_busy_port_says_so_before_writing_anything(tmp_path: Path) -> None:
    db = tmp_path / "untouched.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(["serve", "--demo", "--host", "127.0.0.1", "--port", str(port)], f"sqlite+aiosqlite:///{db}")
    assert r.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in r.stderr
    assert r.stdout == "" and not db.exists()


def test_serve_refuses_the_secret_key_once_published_in_compose_yaml(tmp_path: Path) -> None:
    db = tmp_path / "untouched.db"
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_LOG_LEVEL"}
    env.update(
        PARLEY_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        PARLEY_SECRET_KEY="change-me-to-a-long-random-string",
    )
    r = subprocess.run(
        [*PARLEY, "serve", "--port", str(free_port())], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert r.returncode == 2 and "PARLEY_SECRET_KEY is a published example value" in r.stderr
    assert not db.exists()


def test_compose_leaves_the_secret_key_to_parley_and_says_what_it_runs(repo_root: Path) -> None:
    import yaml

    text = (repo_root / "compose.yaml").read_text()
    parley = yaml.safe_load(text)["services"]["parley"]
    # Unset in the environment -> empty -> Parley generates one and keeps it in the database.
    assert parley["environment"]["PARLEY_SECRET_KEY"] == "${PARLEY_SECRET_KEY:-}"
    assert not any(key in text for key in PUBLISHED_SECRET_KEYS)
    assert "runs ONE Parley process" in text and "Two Parley processes" not in text
