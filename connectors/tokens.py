"""Provider access tokens kept in memory (``connectors.base.TokenCache``).

One instance lives for the app's lifespan (``chat.app``); the delivery listener hands it
to every connector that ``KeepsTokens``. A token is reused until shortly before it
expires; fetching is serialised per key, so many concurrent sends cause one token
request, and a token the provider refused is replaced once, not once per caller.

With several processes each keeps its own token. Providers that let only the newest
token work (WeChat keeps the previous one valid for five minutes) then see a refusal
now and then, which the connector answers with one refresh; a shared (Redis) cache
would be a second implementation of the same protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from connectors.base import AccessToken

# Refresh this long before the provider's expiry (at most a tenth of the lifetime).
DEFAULT_MARGIN = 300.0


class MemoryTokenCache:
    def __init__(
        self, *, margin: float = DEFAULT_MARGIN, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.margin = margin
        self.clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # key -> (token, refresh at)
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self,
        key: str,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        refused: str | None = None,
    ) -> str:
        cached = self._fresh(key, refused)
        if cached is not None:
            return cached
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._fresh(key, refused)  # another caller may have fetched meanwhile
            if cached is not None:
                return cached
            token = await fetch()
            lifetime = max(token.expires_in - min(self.margin, token.expires_in / 10), 0.0)
            self._tokens[key] = (token.value, self.clock() + lifetime)
            return token.value

    def forget(self, key: str) -> None:
        """Drop the token for ``key`` (its credentials changed)."""
        self._tokens.pop(key, None)

    def _fresh(self, key: str, refused: str | None) -> str | None:
        entry = self._tokens.get(key)
        if entry is None:
            return None
        value, refresh_at = entry
        if value == refused or self.clock() >= refresh_at:
            return None
        return value
