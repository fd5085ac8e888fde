"""An asyncpg pool bound to one service schema, with tenant-scoped transactions."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

TENANT_SETTING = "app.tenant_id"
# A connection as handlers see it: pooled (the usual case) or direct.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
_SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def asyncpg_dsn(url: str) -> str:
    """Accept SQLAlchemy-style URLs (`postgresql+asyncpg://`) as well as plain ones."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """The service's own pool: `search_path` is its schema; tenant rows need `tenant()`."""

    def __init__(self, dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.schema = check_schema_name(schema)
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_init_connection,
            server_settings={"search_path": f"{self.schema},public", "application_name": self.schema},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not opened")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A transaction with no tenant: tenant-owned tables show no rows (fail closed)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def tenant(self, tenant_id: str) -> AsyncIterator[Connection]:
        """A transaction scoped to one tenant: row-level security admits only its rows."""
        async with self.pool.acquire() as conn, conn.transaction():
            await set_tenant(conn, tenant_id)
            yield conn

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")


async def set_tenant(conn: Connection, tenant_id: str) -> None:
    """Scope the current transaction to `tenant_id` (transaction-local, so pooled connections are safe)."""
    await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, str(uuid.UUID(str(tenant_id))))


def json_param(value: Any) -> str:
    return json.dumps(value)
