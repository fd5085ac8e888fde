"""Logins are global, but an accepting invitation sees only its own tenant: a login another tenant's
account holds is refused all the same (the unique index sees every tenant), and nothing is kept."""

from __future__ import annotations

import secrets

import pytest
from gwdb import PASSWORD, auth_service, client, migrated_schema, opened

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.devstack import DevStack
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.bootstrap import create_tenant


async def test_a_login_taken_in_another_tenant_is_refused_at_acceptance(stack: DevStack) -> None:
    async with opened(await migrated_schema(stack)) as db:
        auth = auth_service(stack, db)
        login = f"admin-{secrets.token_hex(4)}"
        first = await create_tenant(db, name="GHT Un", region="HDF", admin_login=login, admin_name="Admin Un")
        # The bootstrap does not look across tenants: two invitations may name the same login.
        second = await create_tenant(db, name="GHT Deux", region="HDF", admin_login=login, admin_name="Admin Deux")
        await auth.enrol_password(first.invitation_token, PASSWORD, client())
        with pytest.raises(ServiceError) as refused:
            await auth.enrol_password(second.invitation_token, PASSWORD, client())
        assert refused.value.code == ErrorCode.CONFLICT
        assert "déjà pris" in refused.value.message
        # The refused acceptance left nothing: the invitation is still open, no account was made.
        assert (await auth.inspect_invitation(second.invitation_token))["login"] == login
        async with db.tenant(second.tenant_id) as conn:
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
