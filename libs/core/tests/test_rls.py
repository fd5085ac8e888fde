"""Row-level security: a session scoped to tenant A reads and writes none of tenant B's rows."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from panicsafe.core.db.rls import tenant_rls_statements
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema

A = str(uuid.uuid4())
B = str(uuid.uuid4())


@pytest.fixture
async def secrets_table(stack: DevStack) -> ProvisionedSchema:
    schema = await make_schema(stack, "rls")
    owner = schema.owner_database()
    await owner.open()
    try:
        async with owner.transaction() as conn:
            await conn.execute("CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text)")
            for statement in tenant_rls_statements("notes"):
                await conn.execute(statement)
    finally:
        await owner.close()
    app = schema.database()
    await app.open()
    try:
        for tenant, body in ((A, "note of A"), (B, "note of B, confidential")):
            async with app.tenant(tenant) as conn:
                await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)", tenant, body)
    finally:
        await app.close()
    return schema


async def test_tenant_a_reads_none_of_b(secrets_table: ProvisionedSchema) -> None:
    app = secrets_table.database()
    await app.open()
    try:
        async with app.tenant(A) as conn:
            rows = await conn.fetch("SELECT * FROM notes")
            assert [r["body"] for r in rows] == ["note of A"]
            assert await conn.fetchval("SELECT count(*) FROM notes WHERE tenant_id = $1", B) == 0
            # Neither updates nor deletes reach B's rows.
            assert await conn.execute("UPDATE notes SET body = 'x' WHERE tenant_id = $1", B) == "UPDATE 0"
            assert await conn.execute("DELETE FROM notes WHERE tenant_id = $1", B) == "DELETE 0"
        async with app.tenant(B) as conn:
            assert [r["body"] for r in await conn.fetch("SELECT * FROM notes")] == ["note of B, confidential"]
    finally:
        await app.close()


async def test_writing_into_another_tenant_is_refused(secrets_table: ProvisionedSchema) -> None:
    app = secrets_table.database()
    await app.open()
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with app.tenant(A) as conn:
                await conn.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, 'planted')", B)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with app.tenant(A) as conn:
                await conn.execute("UPDATE notes SET tenant_id = $1", B)
    finally:
        await app.close()


async def test_no_tenant_set_sees_nothing(secrets_table: ProvisionedSchema) -> None:
    app = secrets_table.database()
    await app.open()
    try:
        async with app.transaction() as conn:
            assert await conn.fetchval("SELECT count(*) FROM notes") == 0
        # The scope is transaction-local: a pooled connection does not leak it to the next user.
        async with app.tenant(A) as conn:
            assert await conn.fetchval("SELECT count(*) FROM notes") == 1
        async with app.transaction() as conn:
            assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    finally:
        await app.close()


async def test_app_role_cannot_switch_rls_off(secrets_table: ProvisionedSchema) -> None:
    conn = await asyncpg.connect(secrets_table.app_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"ALTER TABLE {secrets_table.schema}.notes DISABLE ROW LEVEL SECURITY")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET row_security = off; SELECT * FROM " + secrets_table.schema + ".notes")
    finally:
        await conn.close()


async def test_tenant_scope_needs_a_uuid(secrets_table: ProvisionedSchema) -> None:
    app = secrets_table.database()
    await app.open()
    try:
        with pytest.raises(ValueError, match=r"UUID|hexadecimal"):
            async with app.tenant("' OR 1=1 --"):
                pass
    finally:
        await app.close()
