"""An asyncpg pool bound to one service schema, with tenant-scoped transactions."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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
    """The service's own pool: `search_path` is its schema; tenant rows need `tenant()`.

    `transaction()` and `tenant()` cost two round trips besides the statements they run: the first
    message begins the transaction and writes the tenant setting, the last one ends it and resets the
    session (the reset asyncpg would otherwise send as a third message when the connection returns
    to the pool). `read()` costs one, and so does each statement under `autocommit()`. Every other
    use of the pool is reset on release as usual.
    """

    def __init__(self, dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.schema = check_schema_name(schema)
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        # Backend pids of connections being released with nothing to reset (see `_reset_on_release`).
        self._clean: set[int] = set()

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_init_connection,
            reset=self._reset_on_release,
            server_settings=self._server_settings(),
        )

    async def connect(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, set up as the pool's are: for a session held
        long (a leader's advisory lock, LISTEN). The caller closes it."""
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, server_settings=self._server_settings())
        await _init_connection(conn)
        return conn

    def _server_settings(self) -> dict[str, str]:
        return {"search_path": f"{self.schema},public", "application_name": self.schema}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not opened")
        return self._pool

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A transaction with no tenant: tenant-owned tables show no rows (fail closed). Its first
        statement may still be `SET TRANSACTION` (an isolation level, read only)."""
        return self._scoped("BEGIN")

    def tenant(self, tenant_id: str) -> AbstractAsyncContextManager[Connection]:
        """A transaction scoped to one tenant: row-level security admits only its rows."""
        # Only a canonical UUID is ever inlined here: see `_canonical_tenant`.
        tenant = _canonical_tenant(tenant_id)
        return self._scoped(f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{tenant}', true)")

    @asynccontextmanager
    async def _scoped(self, begin: str) -> AsyncIterator[Connection]:
        """A transaction opened by the message `begin`, on a connection that carries no setting from
        earlier uses: each of these transactions ends with the reset, a `read` leaves nothing behind,
        and any other use of the pool is reset on release.

        asyncpg did not open this transaction, so `conn.transaction()` inside it is refused: use
        `savepoint(conn)` for a block that may fail alone.
        """
        async with self._connection() as (conn, release_clean):
            await conn.execute(begin)
            try:
                yield conn
            except BaseException:
                await _end_and_reset(conn, "ROLLBACK")
                raise
            await _end_and_reset(conn, "COMMIT")
            release_clean()

    async def read(self, query: str, *args: Any) -> asyncpg.Record | None:
        """One statement in its own implicit transaction, with no tenant (tables under row-level
        security show no row unless the statement scopes itself), in a single round trip. For reads
        that leave nothing in the session (`set_config(..., true)` ends with the statement): the
        connection is not reset afterwards."""
        async with self.autocommit() as conn:
            return await conn.fetchrow(query, *args)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Connection]:
        """A connection with no transaction open: each statement is its own transaction, one round
        trip and (if it writes) one commit. As with `read`, statements must leave nothing in the
        session; the connection is released without a reset unless the block raised."""
        async with self._connection() as (conn, release_clean):
            yield conn
            release_clean()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[tuple[Connection, Callable[[], None]]]:
        """A pooled connection, and what to call when nothing needs resetting before it is released."""
        pids: list[int] = []
        try:
            async with self.pool.acquire() as conn:
                pids.append(conn.get_server_pid())
                yield conn, lambda: self._clean.update(pids)
        finally:
            self._clean.difference_update(pids)  # the mark holds for this release only

    async def _reset_on_release(self, conn: asyncpg.Connection) -> None:
        """The pool's reset (asyncpg has already rolled back any open transaction), unless the
        connection comes back marked clean by `_connection`."""
        if conn.get_server_pid() in self._clean:
            return
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")


def _canonical_tenant(tenant_id: str) -> str:
    """The tenant id as PostgreSQL prints a uuid; anything that is not a UUID raises ValueError."""
    return str(uuid.UUID(str(tenant_id)))


async def _end_and_reset(conn: Connection, verb: str) -> None:
    """End the transaction and reset the session (advisory locks, cursors, LISTEN, settings) in one
    message. If the first statement fails, PostgreSQL skips the rest and the pool resets on release."""
    await conn.execute(f"{verb};\n{conn.get_reset_query()}")


@asynccontextmanager
async def savepoint(conn: Connection) -> AsyncIterator[Connection]:
    """A block of a `Database` transaction that rolls back alone when it raises (a SAVEPOINT)."""
    name = f"sp_{uuid.uuid4().hex}"
    await conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        await conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
        raise
    await conn.execute(f"RELEASE SAVEPOINT {name}")


async def set_tenant(conn: Connection, tenant_id: str) -> None:
    """Scope the current transaction to `tenant_id` (transaction-local, so pooled connections are safe)."""
    await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, _canonical_tenant(tenant_id))


def json_param(value: Any) -> str:
    return json.dumps(value)
