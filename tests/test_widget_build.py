"""The committed ``chat/static/widget.js`` is exactly what ``web-widget/``'s sources build.

A copy of the sources (package.json, package-lock.json, build.mjs, tsconfig.json, src/) is
built in a temporary folder with ``npm ci``, ``npm run typecheck`` and ``npm run build --
--outfile``; the test fails when the result differs from the committed file (rebuild with
``cd web-widget && npm ci && npm run build`` and commit both). Needs ``node`` and ``npm``
(and the npm registry, or npm's cache); without them it skips (fails under
PARLEY_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "web-widget"
BUILT = ROOT / "chat" / "static" / "widget.js"
BUDGET_GZIPPED = 60 * 1024
TIMEOUT = 600


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _npm(npm: str, args: list[str], cwd: Path) -> None:
    try:
        r = subprocess.run(
            [npm, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm {' '.join(args)} took over {TIMEOUT}s")
    if r.returncode != 0:
        if args[0] == "ci":  # the registry out of reach is an environment problem
            _missing(f"npm ci failed (is the npm registry reachable?):\n{r.stderr[-2000:]}")
        pytest.fail(f"npm {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def test_the_committed_widget_is_the_build_of_its_sources(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        _missing("node and npm are needed to rebuild the widget")
    assert npm is not None
    work = tmp_path / "web-widget"
    work.mkdir()
    for name in ["package.json", "package-lock.json", "build.mjs", "tsconfig.json"]:
        shutil.copy2(SOURCES / name, work / name)
    shutil.copytree(SOURCES / "src", work / "src")
    _npm(npm, ["ci", "--no-audit", "--no-fund"], work)
    _npm(npm, ["run", "typecheck"], work)
    out = tmp_path / "widget.js"
    _npm(npm, ["run", "build", "--", "--outfile", str(out)], work)
    assert out.read_bytes() == BUILT.read_bytes(), (
        "chat/static/widget.js differs from a build of web-widget/: run "
        "`cd web-widget && npm ci && npm run build` and commit the result"
    )


def test_the_widget_fits_its_budget() -> None:
    """At most 60 KB gzipped, socket.io-client included (README: "Web widget")."""
    size = len(gzip.compress(BUILT.read_bytes(), 9))
    assert size <= BUDGET_GZIPPED, f"widget.js is {size} bytes gzipped"
