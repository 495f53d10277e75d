"""The ``parley`` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from chat.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    result: int = args.run(args, settings)
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parley", description="Parley conversation server")
    sub = p.add_subparsers()

    serve = sub.add_parser("serve", help="run the API, Socket.IO, worker and scheduler")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--demo", action="store_true", help="seed a demo workspace and agent")
    serve.set_defaults(run=_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    ws = sub.add_parser("workspace", help="manage workspaces").add_subparsers()
    ws_create = ws.add_parser("create", help="create a workspace and print its keys")
    ws_create.add_argument("name")
    ws_create.set_defaults(run=_workspace_create)

    agent = sub.add_parser("agent", help="manage agents").add_subparsers()
    ag_create = agent.add_parser("create", help="create an agent and print its password")
    ag_create.add_argument("--workspace", required=True)
    ag_create.add_argument("--email", required=True)
    ag_create.add_argument("--name", required=True)
    ag_create.add_argument("--role", choices=["admin", "agent"], default="agent")
    ag_create.add_argument("--password", default=None)
    ag_create.set_defaults(run=_agent_create)
    return p


def _with_services(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from chat.app import build_services
    from chat.db.engine import Database
    from chat.db.migrate import ensure_schema

    async def run() -> Any:
        await ensure_schema(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await work(await build_services(settings, db))
        finally:
            await db.dispose()

    return asyncio.run(run())


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from chat.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def _workspace_create(args: argparse.Namespace, settings: Settings) -> int:
    keys = _with_services(settings, lambda s: s.workspaces.create(args.name))
    print(json.dumps(keys))
    return 0


def _agent_create(args: argparse.Namespace, settings: Settings) -> int:
    from chat.domain.enums import AgentRole
    from chat.domain.errors import ParleyError

    async def create(services: Any) -> tuple[dict[str, Any], str]:
        return await services.agents.create(
            args.workspace, args.email, args.name, AgentRole(args.role), args.password
        )

    try:
        agent, password = _with_services(settings, create)
    except ParleyError as exc:
        print(json.dumps({"error": exc.to_dict()}), file=sys.stderr)
        return 1
    print(json.dumps({"agent_id": agent["id"], "password": password}))
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from chat.app import create_asgi
    from chat.db.migrate import ensure_schema

    asyncio.run(ensure_schema(settings.database_url))
    host = args.host or settings.host
    port = args.port or settings.port
    if args.demo:
        from chat.demo import seed

        print(_with_services(settings, lambda s: seed(s, f"http://{host}:{port}")), flush=True)
    # Long-lived servers hold many objects (sockets, pooled statements); the default
    # thresholds made full collections stall the loop for tens of milliseconds under load.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    uvicorn.run(
        create_asgi(settings)[0],
        host=host,
        port=port,
        log_level=settings.log_level,
        ws_per_message_deflate=False,  # compression cost a third of the socket ack rate
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
