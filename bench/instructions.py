"""Instructions per stored socket message, counted by callgrind: repeatable on a busy machine.

    .venv/bin/python bench/instructions.py [--mode acks|fanout] [--messages 400]

Starts ``parley serve`` (SQLite, a temporary database) under ``valgrind --tool=callgrind``,
connects the clients, sends a warm-up, zeroes the counters (``callgrind_control -z``),
runs the workload, and dumps them (``callgrind_control -d``): the figure is the dump's
``summary``, the instructions the server ran during the workload, divided by the messages.

- ``acks``: 20 clients, each alone in its room, each with one ``message`` + ack in flight;
- ``fanout``: 10 rooms x 10 members, one sender per room, each message reaching 9 others.

Slow (valgrind runs Python some 50 times slower): a few minutes per run. Compare two
commits by running the script from a checkout of each (``PYTHONPATH`` set to it).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sioclient import SioClient, connect
from bench.targets import free_port

PARLEY = [
    sys.executable,
    "-c",
    "import sys; from chat.cli import main; sys.exit(main(sys.argv[1:]))",
]


def _callgrind(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


async def _workload(
    port: int, pid: int, workspace: dict[str, Any], mode: str, messages: int
) -> None:
    secret = str(workspace["identity_secret"]).encode()

    def auth(name: str) -> dict[str, Any]:
        digest = hmac.new(secret, name.encode(), hashlib.sha256).hexdigest()
        return {
            "widget_key": workspace["widget_key"],
            "user": {"external_id": name, "hmac": digest},
        }

    if mode == "acks":
        clients = [
            await connect("127.0.0.1", port, "/client", auth(f"a-{i}"), timeout=120)
            for i in range(20)
        ]
        senders = clients
    else:
        clients = [
            await connect("127.0.0.1", port, "/client", auth(f"f-{room}"), timeout=120)
            for room in range(10)
            for _ in range(10)
        ]
        senders = clients[::10]
    conversations: dict[int, str] = {}

    async def send(client: SioClient, count: int, tag: str) -> None:
        for i in range(count):
            ack = await client.call(
                "message",
                {
                    "conversation_id": conversations.get(id(client)),
                    "client_message_id": f"{tag}-{id(client)}-{i}-{os.urandom(3).hex()}",
                    "content": {"type": "text", "text": "x" * 40},
                },
                timeout=600,
            )
            conversations[id(client)] = ack["message"]["conversation_id"]

    await asyncio.gather(*(send(c, 3, "warm") for c in senders))
    await asyncio.sleep(2)
    _callgrind("-z", pid)
    await asyncio.gather(*(send(c, messages // len(senders), "run") for c in senders))
    await asyncio.sleep(3)
    _callgrind("-d", pid)
    for c in clients:
        c.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mode", choices=("acks", "fanout"), default="acks")
    ap.add_argument("--messages", type=int, default=400)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="parley-instr-") as tmp:
        env = {
            **os.environ,
            "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "PARLEY_SOCKET_RATE_PER_SECOND": "100000",
            "PARLEY_SOCKET_RATE_BURST": "100000",
            "PARLEY_SOCKET_CONNECTS_PER_MINUTE": "100000",
            "PYTHONHASHSEED": "0",
        }
        subprocess.run([*PARLEY, "migrate"], env=env, check=True, capture_output=True)
        out = subprocess.run(
            [*PARLEY, "workspace", "create", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        workspace = json.loads(out.strip().splitlines()[-1])
        port = free_port()
        dump = f"{tmp}/callgrind.out"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={dump}",
                *PARLEY,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("the server did not start under valgrind", file=sys.stderr)
                        return 1
                    time.sleep(1)
            asyncio.run(_workload(port, server.pid, workspace, args.mode, args.messages))
        finally:
            server.terminate()
            server.wait(timeout=60)
        text = Path(f"{dump}.1").read_text(errors="replace")
        found = re.search(r"^summary: (\d+)", text, re.MULTILINE)
        if found is None:
            print("no callgrind summary in the dump", file=sys.stderr)
            return 1
        total = int(found.group(1))
        per = total / args.messages
        print(
            json.dumps(
                {
                    "mode": args.mode,
                    "messages": args.messages,
                    "instructions": total,
                    "per_message": round(per),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
