"""The gateway's identity flows in the test process, on a gateway schema of their own (no platform).

For what the HTTP tests cannot do: drive the throttle with a clock the test controls, or migrate a
schema from an older revision with data in it.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from panicsafe.core.crypto import EnvelopeCipher, TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, gateway_keys, make_schema
from panicsafe.core.tokens import SigningKey
from panicsafe.gateway.app import MIGRATIONS
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.auth.service import AuthService, Client
from panicsafe.gateway.auth.throttle import Throttle, ThrottlePolicy, wall_clock
from panicsafe.gateway.bootstrap import create_tenant
from panicsafe.gateway.identity import passwords
from panicsafe.gateway.identity.passkeys import PasskeyConfig

PASSWORD = "cheval-agrafe-Lune-97!"


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Member:
    user_id: str
    tenant_id: str
    login: str


async def migrated_schema(stack: DevStack, revision: str | None = None) -> ProvisionedSchema:
    """A new gateway schema with its own roles, migrated to `revision` (default: every head)."""
    schema = await make_schema(stack, prefix="gw")
    args = () if revision is None else (revision,)
    await asyncio.to_thread(upgrade, MIGRATIONS, schema.owner_dsn, schema.schema, *args)
    return schema


@asynccontextmanager
async def opened(schema: ProvisionedSchema) -> AsyncIterator[Database]:
    db = schema.database()
    await db.open()
    try:
        yield db
    finally:
        await db.close()


def auth_service(stack: DevStack, db: Database, *, clock: FakeClock | None = None) -> AuthService:
    """The gateway's `AuthService` as `app.build_services` makes it, with the given throttle clock."""
    return AuthService(
        db=db,
        cipher=EnvelopeCipher(gateway_keys(stack)),
        tokens=AccessTokens(SigningKey.generate()),
        throttle=Throttle(db, ThrottlePolicy(), clock=clock or wall_clock),
        passkey_config=PasskeyConfig(rp_id="127.0.0.1", rp_name="PanicSAFE", origin="http://127.0.0.1"),
        session_max=timedelta(hours=12),
        refresh_idle=timedelta(hours=1),
    )


async def active_member(db: Database, keys: TransitKeys, password: str = PASSWORD) -> Member:
    """A tenant with one active account that has a password (its second factors are up to the test)."""
    login = f"m-{secrets.token_hex(4)}"
    tenant = await create_tenant(
        db, keys, name=f"GHT {secrets.token_hex(3)}", region="HDF", admin_login=f"a-{login}", admin_name="Admin"
    )
    return await insert_member(db, tenant.tenant_id, f"{login}@{tenant.code}", password)


async def member_before_tenant_codes(db: Database, name: str, login: str, password: str = PASSWORD) -> Member:
    """`active_member` in a schema older than revision 0008: an organisation without a
    code, an account with a bare login (what `create_tenant` did then)."""
    tenant_id = str(uuid.uuid4())
    async with db.tenant(tenant_id) as conn:
        await conn.execute(
            "INSERT INTO tenants (id, name, kind, region) VALUES ($1, $2, 'ght', 'HDF')", tenant_id, name
        )
    return await insert_member(db, tenant_id, login, password)


async def insert_member(db: Database, tenant_id: str, login: str, password: str = PASSWORD) -> Member:
    user_id = str(uuid.uuid4())
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    async with db.tenant(tenant_id) as conn:
        await conn.execute(
            "INSERT INTO users (id, tenant_id, login, display_name, tenant_role, status, password_hash, "
            "mfa_enrolled_at) VALUES ($1, $2, $3, 'Membre Test', 'member', 'active', $4, now())",
            user_id,
            tenant_id,
            login,
            hashed,
        )
    return Member(user_id, tenant_id, login)


def client() -> Client:
    """A client of its own address, so that no other test's failures count against it."""
    return Client(address=f"test-{secrets.token_hex(6)}", user_agent="pytest")
