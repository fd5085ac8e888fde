"""Row-level security for tenant-owned tables, used from migrations."""

from __future__ import annotations

import re

from panicsafe.core.db.database import TENANT_SETTING

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def tenant_rls_statements(table: str, column: str = "tenant_id") -> list[str]:
    """Enable and force RLS: a row is visible and writable only inside its tenant's transaction.

    Tenant ids are UUIDs; with no tenant set the setting is NULL and no row matches: fail closed.
    """
    if not (_IDENT.match(table) and _IDENT.match(column)):
        raise ValueError("invalid identifier")
    condition = f"{column} = NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_tenant_isolation ON {table} USING ({condition}) WITH CHECK ({condition})",
    ]


def enable_tenant_rls(execute: object, table: str, column: str = "tenant_id") -> None:
    """`enable_tenant_rls(op.execute, "messages")` inside an Alembic migration."""
    if not callable(execute):
        raise TypeError("pass op.execute")
    for statement in tenant_rls_statements(table, column):
        execute(statement)
