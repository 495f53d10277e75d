"""Run Alembic migrations programmatically (``parley migrate`` and start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    # Alembic's env.py drives its own event loop, so it runs in a worker thread.
    await asyncio.to_thread(upgrade, database_url)


async def ensure_schema(database_url: str) -> None:
    """Migrate an empty database; refuse to run on one that is behind (run ``parley migrate``)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    if not current:
        await upgrade_async(database_url)
    elif set(current) != set(head):
        raise SystemExit(
            f"the database is at revision {current}, the code needs {head}: run `parley migrate`"
        )
