"""Helpers for tests against the real servers of a `DevStack` (used by every package's tests)."""

from __future__ import annotations

import secrets

from panicsafe.contracts.catalog import GATEWAY
from panicsafe.core.bus.consumer import DEAD_LETTERS_DDL
from panicsafe.core.bus.outbox import OUTBOX_DDL
from panicsafe.core.crypto import TenantKeyMissingError, TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.devstack import DevStack


class ProvisionedSchema:
    """A freshly provisioned service schema: owner and app roles, bus tables created."""

    def __init__(self, stack: DevStack, roles: ServiceRoles) -> None:
        pg = stack.postgres
        self.roles = roles
        self.schema = roles.schema
        self.owner_dsn = roles.owner_dsn(pg.host, pg.port, pg.database)
        self.app_dsn = roles.app_dsn(pg.host, pg.port, pg.database)
        self.admin_dsn = pg.admin_dsn

    def database(self, **kwargs: int) -> Database:
        return Database(self.app_dsn, self.schema, **kwargs)

    def owner_database(self) -> Database:
        return Database(self.owner_dsn, self.schema)


async def make_schema(stack: DevStack, prefix: str = "t") -> ProvisionedSchema:
    roles = ServiceRoles(f"{prefix}_{secrets.token_hex(4)}", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    await provision_service(stack.postgres.admin_dsn, roles)
    schema = ProvisionedSchema(stack, roles)
    owner = schema.owner_database()
    await owner.open()
    try:
        async with owner.transaction() as conn:
            for statement in (*OUTBOX_DDL, *DEAD_LETTERS_DDL):
                await conn.execute(statement)
    finally:
        await owner.close()
    return schema


def gateway_keys(stack: DevStack) -> TransitKeys:
    """The tenant keys as the gateway reaches them: it alone creates (with a tenant) and destroys them."""
    return TransitKeys(stack.openbao.session(GATEWAY))


class ServiceKeys(TransitKeys):
    """A service's tenant keys, with its own OpenBao identity, for tests whose tenants are made up on
    the spot: a missing tenant key is created by the gateway's identity, as `create_tenant` does in
    production, and then used with the service's."""

    def __init__(self, stack: DevStack, service: str) -> None:
        super().__init__(stack.openbao.session(service))
        self.gateway = gateway_keys(stack)

    async def ensure_tenant_key(self, tenant_id: str) -> str:
        try:
            return await super().ensure_tenant_key(tenant_id)
        except TenantKeyMissingError:
            await self.gateway.ensure_tenant_key(tenant_id)
            return await super().ensure_tenant_key(tenant_id)
