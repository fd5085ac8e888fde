"""The application role cannot set its way past row-level security (issue 15, items 4 and 6).

Connected as a service's runtime role (`<schema>_app`), a process that writes any setting it likes
(`app.identity = 'lookup'`, `app.region`, `app.logbook_scan = 'on'`: the flags policies used to
honour) still sees and changes only the rows of the tenant its transaction is scoped to, and cannot
become the schema's owner. What must cross tenants goes through narrow `SECURITY DEFINER` functions
owned by the owner, each answering one lookup keyed by what the caller holds (a login, the hash of a
secret, a credential id); the crisis overview reads the tenant in scope, never one it is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from panicsafe.contracts.catalog import SERVICE_NAMES
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Connection, Database, savepoint
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, gateway_keys, make_schema
from panicsafe.gateway.bootstrap import create_tenant
from panicsafe.gateway.identity.logins import qualified

# Every setting besides the tenant that a policy or a flow of the platform ever honoured.
FORMER_FLAGS = {"app.identity": "lookup", "app.region": "HDF", "app.logbook_scan": "on"}
GATEWAY_TENANT_TABLES = (
    "users",
    "regional_supervisors",
    "passkeys",
    "recovery_codes",
    "invitations",
    "sessions",
    "refresh_tokens",
    "auth_challenges",
    "establishments",
    "crises",
    "crisis_establishments",
    "cells",
    "crisis_members",
    "cell_members",
)
LOGBOOK_TENANT_TABLES = ("logs", "announced", "checkpoints", "entries", "exports")
# The definer functions each schema must have (beside core's outbox relay functions).
DEFINERS = {
    "gateway": {
        "login_account",
        "invitation_tenant",
        "challenge_tenant",
        "refresh_token_tenant",
        "passkey_tenant",
        "new_passkey_login_challenge",
        "take_passkey_login_challenge",
        "regional_indicators",
    },
    "logbook": {"logs_to_announce", "logs_to_checkpoint"},
}


def sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def migrations_of(service: str) -> Path | None:
    module = importlib.import_module(f"panicsafe.{service}")
    folder = Path(module.__file__ or "").parent / "migrations"
    return folder if folder.is_dir() else None


@pytest.fixture(scope="module")
async def schemas(stack: DevStack) -> dict[str, ProvisionedSchema]:
    """A schema of every service, provisioned and migrated to its heads as the service does it."""
    made = {}
    for service in SERVICE_NAMES:
        schema = await make_schema(stack, f"esc_{service}")
        await asyncio.to_thread(upgrade, migrations_of(service), schema.owner_dsn, schema.schema)
        made[service] = schema
    return made


async def set_flags(conn: Connection) -> None:
    for name, value in FORMER_FLAGS.items():
        await conn.execute("SELECT set_config($1, $2, true)", name, value)


async def count_of(conn: Connection, table: str, tenant_id: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id))


# -- the gateway ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """One tenant's identity and crisis rows, and the keys a flow would hold to find them."""

    tenant_id: str
    user_id: str
    login: str
    session_id: str
    refresh_token: str
    credential_id: bytes
    challenge_id: str
    invitation_token: str
    crisis_id: str


async def plant(db: Database, keys: TransitKeys) -> Planted:
    tag = secrets.token_hex(4)
    tenant = await create_tenant(
        db,
        keys,
        name=f"GHT {tag}",
        region="HDF",
        admin_login=f"admin-{tag}",
        admin_name="Administrateur",
        establishments=[(f"Hôpital {tag}", "hospital")],
        share_with_region=True,
    )
    t = tenant.tenant_id
    user, session, challenge, crisis, cell = (str(uuid.uuid4()) for _ in range(5))
    refresh, credential = secrets.token_urlsafe(32), secrets.token_bytes(16)
    login = qualified(f"agent-{tag}", tenant.code)  # a login names its organisation
    async with db.tenant(t) as conn:
        await conn.execute(
            "INSERT INTO users (id, tenant_id, login, display_name, tenant_role, status, password_hash, "
            "mfa_enrolled_at) VALUES ($1, $2, $3, 'Agent', 'admin', 'active', 'not-a-hash', now())",
            user,
            t,
            login,
        )
        await conn.execute(
            "INSERT INTO regional_supervisors (user_id, tenant_id, region) VALUES ($1, $2, 'HDF')", user, t
        )
        await conn.execute(
            "INSERT INTO passkeys (credential_id, user_id, tenant_id, public_key) VALUES ($1, $2, $3, '\\x00')",
            credential,
            user,
            t,
        )
        await conn.execute("INSERT INTO recovery_codes (user_id, tenant_id, code_hash) VALUES ($1, $2, 'h')", user, t)
        await conn.execute(
            "INSERT INTO sessions (id, user_id, tenant_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 hour')",
            session,
            user,
            t,
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, tenant_id) VALUES ($1, $2, $3)",
            sha256(refresh),
            session,
            t,
        )
        await conn.execute(
            "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, expires_at) "
            "VALUES ($1, 'second_factor', $2, $3, now() + interval '5 minutes')",
            challenge,
            user,
            t,
        )
        await conn.execute(
            "INSERT INTO crises (id, tenant_id, title, mode, severity, t0, declared_by) "
            "VALUES ($1, $2, 'Rançongiciel', 'real', 'major', now(), $3)",
            crisis,
            t,
            user,
        )
        await conn.execute(
            "INSERT INTO crisis_establishments (crisis_id, establishment_id, tenant_id) "
            "SELECT $1, id, tenant_id FROM establishments",
            crisis,
        )
        await conn.execute(
            "INSERT INTO cells (id, crisis_id, tenant_id, kind, name) VALUES ($1, $2, $3, 'decision', 'Décision')",
            cell,
            crisis,
            t,
        )
        await conn.execute(
            "INSERT INTO crisis_members (crisis_id, user_id, tenant_id, role) VALUES ($1, $2, $3, 'director')",
            crisis,
            user,
            t,
        )
        await conn.execute(
            "INSERT INTO cell_members (cell_id, user_id, crisis_id, tenant_id) VALUES ($1, $2, $3, $4)",
            cell,
            user,
            crisis,
            t,
        )
    return Planted(t, user, login, session, refresh, credential, challenge, tenant.invitation_token, crisis)


@dataclass(frozen=True)
class GatewayRows:
    schema: ProvisionedSchema
    db: Database
    ours: Planted
    theirs: Planted


@pytest.fixture(scope="module")
async def gateway(stack: DevStack, schemas: dict[str, ProvisionedSchema]) -> AsyncIterator[GatewayRows]:
    schema = schemas["gateway"]
    keys = gateway_keys(stack)
    db = schema.database()
    await db.open()
    try:
        yield GatewayRows(schema, db, await plant(db, keys), await plant(db, keys))
    finally:
        await db.close()


async def test_no_setting_widens_what_the_gateway_role_sees_or_changes(gateway: GatewayRows) -> None:
    ours, theirs = gateway.ours.tenant_id, gateway.theirs.tenant_id
    async with gateway.db.tenant(ours) as conn:
        await set_flags(conn)
        for table in GATEWAY_TENANT_TABLES:
            assert await count_of(conn, table, theirs) == 0, f"{table}: another tenant's rows"
            assert await count_of(conn, table, ours) >= 1, f"{table}: own rows missing"
        assert [str(r["id"]) for r in await conn.fetch("SELECT id FROM tenants")] == [ours]
        # Nor written: another tenant's sessions, tokens, passkeys, accounts stay as they are.
        for change, done in (
            ("UPDATE sessions SET revoked_at = now()", "UPDATE 0"),
            ("UPDATE refresh_tokens SET used_at = now()", "UPDATE 0"),
            ("UPDATE users SET status = 'disabled'", "UPDATE 0"),
            ("DELETE FROM passkeys", "DELETE 0"),
        ):
            assert await conn.execute(f"{change} WHERE tenant_id = $1", theirs) == done, change
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with savepoint(conn):
                await conn.execute(
                    "INSERT INTO sessions (id, user_id, tenant_id, expires_at) VALUES ($1, $2, $3, now())",
                    str(uuid.uuid4()),
                    gateway.theirs.user_id,
                    theirs,
                )
    async with gateway.db.transaction() as conn:  # no tenant at all: nothing, whatever the flags
        await set_flags(conn)
        for table in (*GATEWAY_TENANT_TABLES, "tenants"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_the_gateway_definer_functions_answer_one_lookup_each(gateway: GatewayRows) -> None:
    theirs = gateway.theirs
    async with gateway.db.tenant(gateway.ours.tenant_id) as conn:
        accounts = await conn.fetch("SELECT * FROM login_account($1)", theirs.login)
        assert [(str(a["id"]), str(a["tenant_id"])) for a in accounts] == [(theirs.user_id, theirs.tenant_id)]
        assert list(accounts[0].keys()) == [
            "id",
            "tenant_id",
            "password_hash",
            "display_name",
            "totp_enabled",
            "passkeys",
        ]
        assert await conn.fetch("SELECT * FROM login_account($1)", f"personne-{secrets.token_hex(4)}") == []

        async def tenant_of(function: str, key: object) -> str | None:
            found = await conn.fetchval(f"SELECT {function}($1)", key)
            return None if found is None else str(found)

        assert await tenant_of("challenge_tenant", theirs.challenge_id) == theirs.tenant_id
        assert await tenant_of("challenge_tenant", str(uuid.uuid4())) is None
        assert await tenant_of("invitation_tenant", sha256(theirs.invitation_token)) == theirs.tenant_id
        assert await tenant_of("invitation_tenant", sha256("guess")) is None
        assert await tenant_of("refresh_token_tenant", sha256(theirs.refresh_token)) == theirs.tenant_id
        assert await tenant_of("refresh_token_tenant", sha256("guess")) is None
        assert await tenant_of("passkey_tenant", theirs.credential_id) == theirs.tenant_id
        assert await tenant_of("passkey_tenant", secrets.token_bytes(16)) is None
        # No cross-tenant "is this login taken?" (an oracle on other organisations' logins): gone.
        assert await conn.fetchval("SELECT to_regproc('login_taken')") is None

        # A passkey-only login's challenge has no tenant: created and spent through functions, once.
        anonymous = str(uuid.uuid4())
        await conn.execute(
            "SELECT new_passkey_login_challenge($1, $2, now() + interval '5 minutes')", anonymous, b"c" * 32
        )
        taken = await conn.fetch("SELECT * FROM take_passkey_login_challenge($1)", anonymous)
        assert [(str(r["id"]), r["purpose"], bytes(r["challenge"])) for r in taken] == [
            (anonymous, "passkey_login", b"c" * 32)
        ]
        assert await conn.fetch("SELECT * FROM take_passkey_login_challenge($1)", anonymous) == []
        assert await conn.fetch("SELECT * FROM take_passkey_login_challenge($1)", theirs.challenge_id) == []
        # The functions left nothing open behind them.
        assert await count_of(conn, "users", theirs.tenant_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM auth_challenges WHERE tenant_id IS NULL") == 0


async def test_the_crisis_overview_shows_only_the_tenant_in_scope(gateway: GatewayRows) -> None:
    ours, theirs = gateway.ours, gateway.theirs
    async with gateway.db.tenant(ours.tenant_id) as conn:
        await set_flags(conn)
        assert await conn.fetchrow("SELECT * FROM crisis_overview($1)", theirs.crisis_id) is None
        own = await conn.fetchrow("SELECT * FROM crisis_overview($1)", ours.crisis_id)
        assert own is not None
        assert [m["user_id"] for m in own["members"]] == [ours.user_id]
    async with gateway.db.transaction() as conn:
        assert await conn.fetchrow("SELECT * FROM crisis_overview($1)", theirs.crisis_id) is None
        # No signature takes a tenant: there is no way to name another one.
        # (in this schema: the other gateway schemas the session's tests made have their own copy)
        arities = await conn.fetch(
            "SELECT pronargs FROM pg_proc WHERE proname = 'crisis_overview' "
            "AND pronamespace = current_schema()::regnamespace"
        )
        assert [a["pronargs"] for a in arities] == [1]


# -- the logbook ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def logbook(schemas: dict[str, ProvisionedSchema]) -> AsyncIterator[tuple[Database, dict[str, str]]]:
    """The logbook's schema with one log head (announced, checkpointed) per tenant: tenant -> crisis."""
    db = schemas["logbook"].database()
    await db.open()
    logs = {str(uuid.uuid4()): str(uuid.uuid4()) for _ in range(2)}
    try:
        for tenant, crisis in logs.items():
            async with db.tenant(tenant) as conn:
                await conn.execute(
                    "INSERT INTO logs (tenant_id, crisis_id, mode, size, chain_head) VALUES ($1, $2, 'real', 3, $3)",
                    tenant,
                    crisis,
                    bytes(32),
                )
                await conn.execute(
                    "INSERT INTO announced (tenant_id, crisis_id, mode, size) VALUES ($1, $2, 'real', 1)",
                    tenant,
                    crisis,
                )
                await conn.execute(
                    "INSERT INTO checkpoints (tenant_id, crisis_id, mode, tree_size, root_hash, chain_head, issued_at, "
                    "signature, key_version) VALUES ($1, $2, 'real', 1, $3, $3, '2026-01-01T00:00:00Z', $4, 1)",
                    tenant,
                    crisis,
                    bytes(32),
                    bytes(64),
                )
        yield db, logs
    finally:
        await db.close()


async def test_no_setting_widens_what_the_logbook_role_sees(logbook: tuple[Database, dict[str, str]]) -> None:
    db, logs = logbook
    ours, theirs = list(logs)
    async with db.tenant(ours) as conn:
        await set_flags(conn)
        for table in LOGBOOK_TENANT_TABLES:
            assert await count_of(conn, table, theirs) == 0, table
        assert [str(r["crisis_id"]) for r in await conn.fetch("SELECT crisis_id FROM logs")] == [logs[ours]]
    async with db.transaction() as conn:
        await set_flags(conn)
        for table in LOGBOOK_TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        # The checkpointer and the announcer still find every tenant's heads, through their functions.
        expected = sorted((tenant, crisis, "real") for tenant, crisis in logs.items())
        for function in ("logs_to_checkpoint", "logs_to_announce"):
            rows = await conn.fetch(f"SELECT * FROM {function}(100)")
            assert sorted(tuple(r.values()) for r in rows) == expected, function
            assert {tuple(r.keys()) for r in rows} == {("tenant", "crisis", "mode")}  # heads only
        assert await conn.fetchval("SELECT count(*) FROM logs") == 0  # and left no scan mode behind


# -- every schema ---------------------------------------------------------------------------------

POLICIES = """
SELECT c.relname || '.' || p.polname AS name,
       coalesce(pg_get_expr(p.polqual, p.polrelid), '') AS using_expr,
       coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') AS check_expr,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END FROM unnest(p.polroles) r) AS roles
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 ORDER BY 1
"""
DEFINER_FUNCTIONS = """
SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, coalesce(p.proconfig, '{}') AS config,
       has_function_privilege($2, p.oid, 'EXECUTE') AS app_may,
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_may
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.prosecdef ORDER BY 1
"""


async def test_policies_honour_the_tenant_alone_and_the_owner_is_out_of_reach(
    schemas: dict[str, ProvisionedSchema],
) -> None:
    for service, schema in schemas.items():
        admin = await asyncpg.connect(schema.admin_dsn)
        try:
            policies = await admin.fetch(POLICIES, schema.schema)
        finally:
            await admin.close()
        for policy in policies:
            where = f"{service}: {policy['name']}"
            settings = set(re.findall(r"current_setting\('([^']+)'", policy["using_expr"] + policy["check_expr"]))
            if policy["roles"] == ["public"]:
                assert settings <= {"app.tenant_id"}, f"{where} honours {sorted(settings)}"
                assert not policy["using_expr"] or settings, f"{where} shows rows of every tenant"
            else:  # the functions' own way in: their owner's, a role no other role is granted
                assert policy["roles"] == [schema.roles.owner], where

        app = await asyncpg.connect(schema.app_dsn)
        try:
            for statement in (f"SET ROLE {schema.roles.owner}", f"SET SESSION AUTHORIZATION {schema.roles.owner}"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await app.execute(statement)
            assert await app.fetchval("SELECT current_user") == schema.roles.app
        finally:
            await app.close()


async def test_definer_functions_are_the_owners_pinned_and_for_the_app_role_only(
    schemas: dict[str, ProvisionedSchema],
) -> None:
    for service, schema in schemas.items():
        admin = await asyncpg.connect(schema.admin_dsn)
        try:
            functions = await admin.fetch(DEFINER_FUNCTIONS, schema.schema, schema.roles.app)
        finally:
            await admin.close()
        names = {f["name"] for f in functions}
        assert DEFINERS.get(service, set()) <= names, f"{service}: missing {DEFINERS[service] - names}"
        for function in functions:
            where = f"{service}: {function['name']}"
            assert function["owner"] == schema.roles.owner, where
            assert f"search_path={schema.schema}, pg_temp" in function["config"], where
            assert function["app_may"], where
            assert not function["public_may"], where
