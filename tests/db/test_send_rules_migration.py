"""0008_send_rules: conversations that already hold customer messages get their
customer-service clock from the latest of them (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chat.db.migrate import upgrade
from tests.db.test_migrations import fresh_url  # noqa: F401 - the fixture

ROWS = """
INSERT INTO workspaces (id, name, widget_key, identity_secret, webhook_secret, created_at)
  VALUES ('ws_1', 'Acme', 'wk_1', 'is_1', 'whs_1', :t0);
INSERT INTO contacts (id, workspace_id, attributes, created_at, updated_at)
  VALUES ('ct_1', 'ws_1', '{}', :t0, :t0);
INSERT INTO channels (id, workspace_id, type, name, config, created_at, updated_at)
  VALUES ('ch_1', 'ws_1', 'whatsapp', 'WA', '{}', :t0, :t0);
INSERT INTO conversations (id, workspace_id, contact_id, channel_id, channel_type, status,
  last_seq, created_at, updated_at) VALUES
  ('cnv_1', 'ws_1', 'ct_1', 'ch_1', 'whatsapp', 'resolved', 3, :t0, :t0),
  ('cnv_2', 'ws_1', 'ct_1', 'ch_1', 'whatsapp', 'open', 1, :t0, :t0);
INSERT INTO messages (id, workspace_id, conversation_id, seq, direction, author_type, content,
  status, private, created_at, updated_at) VALUES
  ('msg_1', 'ws_1', 'cnv_1', 1, 'inbound', 'contact', '{}', 'delivered', false, :t1, :t1),
  ('msg_2', 'ws_1', 'cnv_1', 2, 'inbound', 'contact', '{}', 'delivered', false, :t2, :t2),
  ('msg_3', 'ws_1', 'cnv_1', 3, 'outbound', 'agent', '{}', 'sent', false, :t3, :t3),
  ('msg_4', 'ws_1', 'cnv_2', 1, 'outbound', 'system', '{}', 'sent', false, :t3, :t3)
"""


def _run(url: str, statements: str, params: dict[str, object]) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for sql in filter(str.strip, statements.split(";")):
                    result = await conn.execute(text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_existing_conversations_start_their_window_at_the_last_inbound_message(
    fresh_url: str,  # noqa: F811
) -> None:
    upgrade(fresh_url, "0007_inbox")
    times = {f"t{i}": datetime(2026, 11, 30, 10 + i, tzinfo=UTC) for i in range(4)}
    if fresh_url.startswith("sqlite"):  # SQLite keeps naive UTC text, as UTCDateTime writes it
        times = {k: v.replace(tzinfo=None) for k, v in times.items()}
    _run(fresh_url, ROWS, times)
    upgrade(fresh_url)
    found = dict(_run(
        fresh_url, "SELECT id, last_inbound_at FROM conversations ORDER BY id", {}
    ))
    assert found["cnv_2"] is None
    last = found["cnv_1"]
    seen = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
    if seen.tzinfo is not None:
        seen = seen.astimezone(UTC)
    assert seen.replace(tzinfo=None) == times["t2"].replace(tzinfo=None)
