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
from panicsafe.core.db.database import Database, savepoint
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.sessions import token_hash
from panicsafe.gateway.identity import logins
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
    admin_login: str  # the whole sign-in identifier: `<login>@<code>`
    invitation_token: str
    code: str  # the organisation's code, which ends every login of it

    def link(self, public_url: str) -> str:
        return invitation_link(public_url, self.invitation_token)


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

    The tenant's code comes from its name (`identity.logins`), and completes `admin_login`.

    Its transit key is created first, by the gateway (the only identity OpenBao lets create one), so
    that every service can seal the tenant's data from its first record on."""
    tenant_id = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    await keys.ensure_tenant_key(tenant_id)
    async with db.tenant(tenant_id) as conn:
        for code in logins.code_candidates(name):
            try:
                async with savepoint(conn):
                    await tenancy.create_tenant(
                        conn,
                        tenant_id=tenant_id,
                        name=name,
                        code=code,
                        kind=kind,
                        region=region,
                        share_with_region=share_with_region,
                    )
                break
            except tenancy.NameTaken:
                continue
        admin_login = logins.qualified(admin_login, code)
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
    return BootstrappedTenant(tenant_id, admin_login, token, code)


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    admin_login: str
    invitation_token: str | None  # None: the administrator has enrolled
    created: bool


async def ensure_demo(db: Database, keys: TransitKeys, tenant_id: str | None) -> DemoTenant:
    """The demo tenant of a previous run if it still exists, else a new one.

    While its administrator has not enrolled, a new invitation replaces the pending ones: only
    hashes of invitation tokens are kept, so the link of the previous run cannot be printed again."""
    if tenant_id is not None and _is_uuid(tenant_id):
        async with db.tenant(tenant_id) as conn:
            found = await tenancy.tenant(conn, tenant_id)
        if found is not None:
            await keys.ensure_tenant_key(tenant_id)  # a platform older than gateway-made keys
        async with db.tenant(tenant_id) as conn:
            if await tenancy.tenant(conn, tenant_id) is not None:
                first = await conn.fetchrow(
                    "SELECT * FROM invitations WHERE tenant_role = 'admin' ORDER BY created_at LIMIT 1"
                )
                if first is not None:
                    login = str(first["login"])
                    enrolled = await conn.fetchval(
                        "SELECT EXISTS (SELECT 1 FROM invitations WHERE login = $1 AND used_at IS NOT NULL)", login
                    )
                    if enrolled:
                        return DemoTenant(tenant_id, login, None, created=False)
                    await conn.execute(
                        "UPDATE invitations SET expires_at = now() "
                        "WHERE login = $1 AND used_at IS NULL AND expires_at > now()",
                        login,
                    )
                    token = secrets.token_urlsafe(32)
                    await tenancy.create_invitation(
                        conn,
                        tenant_id=tenant_id,
                        token_hash=token_hash(token),
                        login=login,
                        display_name=str(first["display_name"]),
                        tenant_role="admin",
                        supervisor_region=None,
                        created_by=None,
                        expires_at=datetime.now(UTC) + timedelta(hours=72),
                    )
                    return DemoTenant(tenant_id, login, token, created=False)
    demo = await create_demo(db, keys)
    return DemoTenant(demo.tenant_id, demo.admin_login, demo.invitation_token, created=True)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def invitation_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/#/invitation/{token}"


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
