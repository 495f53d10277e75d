"""Shared browser fixtures: Debian's Chromium driven by Playwright (async API).

Playwright never downloads a browser here: it launches the ``chromium`` on the PATH
(``apt-get install chromium``) with ``--no-sandbox --disable-gpu``. Without it, or without
the ``playwright`` package, the browser tests skip (fail under PARLEY_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import REQUIRE


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and PARLEY_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        _missing("chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    """A headless Chromium for one test; each test opens its own contexts in it."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
