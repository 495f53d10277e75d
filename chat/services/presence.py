"""Who is online: agents and contacts, counted by their open connections.

An agent with three tabs is online until the last tab closes. Every connection is a
``sid``; a person is online while at least one sid of theirs is alive. Going online
or offline publishes ``presence.changed`` on the bus (the real-time fan-out turns it
into a ``presence`` event for the workspace's agents).

Two stores keep the sids, chosen by configuration:

- ``MemoryPresence``: one process, a dict of sets.
- ``RedisPresence``: many processes. Each person has a sorted set of sids scored by
  expiry time; every process refreshes the scores of its own sids on a heartbeat, so
  the sids of a process that died expire instead of keeping people online forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from chat.bus import Bus, DomainEvent
from chat.services.views import PresenceView

log = logging.getLogger(__name__)

AGENT = "agent"
CONTACT = "contact"


@dataclass(frozen=True, slots=True)
class Person:
    workspace_id: str
    kind: str  # "agent" | "contact"
    id: str


class PresenceStore(Protocol):
    async def add(self, person: Person, sid: str) -> int:
        """Register ``sid``; the number of live sids of ``person`` afterwards."""

    async def remove(self, person: Person, sid: str) -> int | None:
        """Forget ``sid``; the number left, or None if ``sid`` was not registered."""

    async def online(self, workspace_id: str) -> list[Person]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Presence:
    """Joins and leaves of connections; publishes a change when a person's count crosses zero."""

    def __init__(self, bus: Bus, store: PresenceStore) -> None:
        self.bus = bus
        self.store = store

    async def join(self, person: Person, sid: str) -> bool:
        """True if ``person`` just came online."""
        came_online = await self.store.add(person, sid) == 1
        if came_online:
            await self._publish(person, True)
        return came_online

    async def leave(self, person: Person, sid: str) -> bool:
        """True if ``person`` just went offline."""
        left = await self.store.remove(person, sid)
        went_offline = left == 0
        if went_offline:
            await self._publish(person, False)
        return went_offline

    async def online(self, workspace_id: str) -> list[PresenceView]:
        people = await self.store.online(workspace_id)
        return [{"type": p.kind, "id": p.id, "online": True} for p in people]

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def _publish(self, person: Person, online: bool) -> None:
        await self.bus.publish(
            [
                DomainEvent(
                    "presence.changed",
                    person.workspace_id,
                    {"type": person.kind, "id": person.id, "online": online},
                )
            ]
        )


class MemoryPresence:
    def __init__(self) -> None:
        self._sids: dict[Person, set[str]] = {}

    async def add(self, person: Person, sid: str) -> int:
        sids = self._sids.setdefault(person, set())
        sids.add(sid)
        return len(sids)

    async def remove(self, person: Person, sid: str) -> int | None:
        sids = self._sids.get(person)
        if sids is None or sid not in sids:
            return None
        sids.discard(sid)
        if not sids:
            del self._sids[person]
        return len(sids)

    async def online(self, workspace_id: str) -> list[Person]:
        return sorted((p for p in self._sids if p.workspace_id == workspace_id), key=_order)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._sids.clear()


class RedisPresence:
    """Sorted set ``parley:presence:<ws>:<kind>:<id>`` of sids scored by expiry (unix s);
    set ``parley:online:<ws>`` of ``<kind>:<id>`` that may be online (checked on read)."""

    def __init__(self, url: str, ttl_seconds: float = 60.0, prefix: str = "parley") -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.Redis.from_url(url, decode_responses=True)
        self.ttl = ttl_seconds
        self.prefix = prefix
        self._local: dict[Person, set[str]] = {}  # this process's sids, for the heartbeat
        self._heartbeat: asyncio.Task[None] | None = None

    def _key(self, person: Person) -> str:
        return f"{self.prefix}:presence:{person.workspace_id}:{person.kind}:{person.id}"

    def _index(self, workspace_id: str) -> str:
        return f"{self.prefix}:online:{workspace_id}"

    async def add(self, person: Person, sid: str) -> int:
        self._local.setdefault(person, set()).add(sid)
        key, now = self._key(person), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {sid: now + self.ttl})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            pipe.expire(key, int(self.ttl * 2) + 1)
            pipe.sadd(self._index(person.workspace_id), f"{person.kind}:{person.id}")
            _, _, count, _, _ = await pipe.execute()
        return int(count)

    async def remove(self, person: Person, sid: str) -> int | None:
        local = self._local.get(person)
        if local is not None:
            local.discard(sid)
            if not local:
                del self._local[person]
        key, now = self._key(person), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(key, sid)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            removed, _, count = await pipe.execute()
        if not removed:
            return None
        if int(count) == 0:
            await self.redis.srem(self._index(person.workspace_id), f"{person.kind}:{person.id}")
        return int(count)

    async def online(self, workspace_id: str) -> list[Person]:
        members = await self.redis.smembers(self._index(workspace_id))
        people = [Person(workspace_id, *m.split(":", 1)) for m in members if ":" in m]
        if not people:
            return []
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for person in people:
                pipe.zcount(self._key(person), now, "+inf")
            counts = await pipe.execute()
        return sorted((p for p, n in zip(people, counts, strict=True) if n), key=_order)

    async def start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self.redis.aclose()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._refresh(list(self._local.items()))
            except Exception:  # Redis away for a moment: the next beat tries again
                log.warning("presence heartbeat failed", exc_info=True)

    async def _refresh(self, entries: Iterable[tuple[Person, set[str]]]) -> None:
        expiry = time.time() + self.ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for person, sids in entries:
                if sids:
                    pipe.zadd(self._key(person), {sid: expiry for sid in sids}, xx=True)
                    pipe.expire(self._key(person), int(self.ttl * 2) + 1)
            await pipe.execute()


def presence_store(redis_url: str | None, ttl_seconds: float) -> PresenceStore:
    return RedisPresence(redis_url, ttl_seconds) if redis_url else MemoryPresence()


def _order(person: Person) -> tuple[str, str]:
    return (person.kind, person.id)
