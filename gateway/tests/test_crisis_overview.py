"""`crisis_overview`, the crisis read in one statement that scopes itself to its tenant: row-level
security still decides what it sees, and no scope outlives the statement."""

from __future__ import annotations

import asyncpg
import pytest
from gwclient import Account, GatewayUnderTest, declare, new_tenant_admin

from panicsafe.core.db.database import Connection
from panicsafe.gateway.store import tenancy


async def details_across_tenants(conn: Connection, owner: Account, crisis_id: str) -> None:
    await tenancy.crisis_details(conn, owner.tenant_id, crisis_id)


async def test_crisis_overview_sees_its_own_tenant_only(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        crisis = await declare(client, admin, "Vue d'ensemble")
        outsider = await new_tenant_admin(gateway, client)
    own = await tenancy.crisis_overview(gateway.db, admin.tenant_id, crisis["id"])
    assert own is not None
    assert [c["id"] for c in own["cells"]] == [c["id"] for c in crisis["cells"]]
    assert [m["user_id"] for m in own["members"]] == [admin.user_id]
    assert await tenancy.crisis_overview(gateway.db, outsider.tenant_id, crisis["id"]) is None

    async with gateway.db.pool.acquire() as conn:
        await conn.fetchrow("SELECT * FROM crisis_overview($1, $2)", admin.tenant_id, crisis["id"])
        assert await conn.fetchval("SELECT coalesce(current_setting('app.tenant_id', true), '')") == ""
        assert await conn.fetchval("SELECT count(*) FROM crises") == 0

    # Inside a transaction of another tenant, it refuses to switch the scope.
    async with gateway.db.tenant(outsider.tenant_id) as conn:
        with pytest.raises(asyncpg.RaiseError, match="another tenant"):
            await details_across_tenants(conn, admin, crisis["id"])
