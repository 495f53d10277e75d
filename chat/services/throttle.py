"""Rate limits for the edges: token buckets per caller, in process or shared in Redis.

``Throttle`` holds the policy (which key, how fast); a ``Buckets`` store keeps the
tokens. Without Redis each process counts alone; with ``PARLEY_REDIS_URL`` every
process draws from the same buckets (one atomic Lua script per request).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from chat.domain.errors import RateLimited
from chat.settings import Settings


class Buckets(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> float:
        """Take one token from ``key``'s bucket (``rate`` tokens a second, at most
        ``burst``): 0 when there was one, else the seconds until there will be."""

    async def close(self) -> None: ...


class MemoryBuckets:
    """One process's buckets; the least recently used are dropped past ``max_keys``
    (a dropped bucket comes back full, which only ever errs on the caller's side)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, rate: float, burst: int) -> float:
        now = self.clock()
        tokens, stamp = self._state.pop(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self._state[key] = (tokens, now)
        if len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return wait

    async def close(self) -> None:
        self._state.clear()


# KEYS[1] the bucket; ARGV rate, burst. Redis's own clock, so processes need not agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(v[1]) or burst
local stamp = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    def __init__(self, url: str, prefix: str = "parley:rl:") -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(url)
        self.prefix = prefix
        self._script = self.redis.register_script(_TAKE)

    async def take(self, key: str, rate: float, burst: int) -> float:
        wait = await self._script(keys=[self.prefix + key], args=[rate, burst])
        return float(wait)

    async def close(self) -> None:
        await self.redis.aclose()


def buckets_for(redis_url: str | None) -> Buckets:
    return RedisBuckets(redis_url) if redis_url else MemoryBuckets()


class Throttle:
    """Who may call how often. Raises ``RateLimited`` (429, with ``retry_after``)."""

    def __init__(self, buckets: Buckets, settings: Settings) -> None:
        self.buckets = buckets
        self.settings = settings

    async def api(self, caller: str) -> None:
        """One authenticated REST request by ``caller`` (a workspace's API keys, or an agent)."""
        s = self.settings
        await self._take(f"api:{caller}", s.api_rate_per_second, s.api_rate_burst)

    async def connect(self, client_ip: str) -> None:
        """One socket connection (to any namespace) from ``client_ip``."""
        per_minute = self.settings.socket_connects_per_minute
        await self._take(f"connect:{client_ip}", per_minute / 60, per_minute)

    async def login(self, client_ip: str, email: str) -> None:
        """One login attempt: limited per address and account, and per address alone."""
        per_minute = self.settings.login_attempts_per_minute
        await self._take(f"login:{client_ip}", 10 * per_minute / 60, 10 * per_minute)
        await self._take(f"login:{client_ip}:{email.strip().casefold()}", per_minute / 60, per_minute)

    async def _take(self, key: str, rate: float, burst: int) -> None:
        wait = await self.buckets.take(key, rate, burst)
        if wait > 0:
            # Whole seconds, rounded up: the message and Retry-After say the same.
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many requests; try again in {seconds} s", retry_after=seconds
            )

    async def close(self) -> None:
        await self.buckets.close()
