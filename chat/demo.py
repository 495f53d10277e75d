"""``parley serve --demo``: a workspace and an agent to try things with at once.

The demo is seeded once per database. API keys and passwords are stored hashed, so to print
the same login on later runs the demo keeps its own plaintext copy in the ``instance_secrets``
row ``demo`` (only the demo's; ``parley workspace create`` keeps nothing in plain text). A
key or password changed since (``parley workspace rotate-key``, ``parley agent
reset-password``) is reported as changed rather than printed; a deleted demo workspace is
seeded again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chat.db import models as m
from chat.domain.enums import AgentRole
from chat.domain.errors import ParleyError

log = logging.getLogger(__name__)

DEMO_ROW = "demo"
DEMO_EMAIL = "demo@parley.local"
# The example support bot (bots/examples/support.py), first to answer in-app customers.
SUPPORT_BOT = "bots.examples.support:bot"


async def seed(services: Any, base_url: str) -> str:
    """Seeds the demo on first use; returns the text to print (the same on every run)."""
    stored = await _stored(services)
    if stored is None or await services.workspaces.get(stored["workspace_id"]) is None:
        stored = await _create(services)
        first = True
    else:
        first = False
    bot_line = await _support_bot(services, stored["workspace_id"])
    return await _describe(services, stored, base_url, first, bot_line)


async def _support_bot(services: Any, ws_id: str) -> str:
    """Attaches the example support bot to the demo's in-app channel (once); the line to print."""
    bots = await services.bots.list(ws_id)
    if bots:
        return f"  bot              {bots[0]['id']}"
    inapp = [ch["id"] for ch in await services.channels.list(ws_id, "inapp")]
    try:
        bot = await services.bots.create(
            ws_id, "Support bot", "python", {"path": SUPPORT_BOT}, inapp[:1]
        )
    except ParleyError as exc:
        log.warning("demo: the example support bot (%s) is not attached: %s", SUPPORT_BOT, exc.message)
        return f"  bot              not attached ({SUPPORT_BOT} does not load: {exc.message})"
    return f"  bot              {bot['id']}"


async def _stored(services: Any) -> dict[str, str] | None:
    async with services.db.read() as session:
        row = await session.get(m.InstanceSecret, DEMO_ROW)
    return None if row is None else dict(json.loads(row.value))


async def _create(services: Any) -> dict[str, str]:
    keys = await services.workspaces.create("Demo")
    agent, password = await services.agents.create(
        keys["workspace_id"], DEMO_EMAIL, "Demo Agent", AgentRole.ADMIN
    )
    stored = {
        "workspace_id": keys["workspace_id"],
        "api_key": keys["api_key"],
        "email": agent["email"],
        "password": password,
    }
    async with services.db.write() as session:
        row = await session.get(m.InstanceSecret, DEMO_ROW)
        if row is None:
            session.add(m.InstanceSecret(name=DEMO_ROW, value=json.dumps(stored)))
        else:  # the demo workspace was deleted: this one replaces it
            row.value = json.dumps(stored)
    return stored


async def _describe(
    services: Any, stored: dict[str, str], base_url: str, first: bool, bot_line: str
) -> str:
    ws_id = stored["workspace_id"]
    ws = await services.workspaces.get(ws_id)
    api_key = stored["api_key"]
    if await services.workspaces.by_api_key(api_key) != ws_id:
        api_key = "(rotated since the demo was seeded: use the key rotate-key printed)"
    password = stored["password"]
    try:
        await services.agents.login(stored["email"], password, ws_id)
    except ParleyError:
        password = "(changed since the demo was seeded: see parley agent reset-password)"
    lines = [
        "",
        "Parley demo workspace" + ("" if first else " (seeded on an earlier run)"),
        f"  workspace_id     {ws_id}",
        f"  api_key          {api_key}",
        f"  widget_key       {ws.widget_key}",
        f"  identity_secret  {ws.identity_secret}",
        f"  agent login      {stored['email']} / {password}",
        bot_line,
        "",
        "Try:",
        f"  curl -s {base_url}/v1/conversations -H 'Authorization: Bearer {api_key}'",
        f"  open {base_url}/inbox (the agent inbox; log in as {stored['email']} / {password})",
        f"  open {base_url}/ (links to the API reference at {base_url}/docs)",
        f"  open {base_url}/widget/demo?widget_key={ws.widget_key} (the web chat widget)",
        "",
    ]
    return "\n".join(lines)
