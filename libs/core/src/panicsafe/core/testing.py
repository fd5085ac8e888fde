"""Helpers for tests against the real servers of a `DevStack` (used by every package's tests)."""

from __future__ import annotations

import secrets

from panicsafe.core.bus.consumer import DEAD_LETTERS_DDL
from panicsafe.core.bus.outbox import OUTBOX_DDL
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
