"""Row-level security covers every table holding tenant data, in every service schema.

ARCHITECTURE.md: "PostgreSQL row-level security on `tenant_id` for every tenant-owned table". The
platform's database is built as the services build it (each schema provisioned, then migrated by its
owner with the service's own revisions), and pg_catalog is read back: a table with a `tenant_id`
column, or one named below as holding tenant data without one, must have row-level security enabled,
forced (so that the owner is bound too) and at least one policy. Every other table must be named
below with the reason it holds no tenant data, and its columns: a column added to such a table
(a payload, say) makes this test ask again. The one exception, the dead letters of refused events,
must be unreadable to the application role (it may only insert).
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from panicsafe.contracts.catalog import SERVICE_NAMES
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.devstack import DevStack

# Tables without a tenant_id column that hold tenant data all the same.
TENANT_DATA = {
    "gateway.tenants": "one row per tenant: its `id` is the tenant",
    **{f"{s}.outbox": "events waiting for the relay: their payloads are tenant data" for s in SERVICE_NAMES},
}
# Tables that hold no tenant data, with their exact columns.
NO_TENANT_DATA = {
    **{f"{s}.alembic_version": ({"version_num"}, "the schema's revision") for s in SERVICE_NAMES},
    **{
        f"{s}.processed_events": (
            {"consumer", "event_id", "processed_at"},
            "which consumer saw which event id when: random ids, no payload",
        )
        for s in SERVICE_NAMES
    },
    "gateway.auth_throttle": (
        {"key", "failures", "window_start", "locked_until"},
        "failure counts keyed by the login as typed and the address, before any tenant is known",
    ),
    "gateway.authz_versions": ({"user_id", "version"}, "a counter per user id (revision 0004)"),
}
# Tables whose rows name a tenant that cannot be trusted, so row-level security has nothing to scope
# them by: the application role may insert, and read no more than the columns listed.
WRITE_ONLY = {
    f"{s}.dead_letters": (
        {
            "id",
            "consumer",
            "stream_seq",
            "subject",
            "event_id",
            "reason",
            "detail",
            "payload",
            "headers",
            "refused_at",
        },
        {"consumer", "stream_seq"},
        "events a consumer refused (forged or misrouted: the tenant they name is not believed), for operators "
        "(core's bus revision bus0003); the app role's conflict check reads the consumer and stream sequence",
    )
    for s in SERVICE_NAMES
}


def migrations_of(service: str) -> Path | None:
    """The service's own revisions (after core's base), as its runtime migrates them."""
    module = importlib.import_module(f"panicsafe.{service}")
    folder = Path(module.__file__ or "").parent / "migrations"
    return folder if folder.is_dir() else None


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A PostgreSQL of its own, every service schema provisioned and migrated to its heads."""
    stack = DevStack(tmp_path_factory.mktemp("rls"), components=("postgres",))
    stack.start()
    try:
        pg = stack.postgres
        for name in SERVICE_NAMES:
            roles = ServiceRoles(name, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
            asyncio.run(provision_service(pg.admin_dsn, roles))
            upgrade(migrations_of(name), roles.owner_dsn(pg.host, pg.port, pg.database), name)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def catalog(databases: DevStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(databases.postgres.admin_dsn)
    try:
        yield conn
    finally:
        await conn.close()


TABLES = """
SELECT n.nspname || '.' || c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p')
ORDER BY 1
"""


async def test_every_table_with_tenant_data_has_forced_row_level_security(catalog: asyncpg.Connection) -> None:
    tables = await catalog.fetch(TABLES, list(SERVICE_NAMES))
    assert {t["name"].split(".")[0] for t in tables} == set(SERVICE_NAMES)  # every schema was migrated
    unprotected, unclassified, changed = [], [], []
    for table in tables:
        name, columns = table["name"], set(table["columns"])
        if "tenant_id" in columns or name in TENANT_DATA:
            if not (table["enabled"] and table["forced"] and table["policies"]):
                unprotected.append(f"{name} (enabled={table['enabled']}, forced={table['forced']})")
        elif name in WRITE_ONLY:
            if columns != WRITE_ONLY[name][0]:
                changed.append(f"{name}: {sorted(columns)}, was {sorted(WRITE_ONLY[name][0])}")
        elif name not in NO_TENANT_DATA:
            unclassified.append(f"{name} {sorted(columns)}")
        elif columns != NO_TENANT_DATA[name][0]:
            changed.append(f"{name}: {sorted(columns)}, was {sorted(NO_TENANT_DATA[name][0])}")
    assert not unprotected, "tenant data without forced row-level security: " + ", ".join(unprotected)
    assert not unclassified, "tables to classify as tenant data or not: " + ", ".join(unclassified)
    assert not changed, "columns changed on a table said to hold no tenant data: " + "; ".join(changed)
    # Every table this test names exists: a stale entry would hide nothing, but would mislead.
    names = {t["name"] for t in tables}
    assert set(TENANT_DATA) | set(NO_TENANT_DATA) | set(WRITE_ONLY) <= names


async def test_the_application_role_cannot_read_write_only_tables(catalog: asyncpg.Connection) -> None:
    readable = []
    for name, (columns, may_read, _) in WRITE_ONLY.items():
        app = name.split(".")[0] + "_app"
        table = await catalog.fetchrow(
            "SELECT has_table_privilege($1, $2, 'INSERT') AS ins, has_table_privilege($1, $2, 'SELECT') AS sel, "
            "has_table_privilege($1, $2, 'UPDATE') AS upd, has_table_privilege($1, $2, 'DELETE') AS del, "
            "has_table_privilege($1, $2, 'TRUNCATE') AS trunc",
            app,
            name,
        )
        assert table is not None
        if not table["ins"] or table["sel"] or table["upd"] or table["del"] or table["trunc"]:
            readable.append(f"{name}: {dict(table)}")
        for column in columns:
            if await catalog.fetchval("SELECT has_column_privilege($1, $2, $3, 'SELECT')", app, name, column) != (
                column in may_read
            ):
                readable.append(f"{name}.{column}")
    assert not readable, "the application role may do more than insert: " + ", ".join(readable)


async def test_no_service_role_bypasses_row_level_security(catalog: asyncpg.Connection) -> None:
    roles = [f"{s}_{kind}" for s in SERVICE_NAMES for kind in ("owner", "app")]
    rows = await catalog.fetch(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY($1::text[])", roles
    )
    assert sorted(r["rolname"] for r in rows) == sorted(roles)
    assert not [r["rolname"] for r in rows if r["rolsuper"] or r["rolbypassrls"]]
    # The app role owns nothing, so forced or not, row-level security binds it.
    owned = await catalog.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname LIKE '%\\_app'"
    )
    assert owned == []
