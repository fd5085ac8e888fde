"""Alembic, configured in code: each service keeps `migrations/` with `env.py` and `versions/`.

The version table lives in the service's own schema; migrations run as `<schema>_owner`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from panicsafe.core.db.database import asyncpg_dsn, check_schema_name


def alembic_config(migrations_dir: Path, owner_dsn: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["owner_dsn"] = owner_dsn
    config.attributes["schema"] = check_schema_name(schema)
    return config


def upgrade(migrations_dir: Path, owner_dsn: str, schema: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (blocking: call through `asyncio.to_thread`)."""
    command.upgrade(alembic_config(migrations_dir, owner_dsn, schema), revision)


async def upgrade_async(migrations_dir: Path, owner_dsn: str, schema: str) -> None:
    await asyncio.to_thread(upgrade, migrations_dir, owner_dsn, schema)


def run_env() -> None:
    """The body of every service's `migrations/env.py`: online migrations only."""
    config = context.config
    schema = str(config.attributes["schema"])
    url = "postgresql+asyncpg://" + asyncpg_dsn(str(config.attributes["owner_dsn"])).removeprefix("postgresql://")

    def migrate(connection: Connection) -> None:
        connection.execute(text(f"SET search_path TO {schema}, public"))
        context.configure(connection=connection, version_table_schema=schema, transaction_per_migration=True)
        with context.begin_transaction():
            # One migrator at a time per schema, whatever the number of replicas starting.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
