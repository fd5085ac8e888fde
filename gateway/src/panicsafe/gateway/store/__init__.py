"""SQL for the gateway's own schema: identity and tenancy. Identity lookups are explicit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from panicsafe.core.db.database import Connection, Database, set_tenant


@asynccontextmanager
async def identity_lookup(db: Database) -> AsyncIterator[Connection]:
    """A transaction that may find identity rows of any tenant (login, invitation, refresh, passkey)."""
    async with db.transaction() as conn:
        await conn.execute("SELECT set_config('app.identity', 'lookup', true)")
        yield conn


async def enter_tenant(conn: Connection, tenant_id: str) -> None:
    """Leave the identity lookup and scope the rest of the transaction to one tenant."""
    await conn.execute("SELECT set_config('app.identity', '', true)")
    await set_tenant(conn, tenant_id)
