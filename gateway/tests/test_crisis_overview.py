"""`crisis_overview`, the crisis read in one statement: it sees the tenant in scope and no other, and
takes no tenant of its own (migration 0007)."""

from __future__ import annotations

from gwclient import GatewayUnderTest, declare, new_tenant_admin

from panicsafe.gateway.store import tenancy


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

    async with gateway.db.pool.acquire() as conn:  # no tenant in scope: nothing
        assert await conn.fetchrow("SELECT * FROM crisis_overview($1)", crisis["id"]) is None

    async with gateway.db.tenant(admin.tenant_id) as conn:
        details = await tenancy.crisis_details(conn, crisis["id"])
        assert [m["user_id"] for m in details["members"]] == [admin.user_id]
