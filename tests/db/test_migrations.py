"""Every migration goes down as well as up, on SQLite and on PostgreSQL.

Each database here is fresh (not the shared test database): migrated to the head,
walked down one revision at a time to the base (every ``downgrade()`` runs), and up
again one at a time; the schema must then be what the first upgrade made, and what
the models in chat/db/models.py describe.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from chat.db.migrate import alembic_config, upgrade
from chat.db.models import Base
from tests.conftest import PG_ADMIN_URL, _pg_admin, need_service


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    url = httpx.URL(PG_ADMIN_URL.replace("postgresql+asyncpg://", "http://"))
    need_service("PostgreSQL", url.host, url.port or 5432)
    name = f"parley_migrations_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _on(url: str, look: Any) -> Any:
    async def go() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def schema(conn: Connection) -> dict[str, Any]:
    """Tables with their columns, indexes, unique constraints and foreign keys."""
    insp = inspect(conn)
    found: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        found[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                for f in insp.get_foreign_keys(table)
            ),
        }
    return found


def current(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


# SQLite's reflection cannot read the inbox's expression index (activity order); it is
# compared on PostgreSQL, and SQLite's query plan uses it (tests/api/test_inbox.py).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index"),
]


def test_every_migration_goes_down_and_up_again(fresh_url: str) -> None:
    cfg = alembic_config(fresh_url)
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    steps = len(list(script.walk_revisions()))

    upgrade(fresh_url)
    assert _on(fresh_url, current) == heads
    migrated = _on(fresh_url, schema)
    assert set(migrated) >= {t.name for t in Base.metadata.sorted_tables}

    for _ in range(steps):  # one downgrade() at a time
        command.downgrade(cfg, "-1")
    assert _on(fresh_url, current) == set()
    assert set(_on(fresh_url, schema)) <= {"alembic_version"}

    for _ in range(steps):  # and each upgrade() again from the revision before it
        command.upgrade(cfg, "+1")
    assert _on(fresh_url, current) == heads
    assert _on(fresh_url, schema) == migrated

    command.downgrade(cfg, "base")  # all at once, then back to the head
    upgrade(fresh_url)
    assert _on(fresh_url, schema) == migrated


def test_the_migrations_make_the_schema_the_models_describe(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert _on(fresh_url, differences) == []
