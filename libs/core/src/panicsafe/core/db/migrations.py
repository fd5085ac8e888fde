"""Alembic, configured in code: one environment for every service schema, shipped by core.

A schema's revisions are core's base (`alembic/bus`: the outbox and processed-event tables, revision
`0001`) followed by the service's own (`<service>/migrations/versions`, if it has tables of its own).
The version table lives in the service's own schema; migrations run as `<schema>_owner`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from panicsafe.core.db.database import asyncpg_dsn, check_schema_name

ENVIRONMENT = Path(__file__).parent / "alembic"
BASE_VERSIONS = ENVIRONMENT / "bus"


def version_locations(migrations_dir: Path | None) -> list[Path]:
    """Core's base revisions, then the service's own (`migrations_dir/versions`)."""
    own = [] if migrations_dir is None else [migrations_dir / "versions"]
    return [BASE_VERSIONS, *own]


def alembic_config(migrations_dir: Path | None, owner_dsn: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    # A space-separated list: no path here has a space (checked, or Alembic would split it).
    locations = [str(p) for p in version_locations(migrations_dir)]
    if any(" " in p for p in locations):
        raise ValueError(f"migration folders must not contain spaces: {locations}")
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["owner_dsn"] = owner_dsn
    config.attributes["schema"] = check_schema_name(schema)
    return config


def head_revisions(migrations_dir: Path | None) -> frozenset[str]:
    """The heads a schema migrates to: its own chain's and the bus branch's (see `alembic/README.md`)."""
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, "postgresql://unused", "unused"))
    return frozenset(script.get_heads())


def upgrade(migrations_dir: Path | None, owner_dsn: str, schema: str, revision: str = "heads") -> None:
    """Bring the schema to `revision` (blocking: call through `asyncio.to_thread`)."""
    command.upgrade(alembic_config(migrations_dir, owner_dsn, schema), revision)


async def upgrade_async(migrations_dir: Path | None, owner_dsn: str, schema: str) -> None:
    await asyncio.to_thread(upgrade, migrations_dir, owner_dsn, schema)


def run_env() -> None:
    """The body of core's `alembic/env.py`: online migrations only."""
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
