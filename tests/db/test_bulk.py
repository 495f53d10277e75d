"""Bulk statements on the driver store exactly what SQLAlchemy stores, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, insert, select

from chat.db import models as m
from chat.db.bulk import BulkStatement, run_together

OUTBOX = cast(Table, m.OutboxEntry.__table__)
COLUMNS = [c.name for c in OUTBOX.c]


def entry(id_: str, ws: str, payload: Any, due: datetime) -> dict[str, Any]:
    return {
        "id": id_, "workspace_id": ws, "kind": "webhook", "ref_id": None, "lane": "l",
        "payload": payload, "state": "pending", "attempts": 0, "due_at": due,
        "lease_until": None, "claim": None, "last_error": None,
        "created_at": datetime(2026, 12, 1, 10, 0, 0, 123456),  # naive: taken as UTC
    }


async def raw(services: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The stored values as the driver returns them (no SQLAlchemy type processing)."""
    marks = ", ".join(f"'{i}'" for i in ids)
    async with services.db.read() as session:
        conn = await session.connection()
        rows = await conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM outbox WHERE id IN ({marks})")
        return {r[0]: tuple(r[1:]) for r in rows}


async def test_a_bulk_insert_stores_what_sqlalchemy_stores(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    # Not UTC; and far ahead, so the app's worker running beside the test leaves them alone.
    due = datetime(2126, 12, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    payloads = [{"text": "héllo ✓", "n": [1, 2.5, None], "big": 2**70}, None, "plain"]
    by_orm = [entry(f"obx_orm{i}", ws, p, due) for i, p in enumerate(payloads)]
    by_bulk = [entry(f"obx_blk{i}", ws, p, due) for i, p in enumerate(payloads)]
    async with services.db.write() as session:
        conn = await session.connection()
        await conn.execute(insert(OUTBOX), by_orm)
        await BulkStatement(OUTBOX, COLUMNS).run(conn, by_bulk)

    stored = await raw(services, [r["id"] for r in by_orm + by_bulk])
    for i in range(len(payloads)):
        assert stored[f"obx_blk{i}"] == stored[f"obx_orm{i}"]
    async with services.db.read() as session:
        rows = {r.id: r for r in (await session.execute(select(m.OutboxEntry))).scalars()}
    assert rows["obx_blk0"].payload == payloads[0]
    assert rows["obx_blk1"].payload is None
    assert rows["obx_blk0"].due_at == datetime(2126, 12, 1, 10, 30, tzinfo=UTC)
    assert rows["obx_blk0"].created_at == datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)


async def test_updates_and_inserts_run_together_by_key(services: Any, workspace: dict[str, str]) -> None:
    ws = workspace["workspace_id"]
    # Due tomorrow: the app's worker, running beside the test, must not take them.
    now = datetime.now(UTC) + timedelta(days=1)
    first = [entry(f"obx_a{i}", ws, {"i": i}, now) for i in range(3)]
    async with services.db.write() as session:
        conn = await session.connection()
        await BulkStatement(OUTBOX, COLUMNS).run(conn, first)
    later = now + timedelta(minutes=5)
    move = BulkStatement(OUTBOX, ("state", "attempts", "due_at"), key="id")
    async with services.db.write() as session:
        conn = await session.connection()
        await run_together(conn, [
            (move, [("done", 2, later, "obx_a0"), ("failed", 5, later, "obx_a2")]),
            (BulkStatement(OUTBOX, COLUMNS), [entry("obx_b0", ws, {"new": True}, now)]),
            (move, []),  # a part without rows is left out
        ])
    async with services.db.read() as session:
        rows = {r.id: r for r in (await session.execute(select(m.OutboxEntry))).scalars()}
    assert {i: (r.state, r.attempts) for i, r in rows.items()} == {
        "obx_a0": ("done", 2), "obx_a1": ("pending", 0), "obx_a2": ("failed", 5), "obx_b0": ("pending", 0),
    }
    assert rows["obx_a0"].due_at == later and rows["obx_a1"].due_at == now
    assert rows["obx_b0"].payload == {"new": True}
