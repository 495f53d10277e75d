"""The lean event path (chat/realtime/dispatch.py): one connection's events run in the
order sent, one at a time; a slow handler holds up only its own connection; a flood
makes the reader wait instead of queueing without end."""

from __future__ import annotations

import asyncio
from typing import Any

from chat.realtime.dispatch import INBOX_LIMIT, Dispatcher, Inbox


class Socket:
    """An Engine.IO socket as the dispatcher sees it: it takes frames directly."""

    def __init__(self) -> None:
        self.inbox: Inbox | None = None
        self.frames: list[str] = []

    def offer(self, frame: str) -> bool:
        self.frames.append(frame)
        return True


class Namespace:
    """Records each event; ``gate`` holds the handler of an event named ``slow``."""

    lean_dispatch = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.running = 0
        self.most_at_once = 0
        self.gate = asyncio.Event()

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if event == "slow":
                await self.gate.wait()
            await asyncio.sleep(0)
            self.seen.append((args[0], args[1]))
            return {"ok": True, "n": args[1]}
        finally:
            self.running -= 1


async def settle(socket: Socket) -> None:
    while socket.inbox is not None:
        await asyncio.sleep(0)


async def test_events_of_one_connection_run_in_order_one_at_a_time_and_are_acked() -> None:
    sent: list[tuple[str, str]] = []

    async def send(eio_sid: str, data: str) -> None:
        sent.append((eio_sid, data))

    ns, sock = Namespace(), Socket()
    dispatcher = Dispatcher(send)
    for n in range(10):
        await dispatcher.enqueue(sock, "e1", (ns, "s1", "/client", n, "message", [n]))
    await settle(sock)
    assert ns.seen == [("s1", n) for n in range(10)]
    assert ns.most_at_once == 1
    assert sock.frames == [f'43/client,{n}[{{"ok":true,"n":{n}}}]' for n in range(10)]
    assert sent == []  # every ack went straight to the socket
    assert sock.inbox is None  # an idle connection keeps no inbox


async def test_a_slow_handler_holds_up_only_its_own_connection() -> None:
    ns, slow, quick = Namespace(), Socket(), Socket()
    dispatcher = Dispatcher(None)
    await dispatcher.enqueue(slow, "e1", (ns, "s1", "/client", 1, "slow", [1]))
    await dispatcher.enqueue(slow, "e1", (ns, "s1", "/client", 2, "message", [2]))
    await dispatcher.enqueue(quick, "e2", (ns, "s2", "/client", 1, "message", [3]))
    await settle(quick)
    assert ns.seen == [("s2", 3)]
    assert quick.frames and not slow.frames
    ns.gate.set()
    await settle(slow)
    assert ns.seen == [("s2", 3), ("s1", 1), ("s1", 2)]
    assert len(slow.frames) == 2


async def test_a_flood_makes_the_reader_wait_for_the_backlog() -> None:
    ns, sock = Namespace(), Socket()
    dispatcher = Dispatcher(None)
    await dispatcher.enqueue(sock, "e1", (ns, "s1", "/client", None, "slow", [0]))
    while ns.running == 0:  # the first handler is under way, and held
        await asyncio.sleep(0)
    for n in range(1, INBOX_LIMIT):
        await dispatcher.enqueue(sock, "e1", (ns, "s1", "/client", None, "message", [n]))
    assert sock.inbox is not None and len(sock.inbox.events) == INBOX_LIMIT - 1
    # The next one fills the inbox: enqueueing it waits until the backlog has run.
    reader = asyncio.ensure_future(
        dispatcher.enqueue(sock, "e1", (ns, "s1", "/client", None, "message", [INBOX_LIMIT]))
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reader.done()
    ns.gate.set()
    await asyncio.wait_for(reader, 5)
    await settle(sock)
    assert [n for _, n in ns.seen] == list(range(INBOX_LIMIT + 1))
    assert sock.frames == []  # no ack was asked for
