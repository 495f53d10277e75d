"""Where a connector's HTTP requests may go: its provider, and public addresses.

Connectors fetch some media themselves (WeChat and X upload the file an agent's message
links to), so an agent's URL, or a redirect from it, could make the server fetch from its
own network (a cloud metadata endpoint, an admin port). The provider's own API is
different: a workspace admin set ``api_base_url`` / ``token_url`` on purpose, and a test
fake or a self-hosted gateway may well live on a private address.

So the delivery listener names the channel's provider origins for the duration of a send
(``provider_origins``), and ``GuardedTransport``, under every connector's HTTP client,
lets requests to those origins through and checks every other request (each redirect
hop is a request of its own) with the outbound-webhook rule (``chat.services.egress``),
answering a refusal with ``GiveUp`` (``url_not_allowed``): retrying cannot help. With
``PARLEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` the guard is not installed.

A host's verdict is kept for a minute, so a busy send path does not resolve its
provider's name for every request; the name-changes-its-answer window that
``chat.services.egress`` describes applies here too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import httpx

from chat.services.egress import resolved_problem
from connectors.errors import GiveUp

Origin = tuple[str, int]

# The config keys that name a provider's own endpoints.
PROVIDER_URL_KEYS = ("api_base_url", "token_url")
VERDICT_SECONDS = 60.0

_allowed: ContextVar[frozenset[Origin]] = ContextVar("provider_origins", default=frozenset())


def _origin(scheme: str, host: str, port: int | None) -> Origin:
    return host.lower().rstrip("."), port or (443 if scheme == "https" else 80)


@contextmanager
def provider_origins(config: Mapping[str, Any]) -> Iterator[None]:
    """While this block runs (in this task), requests to the channel's provider URLs
    (``api_base_url``, ``token_url``) are not checked."""
    origins = set()
    for key in PROVIDER_URL_KEYS:
        value = config.get(key)
        if isinstance(value, str) and value:
            parts = urlsplit(value)
            if parts.hostname:
                origins.add(_origin(parts.scheme, parts.hostname, parts.port))
    token = _allowed.set(frozenset(origins))
    try:
        yield
    finally:
        _allowed.reset(token)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An HTTP transport that refuses non-public addresses outside the send's provider."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._verdicts: dict[Origin, tuple[float, str | None]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = _origin(url.scheme, url.host, url.port)
        if origin not in _allowed.get():
            problem = await self._problem(origin, str(url))
            if problem is not None:
                raise GiveUp(f"refused to call {url.host}: {problem}", code="url_not_allowed")
        return await self.inner.handle_async_request(request)

    async def _problem(self, origin: Origin, url: str) -> str | None:
        now = time.monotonic()
        known = self._verdicts.get(origin)
        if known is not None and now - known[0] < VERDICT_SECONDS:
            return known[1]
        problem = await resolved_problem(url)
        if len(self._verdicts) > 10_000:
            self._verdicts.clear()
        self._verdicts[origin] = (now, problem)
        return problem

    async def aclose(self) -> None:
        await self.inner.aclose()
