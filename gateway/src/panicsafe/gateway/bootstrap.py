"""Creating a tenant with its key, its establishments and a first administrator's invitation.

Used by the operator's bootstrap and, in development, by `make run` (the "GHT Démo" tenant).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from panicsafe.contracts import gateway as gw
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.sessions import token_hash
from panicsafe.gateway.store import tenancy

DEMO_TENANT = "GHT Démo"
DEMO_ESTABLISHMENTS = (
    ("Centre hospitalier Démo-Nord", "hospital"),
    ("Clinique du Littoral (démo)", "clinic"),
    ("EHPAD Les Tilleuls (démo)", "nursing_home"),
)


@dataclass(frozen=True)
class BootstrappedTenant:
    tenant_id: str
    admin_login: str
    invitation_token: str

    def link(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/#/invitation/{self.invitation_token}"


async def create_tenant(
    db: Database,
    keys: TransitKeys,
    *,
    name: str,
    region: str,
    admin_login: str,
    admin_name: str,
    establishments: Sequence[tuple[str, str]] = (),
    kind: str = "ght",
    share_with_region: bool = False,
    supervisor_region: str | None = None,
    invitation_ttl: timedelta = timedelta(hours=72),
) -> BootstrappedTenant:
    """A new tenant; its first account is an administrator who enrols from the returned invitation.

    Its transit key is created first, by the gateway (the only identity OpenBao lets create one), so
    that every service can seal the tenant's data from its first record on."""
    tenant_id = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    await keys.ensure_tenant_key(tenant_id)
    async with db.tenant(tenant_id) as conn:
        await tenancy.create_tenant(
            conn,
            tenant_id=tenant_id,
            name=name,
            kind=kind,
            region=region,
            share_with_region=share_with_region,
        )
        for establishment, type_ in establishments:
            await tenancy.create_establishment(conn, tenant_id=tenant_id, name=establishment, type_=type_)
        await tenancy.create_invitation(
            conn,
            tenant_id=tenant_id,
            token_hash=token_hash(token),
            login=admin_login,
            display_name=admin_name,
            tenant_role="admin",
            supervisor_region=supervisor_region,
            created_by=None,
            expires_at=datetime.now(UTC) + invitation_ttl,
        )
        await security_events.record(
            conn,
            kind=gw.TENANT_CREATED,
            tenant_id=tenant_id,
            summary=f"Organisation « {name} » créée ; invitation de l'administrateur {admin_login}.",
        )
    return BootstrappedTenant(tenant_id, admin_login, token)


async def create_demo(db: Database, keys: TransitKeys) -> BootstrappedTenant:
    return await create_tenant(
        db,
        keys,
        name=DEMO_TENANT,
        region="HDF",
        admin_login=f"admin.demo-{secrets.token_hex(2)}",
        admin_name="Administrateur démo",
        establishments=DEMO_ESTABLISHMENTS,
        share_with_region=True,
    )
