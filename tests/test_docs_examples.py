"""The README's and docs/*.md's shell and Python examples work as written on a fresh demo.

Each document runs against its own ``parley serve --demo`` (a subprocess on 127.0.0.1 and a
free port, with no PARLEY_* settings but the database). Every ```sh and ```python block runs,
in order, command by command; a block right after the line
``<!-- docs-example: not run (reason) -->`` is an illustration and is skipped (the few there
are install commands and excerpts for other programs).

What a reader fills in, the test fills in the same way (README.md says so):

- ``localhost:8000`` is the server: here ``127.0.0.1:<port>``.
- ``pk_…`` (or ``pk_...``), ``ws_…``, ``cnv_…``… stand for the last value of that kind printed
  before: by the demo or by an earlier command of the same document.
- a password given as ``"…"`` is the last password printed (the demo's agent login,
  ``parley agent create``).

A command fails the test when it exits non-zero; ``curl`` runs with ``--fail-with-body``, so an
HTTP error status is a failure too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!-- docs-example: not run \(.+\) -->")
FENCE = re.compile(r"^```(\w*)\s*$")
RUN_LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python"}
PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9_])([a-z]{2,5})_(?:…|\.\.\.)")
PASSWORD = re.compile(r"(password[\"']?\s*[:=]\s*)\"…\"", re.IGNORECASE)
PRINTED_ID = re.compile(r"^([a-z]{2,5})_[A-Za-z0-9_-]{6,}$")
BIN = Path(sys.executable).parent
# A shell for one command: what earlier commands set, and curl failing on HTTP errors.
PREAMBLE = 'set -a; . "$STATE"; curl() { command curl --fail-with-body --show-error "$@"; }\n'
EPILOGUE = '\nstatus=$?; export -p > "$STATE"; exit $status\n'


@dataclass
class Block:
    document: str
    line: int
    language: str  # "sh" or "python"
    text: str
    run: bool


def blocks(document: str) -> list[Block]:
    found: list[Block] = []
    lines = (ROOT / document).read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        language = RUN_LANGUAGES.get(fence.group(1))
        if language:
            marked = start > 0 and bool(NOT_RUN.fullmatch(lines[start - 1].strip()))
            found.append(Block(document, start + 1, language, "\n".join(body) + "\n", not marked))
    return found


def commands(script: str) -> Iterator[str]:
    """One shell command at a time: lines joined while a ``\\`` or a ``'`` is open."""
    pending = ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if pending.count("'") % 2 == 0 and not line.rstrip().endswith("\\"):
            yield pending
            pending = ""
    assert not pending, f"unfinished command: {pending}"


@dataclass
class Reader:
    """What a reader knows: the server's address and every value printed so far."""

    port: int
    printed: dict[str, str] = field(default_factory=dict)
    password: str | None = None

    def learn(self, output: str) -> None:
        for text in [output, *output.splitlines()]:
            try:
                self._walk(json.loads(text))
            except ValueError:
                continue
            if text is output:
                return

    def learn_demo(self, output: str) -> None:
        for line in output.splitlines():
            words = line.split()
            if len(words) == 2 and PRINTED_ID.match(words[1]):
                self.printed[words[1].split("_", 1)[0]] = words[1]
            if line.strip().startswith("agent login"):
                self.password = line.rsplit("/", 1)[1].strip()

    def _walk(self, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "password" and isinstance(item, str):
                    self.password = item
                self._walk(item)
        elif isinstance(value, list):
            for item in value:
                self._walk(item)
        elif isinstance(value, str) and PRINTED_ID.match(value):
            self.printed[value.split("_", 1)[0]] = value

    def fill_in(self, text: str) -> str:
        text = text.replace("localhost:8000", f"127.0.0.1:{self.port}")
        text = PLACEHOLDER.sub(lambda m: self.printed.get(m.group(1), m.group(0)), text)
        if self.password is not None:
            text = PASSWORD.sub(lambda m: m.group(1) + json.dumps(self.password), text)
        return text


@pytest.fixture
def demo(db_url: str, tmp_path: Path) -> Iterator[tuple[Reader, dict[str, str]]]:
    """A fresh ``parley serve --demo``; the reader has read its output."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_DATABASE_URL=db_url, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.Popen(
        ["parley", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        shown = ""
        for line in proc.stdout:
            shown += line
            if "Ctrl+C" in line:
                break
        assert "api_key" in shown, shown
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        reader = Reader(port)
        reader.learn_demo(shown)
        yield reader, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_block(block: Block, reader: Reader, env: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "shell-state"
    state.touch()
    where = f"{block.document}:{block.line}"
    if block.language == "python":
        script = tmp_path / "example.py"
        script.write_text(reader.fill_in(block.text))
        done = subprocess.run(
            [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True,
            text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, f"{where}\n{script.read_text()}\n{done.stdout}\n{done.stderr}"
        reader.learn(done.stdout)
        return
    for command in commands(block.text):
        filled = reader.fill_in(command)
        done = subprocess.run(
            ["bash", "-c", PREAMBLE + filled + EPILOGUE], env={**env, "STATE": str(state)},
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, f"{where}\n$ {filled}\n{done.stdout}\n{done.stderr}"
        reader.learn(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_examples_of_each_document_work_as_written(
    document: str, demo: tuple[Reader, dict[str, str]], tmp_path: Path
) -> None:
    reader, env = demo
    for block in blocks(document):
        if block.run:
            run_block(block, reader, env, tmp_path)


def test_only_a_few_blocks_are_marked_not_run_and_each_says_why() -> None:
    marked = [b for d in DOCUMENTS for b in blocks(d) if not b.run]
    assert len(marked) <= 4, [(b.document, b.line) for b in marked]
    # A marker that is not right above a block would silently mark nothing.
    for document in DOCUMENTS:
        lines = (ROOT / document).read_text().splitlines()
        for i, line in enumerate(lines):
            if NOT_RUN.fullmatch(line.strip()):
                assert i + 1 < len(lines) and FENCE.match(lines[i + 1]), f"{document}:{i + 1}"


def test_the_readme_opens_with_one_command_to_run_and_one_to_test() -> None:
    first, second = blocks("README.md")[:2]
    assert "parley serve --demo" in first.text and "pip install -e ." in first.text
    assert "python -m pytest" in second.text and "'.[test]'" in second.text
    assert len(first.text.strip().splitlines()) == len(second.text.strip().splitlines()) == 1


def test_ci_runs_the_readmes_test_command() -> None:
    readme_test = blocks("README.md")[1].text.strip()
    ci = (ROOT / ".ci" / "run").read_text().replace("pip install -q ", "pip install ")
    assert readme_test in ci


def test_the_dependencies_ask_only_for_extras_that_exist() -> None:
    """pip warned that python-socketio has no extra ``asyncio_client`` (it is asyncio-client)."""
    import tomllib
    from importlib.metadata import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    for requirement in requirements:
        name, _, rest = requirement.partition("[")
        if not rest:
            continue
        wanted = rest.split("]", 1)[0].split(",")
        provided = metadata(name).get_all("Provides-Extra") or []
        for extra in wanted:
            assert extra.strip() in provided, f"{name} has no extra {extra!r}: {provided}"


def test_the_python_client_needs_only_the_core_dependencies() -> None:
    """The README's Python sample runs after the README's install (no extra named)."""
    import tomllib

    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(r.startswith("python-socketio[asyncio-client]") for r in core)
    assert any(r.startswith("aiohttp") for r in core)
