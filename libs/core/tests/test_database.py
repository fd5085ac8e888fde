"""`Database` transactions in two round trips: no setting outlives them on a pooled connection, and
a savepoint still isolates a failing block.

The pool holds one connection, so every block below runs on the connection the previous one left.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from panicsafe.core.db.database import Connection, Database, savepoint
from panicsafe.core.db.rls import tenant_rls_statements
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import make_schema

A = str(uuid.uuid4())
B = str(uuid.uuid4())


@pytest.fixture
async def db(stack: DevStack) -> AsyncIterator[Database]:
    schema = await make_schema(stack, "dbt")
    owner = schema.owner_database()
    await owner.open()
    try:
        async with owner.transaction() as conn:
            await conn.execute(
                "CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text UNIQUE)"
            )
            for statement in tenant_rls_statements("notes"):
                await conn.execute(statement)
    finally:
        await owner.close()
    app = schema.database(min_size=1, max_size=1)
    await app.open()
    try:
        for tenant in (A, B):
            async with app.tenant(tenant) as conn:
                await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)", tenant, f"note of {tenant}")
        yield app
    finally:
        await app.close()


async def notes_seen_by_read(db: Database) -> int:
    row = await db.read("SELECT count(*) AS n FROM notes")
    assert row is not None
    return int(row["n"])


async def test_a_session_wide_setting_does_not_outlive_the_transaction(db: Database) -> None:
    async with db.tenant(A) as conn:
        # A mistake a handler could make: a session-wide scope (is_local false).
        await conn.execute("SELECT set_config('app.tenant_id', $1, false)", A)
        await conn.execute("SET application_name = 'leaked'")
    async with db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 0
        assert await conn.fetchval("SHOW application_name") != "leaked"
    assert await notes_seen_by_read(db) == 0


async def leak_then_fail(db: Database, tenant: str) -> None:
    async with db.tenant(tenant) as conn:
        await conn.execute("SELECT set_config('app.tenant_id', $1, false)", tenant)
        raise RuntimeError("handler failed")


async def test_nor_after_a_rollback(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await leak_then_fail(db, B)
    async with db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    async with db.tenant(A) as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 1


async def test_a_statement_outside_the_pool_transactions_is_reset_on_release(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute("SELECT set_config('app.tenant_id', $1, false)", A)
    assert await notes_seen_by_read(db) == 0


async def insert_then_duplicate(conn: Connection, tenant: str) -> None:
    async with savepoint(conn):
        await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, 'kept?')", tenant)
        await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)", tenant, f"note of {tenant}")


async def test_a_savepoint_rolls_back_alone(db: Database) -> None:
    async with db.tenant(A) as conn:
        with pytest.raises(asyncpg.UniqueViolationError):
            await insert_then_duplicate(conn, A)
        await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, 'after')", A)
    async with db.tenant(A) as conn:
        bodies = {r["body"] for r in await conn.fetch("SELECT body FROM notes")}
    assert bodies == {f"note of {A}", "after"}


async def test_asyncpg_nesting_is_refused_inside(db: Database) -> None:
    """asyncpg did not open the transaction: its nested blocks would not be savepoints."""
    with pytest.raises(asyncpg.InterfaceError):
        async with db.tenant(A) as conn, conn.transaction():
            pass


async def test_the_isolation_level_can_still_be_chosen(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assert await conn.fetchval("SHOW transaction_isolation") == "repeatable read"
