"""The committed inbox build (chat/static/inbox/) is what web-inbox/'s sources build to.

``npm ci`` installs the locked versions into a copy of web-inbox/ in a temporary
directory, ``npm run build`` builds there into another temporary directory, and every
file must equal the committed one byte for byte (and no file may be missing or extra).
Needs node and npm; without them the test skips (fails under PARLEY_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "web-inbox"
COMMITTED = ROOT / "chat" / "static" / "inbox"
TIMEOUT = 600


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _run(args: list[str], cwd: Path) -> None:
    try:
        r = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        _missing(f"{' '.join(args)} took over {TIMEOUT}s")
    if r.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed in {cwd}:\n{r.stdout}\n{r.stderr}")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_committed_inbox_build_matches_its_sources(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        _missing("node and npm are needed to rebuild the inbox")
    assert npm is not None
    work = tmp_path / "web-inbox"
    shutil.copytree(SOURCES, work, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "out"
    _run([npm, "ci", "--no-audit", "--no-fund"], work)
    _run([npm, "run", "build", "--", str(out)], work)

    built, committed = _files(out), _files(COMMITTED)
    assert sorted(built) == sorted(committed), "files differ: run npm run build in web-inbox/"
    stale = [name for name in built if built[name] != committed[name]]
    assert stale == [], "the committed build is stale: run npm run build in web-inbox/ and commit"
