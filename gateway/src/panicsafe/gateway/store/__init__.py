"""SQL for the gateway's own schema: identity and tenancy.

Row-level security shows the runtime role a row only inside its tenant's transaction, whatever else
the transaction sets. The identity flows that start before the tenant is known (login, invitation,
refresh, passkey) find it through a function of the schema's owner (migration 0007) keyed by what
the caller holds, and go on in that tenant's scope.
"""

from __future__ import annotations

from typing import Literal, get_args

from panicsafe.core.db.database import TENANT_SETTING, Connection

# The definer functions that name the tenant of a key (migration 0007).
TenantLookup = Literal["challenge_tenant", "invitation_tenant", "refresh_token_tenant", "passkey_tenant"]
_TENANT_LOOKUPS = frozenset(get_args(TenantLookup))


async def enter_tenant_of(conn: Connection, lookup: TenantLookup, key: object) -> str | None:
    """Scope the rest of the transaction to the tenant `lookup` finds for `key`, in one statement.

    None if it finds none: the transaction then has no tenant, and tenant rows stay out of sight."""
    if lookup not in _TENANT_LOOKUPS:
        raise ValueError(f"not a tenant lookup: {lookup!r}")
    tenant = await conn.fetchval(f"SELECT set_config('{TENANT_SETTING}', coalesce({lookup}($1)::text, ''), true)", key)
    return str(tenant) if tenant else None
