"""The ``parley`` command line.

Commands print their result as JSON on stdout (``serve --demo`` prints text) and errors as
``{"error": {...}}`` on stderr with exit status 1. Logging is quiet (warnings and errors)
unless ``--verbose`` is given or ``PARLEY_LOG_LEVEL`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from chat.settings import Settings

EXIT_PORT_BUSY = 3
# Secrets that were published as examples (compose.yaml once defaulted to this one): a server
# signing tokens with them would accept tokens anyone can forge.
PUBLISHED_SECRET_KEYS = frozenset({"change-me-to-a-long-random-string"})


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    settings = Settings()
    level = _log_level(settings, getattr(args, "verbose", False))
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.log_level = level
    result: int = args.run(args, settings)
    return result


def _log_level(settings: Settings, verbose: bool) -> str:
    if verbose:
        return "debug" if settings.log_level.lower() == "debug" else "info"
    if "log_level" in settings.model_fields_set:  # PARLEY_LOG_LEVEL, from the environment or .env
        return settings.log_level.lower()
    return "warning"


def _version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:
        return "0.0.0"


def _parser() -> argparse.ArgumentParser:
    # --verbose works before or after the command: `parley -v migrate`, `parley migrate -v`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="log what happens (migrations, requests) at INFO level on stderr",
    )
    p = argparse.ArgumentParser(
        prog="parley", description="Parley conversation server", parents=[common],
        epilog="Settings come from PARLEY_* environment variables or a .env file (README.md).",
    )
    p.add_argument("--version", action="version", version=f"parley {_version()}")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser(
        "serve", parents=[common], help="run the API, Socket.IO, worker and scheduler",
        description="Runs the API, Socket.IO, the delivery worker and the scheduler in one "
        "process (or --workers of them on one port); migrates an empty database first. "
        "Exits 3 when the port is taken.",
    )
    serve.add_argument("--host", default=None, help="address to listen on (default: PARLEY_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default: PARLEY_PORT, 8000)")
    serve.add_argument(
        "--demo", action="store_true",
        help="seed a demo workspace and admin agent on first run and print their keys "
        "(the same ones on every later run)",
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, metavar="N",
        help="N processes on the one port (default 1); N > 1 needs PostgreSQL and "
        "PARLEY_REDIS_URL, and websocket clients (long-polling needs one process per port "
        "behind a sticky balancer)",
    )
    serve.set_defaults(run=_serve)

    migrate = sub.add_parser(
        "migrate", parents=[common], help="apply database migrations",
        description="Brings the database (PARLEY_DATABASE_URL) to the current schema.",
    )
    migrate.set_defaults(run=_migrate)

    ws = sub.add_parser("workspace", parents=[common], help="manage workspaces").add_subparsers(
        title="workspace commands", metavar="COMMAND"
    )
    ws_create = ws.add_parser(
        "create", parents=[common], help="create a workspace and print its keys",
        description="Prints {workspace_id, api_key, widget_key, identity_secret, "
        "webhook_secret}; the api_key is stored hashed and shown only this once.",
    )
    ws_create.add_argument("name", help="the workspace's display name")
    ws_create.set_defaults(run=_workspace_create)

    ws_list = ws.add_parser(
        "list", parents=[common], help="list workspaces",
        description="Prints a JSON list of {workspace_id, name, widget_key, created_at}.",
    )
    ws_list.set_defaults(run=_workspace_list)

    ws_rotate = ws.add_parser(
        "rotate-key", parents=[common], help="replace a workspace's key or secret",
        description="Prints the new value. api_key: the old keys stop at once, or after "
        "--grace SECONDS. widget_key, identity_secret, webhook_secret: the old value stops at "
        "once (sockets already connected stay connected until they reconnect).",
    )
    ws_rotate.add_argument("workspace_id", metavar="ID", help="the workspace's id (ws_...)")
    ws_rotate.add_argument(
        "--which", choices=["api_key", "widget_key", "identity_secret", "webhook_secret"],
        default="api_key", help="what to replace (default: api_key)",
    )
    ws_rotate.add_argument(
        "--grace", type=int, default=0, metavar="SECONDS",
        help="api_key only: how long the old keys keep working (default: 0, they stop at once)",
    )
    ws_rotate.set_defaults(run=_workspace_rotate_key)

    agent = sub.add_parser("agent", parents=[common], help="manage agents").add_subparsers(
        title="agent commands", metavar="COMMAND"
    )
    ag_create = agent.add_parser(
        "create", parents=[common], help="create an agent and print its password",
        description="Prints {agent_id, password}.",
    )
    ag_create.add_argument("--workspace", required=True, metavar="ID", help="the workspace's id (ws_...)")
    ag_create.add_argument("--email", required=True, help="the agent's login (checked as the REST API does)")
    ag_create.add_argument("--name", required=True, help="the name customers and colleagues see")
    ag_create.add_argument(
        "--role", choices=["admin", "agent"], default="agent",
        help="admins also manage agents, channels and webhooks (default: agent)",
    )
    ag_create.add_argument(
        "--password", default=None, help="at least 8 characters (default: a generated one, printed)"
    )
    ag_create.set_defaults(run=_agent_create)

    ag_reset = agent.add_parser(
        "reset-password", parents=[common], help="give an agent a new password and print it",
        description="Prints {agent_id, password}; the old password stops working at once.",
    )
    ag_reset.add_argument("--workspace", required=True, metavar="ID", help="the workspace's id (ws_...)")
    ag_reset.add_argument("--email", required=True, help="the agent's login email")
    ag_reset.add_argument(
        "--password", default=None, help="at least 8 characters (default: a generated one, printed)"
    )
    ag_reset.set_defaults(run=_agent_reset_password)
    _bot_parser(sub, common)
    return p


def _bot_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    bot = sub.add_parser("bot", parents=[common], help="try a bot without a server").add_subparsers(
        title="bot commands", metavar="COMMAND"
    )
    where = "a file (mybot.py[:NAME]) or a module (package.module[:NAME]); NAME defaults to bot"
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--channel", default="inapp", help="the channel type the bot sees (default: inapp)")
    options.add_argument(
        "--contact", default=None, metavar="JSON",
        help='the contact\'s profile the bot sees, e.g. \'{"name": "Ann", "locale": "en"}\'',
    )
    bot_try = bot.add_parser(
        "try", parents=[common, options], help="print what a bot answers to one message",
        description="Prints the matched intent, its score and handler, the replies, "
        "attributes, events, hand-off and slots (--json: one JSON object).",
    )
    bot_try.add_argument("path", metavar="PATH", help=where)
    bot_try.add_argument("utterance", help="what the customer says")
    bot_try.add_argument("--json", action="store_true", help="print the result as JSON")
    bot_try.set_defaults(run=_bot_try)
    bot_shell = bot.add_parser(
        "shell", parents=[common, options], help="talk to a bot in the terminal",
        description="Reads one customer message per line and prints the bot's answer; the "
        "bot's memory (slots) is kept between lines. /restart forgets it, /quit leaves.",
    )
    bot_shell.add_argument("path", metavar="PATH", help=where)
    bot_shell.set_defaults(run=_bot_shell)


def _load_bot(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None] | int:
    from bots.loading import BotLoadError, load_bot

    contact = None
    if args.contact is not None:
        try:
            contact = json.loads(args.contact)
        except ValueError as exc:
            return _print_error("invalid_contact", f"--contact is not JSON: {exc}")
        if not isinstance(contact, dict):
            return _print_error("invalid_contact", "--contact must be a JSON object")
    try:
        return load_bot(args.path), contact
    except BotLoadError as exc:
        return _print_error("bot_load_failed", str(exc))


def _bot_try(args: argparse.Namespace, _settings: Settings) -> int:
    from bots.console import as_json, describe, try_once

    loaded = _load_bot(args)
    if isinstance(loaded, int):
        return loaded
    brain, contact = loaded
    result = try_once(brain, args.utterance, channel=args.channel, contact=contact)
    print(json.dumps(as_json(result), ensure_ascii=False) if args.json else "\n".join(describe(result)))
    return 0


def _bot_shell(args: argparse.Namespace, _settings: Settings) -> int:
    from bots.console import shell

    loaded = _load_bot(args)
    if isinstance(loaded, int):
        return loaded
    brain, contact = loaded
    if sys.stdin.isatty():
        print(f"talking to {args.path}; /restart forgets, /quit leaves")
    shell(brain, sys.stdin, sys.stdout, prompt=sys.stdin.isatty(), channel=args.channel,
          contact=contact)
    return 0


def _with_services(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from chat.db.engine import Database
    from chat.db.migrate import ensure_schema
    from chat.services.assembly import build_services

    async def run() -> Any:
        await ensure_schema(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await work(await build_services(settings, db))
        finally:
            await db.dispose()

    return asyncio.run(run())


def _print_error(code: str, message: str, details: Any = None) -> int:
    print(json.dumps({"error": {"code": code, "message": message, "details": details}}), file=sys.stderr)
    return 1


def _run_printing(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> int:
    """Runs ``work`` with the services; prints its result as JSON, or its error."""
    from chat.domain.errors import ParleyError

    try:
        result = _with_services(settings, work)
    except ParleyError as exc:
        print(json.dumps({"error": exc.to_dict()}), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from chat.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def _workspace_create(args: argparse.Namespace, settings: Settings) -> int:
    return _run_printing(settings, lambda s: s.workspaces.create(args.name))


def _workspace_list(_args: argparse.Namespace, settings: Settings) -> int:
    return _run_printing(settings, lambda s: s.workspaces.list())


def _workspace_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    if args.which == "api_key":
        if args.grace < 0:
            return _print_error("invalid_grace", "--grace takes 0 or more seconds")
        return _run_printing(
            settings, lambda s: s.workspaces.rotate_api_key(args.workspace_id, args.grace)
        )
    if args.grace:
        return _print_error(
            "grace_not_supported", f"{args.which} changes at once; --grace is for api_key only"
        )
    return _run_printing(settings, lambda s: s.workspaces.rotate_secret(args.workspace_id, args.which))


def _checked_email_and_password(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    """The email under the REST API's rule, and the problems found (as 422 details)."""
    from chat.domain.emails import normalise_email

    problems: list[dict[str, Any]] = []
    email = args.email
    try:
        email = normalise_email(args.email)
    except ValueError as exc:
        problems.append({"loc": ["email"], "msg": str(exc), "type": "value_error"})
    if args.password is not None and not 8 <= len(args.password) <= 200:
        problems.append(
            {"loc": ["password"], "msg": "8 to 200 characters", "type": "string_length"}
        )
    return email, problems


def _agent_create(args: argparse.Namespace, settings: Settings) -> int:
    from chat.domain.enums import AgentRole

    email, problems = _checked_email_and_password(args)
    if problems:
        return _print_error("validation_error", "invalid arguments", problems)

    async def create(services: Any) -> dict[str, Any]:
        agent, password = await services.agents.create(
            args.workspace, email, args.name, AgentRole(args.role), args.password
        )
        return {"agent_id": agent["id"], "password": password}

    return _run_printing(settings, create)


def _agent_reset_password(args: argparse.Namespace, settings: Settings) -> int:
    email, problems = _checked_email_and_password(args)
    if problems:
        return _print_error("validation_error", "invalid arguments", problems)

    async def reset(services: Any) -> dict[str, Any]:
        agent, password = await services.agents.reset_password(args.workspace, email, args.password)
        return {"agent_id": agent["id"], "password": password}

    return _run_printing(settings, reset)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _bind(host: str, port: int) -> socket.socket | None:
    """The listening socket for ``host:port``, or None when it is taken (or not ours to use)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        return None
    return sock


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from chat import serve_processes
    from chat.app import create_asgi
    from chat.db.migrate import ensure_schema
    from chat.realtime.websocket import LeanWebSocketProtocol

    if settings.secret_key in PUBLISHED_SECRET_KEYS:
        print(
            "parley: PARLEY_SECRET_KEY is a published example value; unset it (Parley then "
            "generates one and keeps it in the database) or set a long random string",
            file=sys.stderr,
        )
        return 2
    refused = serve_processes.refusal(settings, args.workers)
    if refused:
        print(f"parley: {refused}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    # The port first: a busy one is reported before the database is touched. The socket
    # stays bound and is handed to uvicorn, so nothing can take it in between.
    sock = _bind(host, port)
    if sock is None:
        print(
            f"parley: cannot listen on {host}:{port}: the port is in use (or the address is "
            "not this machine's); stop the other server or pass --port",
            file=sys.stderr,
        )
        return EXIT_PORT_BUSY
    asyncio.run(ensure_schema(settings.database_url))
    if args.demo:
        from chat.demo import seed

        print(_with_services(settings, lambda s: seed(s, f"http://{host}:{port}")), flush=True)
    from sqlalchemy.engine import make_url

    database = make_url(settings.database_url).get_backend_name()
    workers = f", {args.workers} processes" if args.workers > 1 else ""
    print(
        f"parley {_version()} on http://{host}:{port} ({database}{workers}); Ctrl+C stops it",
        flush=True,
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": args.log_level,
        "ws_per_message_deflate": False,  # compression cost a third of the socket ack rate
        # Engine.IO pings every connection and closes the silent ones; a websocket-level
        # keepalive beside it is a second timer per connection (about 0.5 KB).
        "ws_ping_interval": None,
        "ws": LeanWebSocketProtocol,  # uvicorn's, keeping less per connection
        "proxy_headers": True,
    }
    if args.workers > 1:
        os.environ["PARLEY_LOG_LEVEL"] = args.log_level  # what the processes log
        return serve_processes.run(options, sock, args.workers)
    serve_processes.tune_gc()
    uvicorn.Server(uvicorn.Config(create_asgi(settings)[0], **options)).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
