"""``parley serve --demo``: a workspace and an agent to try things with at once."""

from __future__ import annotations

from typing import Any

from chat.domain.enums import AgentRole


async def seed(services: Any, base_url: str) -> str:
    keys = await services.workspaces.create("Demo")
    agent, password = await services.agents.create(
        keys["workspace_id"], "demo@parley.local", "Demo Agent", AgentRole.ADMIN
    )
    lines = [
        "",
        "Parley demo workspace",
        f"  workspace_id     {keys['workspace_id']}",
        f"  api_key          {keys['api_key']}",
        f"  widget_key       {keys['widget_key']}",
        f"  identity_secret  {keys['identity_secret']}",
        f"  agent login      {agent['email']} / {password}",
        "",
        "Try:",
        f"  curl -s {base_url}/v1/conversations -H 'Authorization: Bearer {keys['api_key']}'",
        f"  open {base_url}/docs for the API reference",
        "",
    ]
    return "\n".join(lines)
