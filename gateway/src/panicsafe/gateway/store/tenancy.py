"""SQL for tenants, establishments, crises, cells and memberships (always inside a tenant transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncpg import Record, UniqueViolationError

from panicsafe.core.db.database import Connection, Database

# The unique constraints on names (migration 0002 declares them unnamed: these are PostgreSQL's names).
ESTABLISHMENT_NAME_KEY = "establishments_tenant_id_name_key"  # UNIQUE (tenant_id, name)
CELL_NAME_KEY = "cells_crisis_id_name_key"  # UNIQUE (crisis_id, name)
TENANT_CODE_KEY = "tenants_code_key"  # UNIQUE (code), across tenants (migration 0008)


class NameTaken(Exception):
    """The name is already used where it must be unique: an establishment's in its tenant, a cell's in its
    crisis, an organisation's code among organisations."""


async def tenant(conn: Connection, tenant_id: str) -> Record | None:
    return await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id)


async def create_tenant(
    conn: Connection, *, tenant_id: str, name: str, code: str, kind: str, region: str, share_with_region: bool
) -> None:
    """`NameTaken` if another organisation has that code (the transaction is then aborted: wrap the call
    in a savepoint to try another)."""
    try:
        await conn.execute(
            "INSERT INTO tenants (id, name, code, kind, region, share_with_region) VALUES ($1, $2, $3, $4, $5, $6)",
            tenant_id,
            name,
            code,
            kind,
            region,
            share_with_region,
        )
    except UniqueViolationError as exc:
        if exc.constraint_name == TENANT_CODE_KEY:
            raise NameTaken(code) from exc
        raise


async def update_tenant(conn: Connection, tenant_id: str, *, name: str | None, share_with_region: bool | None) -> None:
    await conn.execute(
        "UPDATE tenants SET name = COALESCE($2, name), share_with_region = COALESCE($3, share_with_region) "
        "WHERE id = $1",
        tenant_id,
        name,
        share_with_region,
    )


async def establishments(conn: Connection) -> list[Record]:
    return list(await conn.fetch("SELECT * FROM establishments ORDER BY name"))


async def create_establishment(conn: Connection, *, tenant_id: str, name: str, type_: str) -> str:
    """The new establishment's id; `NameTaken` if the tenant has one of that name (the transaction is then
    aborted: wrap the call in a savepoint to go on)."""
    establishment_id = str(uuid.uuid4())
    try:
        await conn.execute(
            "INSERT INTO establishments (id, tenant_id, name, type) VALUES ($1, $2, $3, $4)",
            establishment_id,
            tenant_id,
            name,
            type_,
        )
    except UniqueViolationError as exc:
        if exc.constraint_name == ESTABLISHMENT_NAME_KEY:
            raise NameTaken(name) from exc
        raise
    return establishment_id


async def update_establishment(conn: Connection, establishment_id: str, *, name: str | None, type_: str | None) -> bool:
    result = await conn.execute(
        "UPDATE establishments SET name = COALESCE($2, name), type = COALESCE($3, type) WHERE id = $1",
        establishment_id,
        name,
        type_,
    )
    return str(result).endswith(" 1")


async def directory(conn: Connection) -> list[Record]:
    return list(
        await conn.fetch("SELECT id, login, display_name, tenant_role, status FROM users ORDER BY display_name")
    )


async def user_exists(conn: Connection, user_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM users WHERE id = $1 AND status <> 'disabled'", user_id))


async def invitations(conn: Connection, *, crisis_ids: Sequence[str] | None) -> list[Record]:
    """Open and recent invitations; `crisis_ids` restricts to those crises (crisis leaders)."""
    if crisis_ids is None:
        return list(await conn.fetch("SELECT * FROM invitations ORDER BY created_at DESC LIMIT 200"))
    return list(
        await conn.fetch(
            "SELECT * FROM invitations WHERE crisis_id = ANY($1::uuid[]) ORDER BY created_at DESC LIMIT 200",
            list(crisis_ids),
        )
    )


async def create_invitation(conn: Connection, **values: Any) -> str:
    invitation_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO invitations (id, tenant_id, token_hash, login, display_name, tenant_role, crisis_id, "
        "crisis_role, crisis_function, cell_ids, supervisor_region, created_by, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        invitation_id,
        values["tenant_id"],
        values["token_hash"],
        values["login"],
        values["display_name"],
        values["tenant_role"],
        values.get("crisis_id"),
        values.get("crisis_role"),
        values.get("crisis_function"),
        list(values.get("cell_ids") or []),
        values.get("supervisor_region"),
        values["created_by"],
        values["expires_at"],
    )
    return invitation_id


async def login_taken(conn: Connection, login: str) -> bool:
    """Whether an account or a pending invitation of the tenant in scope has that login. A login ends with
    its organisation's code (`identity.logins`): no other organisation can hold it, and none is looked at."""
    taken = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM users WHERE login = $1) OR EXISTS "
        "(SELECT 1 FROM invitations WHERE login = $1 AND used_at IS NULL AND expires_at > now())",
        login,
    )
    return bool(taken)


async def revoke_invitation(conn: Connection, invitation_id: str) -> Record | None:
    return await conn.fetchrow(
        "UPDATE invitations SET expires_at = now() WHERE id = $1 AND used_at IS NULL AND expires_at > now() "
        "RETURNING id, crisis_id",
        invitation_id,
    )


async def invitation(conn: Connection, invitation_id: str) -> Record | None:
    return await conn.fetchrow("SELECT * FROM invitations WHERE id = $1", invitation_id)


async def crises(conn: Connection, crisis_ids: Sequence[str]) -> list[Record]:
    return list(
        await conn.fetch("SELECT * FROM crises WHERE id = ANY($1::uuid[]) ORDER BY declared_at DESC", list(crisis_ids))
    )


async def crisis(conn: Connection, crisis_id: str) -> Record | None:
    return await conn.fetchrow("SELECT * FROM crises WHERE id = $1", crisis_id)


async def crisis_overview(db: Database, tenant_id: str, crisis_id: str) -> Record | None:
    """The crisis (`crises` columns but `tenant_id` and `declared_by`) with its `cells` (id, kind,
    name), `members` (user_id, role, function, display_name, cells) and `establishments` (id, name,
    type), lists of dicts ordered as shown, read in one statement in a transaction of the tenant:
    the SQL function sees the tenant in scope and no other (migration 0007)."""
    async with db.tenant(tenant_id) as conn:
        return await conn.fetchrow("SELECT * FROM crisis_overview($1)", crisis_id)


async def crisis_details(conn: Connection, crisis_id: str) -> Record:
    """`cells`, `members` and `establishments` of a crisis (see `crisis_overview`), in a transaction
    of its tenant."""
    row = await conn.fetchrow("SELECT cells, members, establishments FROM crisis_overview($1)", crisis_id)
    assert row is not None, "crisis_details of a crisis the transaction does not see"
    return row


async def declare_crisis(
    conn: Connection,
    *,
    tenant_id: str,
    title: str,
    mode: str,
    severity: str,
    t0: datetime,
    declared_by: str,
    establishment_ids: Sequence[str],
) -> str:
    crisis_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO crises (id, tenant_id, title, mode, severity, t0, declared_by) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        crisis_id,
        tenant_id,
        title,
        mode,
        severity,
        t0,
        declared_by,
    )
    if establishment_ids:
        await conn.execute(
            "INSERT INTO crisis_establishments (crisis_id, establishment_id, tenant_id) "
            "SELECT $1, e.id, e.tenant_id FROM establishments e WHERE e.id = ANY($2::uuid[])",
            crisis_id,
            list(establishment_ids),
        )
    return crisis_id


async def crisis_establishments(conn: Connection, crisis_id: str) -> list[Record]:
    return list(
        await conn.fetch(
            "SELECT e.* FROM crisis_establishments ce JOIN establishments e ON e.id = ce.establishment_id "
            "WHERE ce.crisis_id = $1 ORDER BY e.name",
            crisis_id,
        )
    )


async def update_crisis(conn: Connection, crisis_id: str, *, status: str | None, severity: str | None) -> Record | None:
    return await conn.fetchrow(
        "UPDATE crises SET status = COALESCE($2, status), severity = COALESCE($3, severity), "
        "closed_at = CASE WHEN COALESCE($2, status) = 'closed' THEN COALESCE(closed_at, now()) ELSE NULL END "
        "WHERE id = $1 AND status <> 'closed' RETURNING *",
        crisis_id,
        status,
        severity,
    )


async def create_cell(conn: Connection, *, tenant_id: str, crisis_id: str, kind: str, name: str) -> str:
    """The new cell's id; `NameTaken` if the crisis has one of that name (the transaction is then aborted:
    wrap the call in a savepoint to go on)."""
    cell_id = str(uuid.uuid4())
    try:
        await conn.execute(
            "INSERT INTO cells (id, crisis_id, tenant_id, kind, name) VALUES ($1, $2, $3, $4, $5)",
            cell_id,
            crisis_id,
            tenant_id,
            kind,
            name,
        )
    except UniqueViolationError as exc:
        if exc.constraint_name == CELL_NAME_KEY:
            raise NameTaken(name) from exc
        raise
    return cell_id


async def cells(conn: Connection, crisis_id: str) -> list[Record]:
    return list(await conn.fetch("SELECT * FROM cells WHERE crisis_id = $1 ORDER BY created_at, name", crisis_id))


async def cell(conn: Connection, cell_id: str) -> Record | None:
    return await conn.fetchrow("SELECT * FROM cells WHERE id = $1", cell_id)


async def members(conn: Connection, crisis_id: str) -> list[Record]:
    return list(
        await conn.fetch(
            "SELECT m.user_id, m.role, m.function, u.display_name, u.login, "
            "COALESCE(array_agg(c.cell_id::text) FILTER (WHERE c.cell_id IS NOT NULL), '{}') AS cells "
            "FROM crisis_members m JOIN users u ON u.id = m.user_id "
            "LEFT JOIN cell_members c ON c.crisis_id = m.crisis_id AND c.user_id = m.user_id "
            "WHERE m.crisis_id = $1 GROUP BY m.user_id, m.role, m.function, u.display_name, u.login "
            "ORDER BY u.display_name",
            crisis_id,
        )
    )


async def member_role(conn: Connection, crisis_id: str, user_id: str) -> str | None:
    value = await conn.fetchval(
        "SELECT role FROM crisis_members WHERE crisis_id = $1 AND user_id = $2", crisis_id, user_id
    )
    return None if value is None else str(value)


async def directors(conn: Connection, crisis_id: str) -> list[str]:
    """The user ids of the crisis' directors, their rows locked until the transaction ends."""
    rows = await conn.fetch(
        "SELECT user_id::text FROM crisis_members WHERE crisis_id = $1 AND role = 'director' FOR UPDATE", crisis_id
    )
    return [str(row["user_id"]) for row in rows]


async def upsert_member(
    conn: Connection, *, tenant_id: str, crisis_id: str, user_id: str, role: str, function: str | None
) -> None:
    await conn.execute(
        "INSERT INTO crisis_members (crisis_id, user_id, tenant_id, role, function) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (crisis_id, user_id) DO UPDATE SET role = EXCLUDED.role, function = EXCLUDED.function",
        crisis_id,
        user_id,
        tenant_id,
        role,
        function,
    )


async def remove_member(conn: Connection, crisis_id: str, user_id: str) -> bool:
    result = await conn.execute("DELETE FROM crisis_members WHERE crisis_id = $1 AND user_id = $2", crisis_id, user_id)
    return str(result).endswith(" 1")


async def set_cell_membership(
    conn: Connection, *, tenant_id: str, crisis_id: str, cell_id: str, user_id: str, member: bool
) -> None:
    if member:
        await conn.execute(
            "INSERT INTO cell_members (cell_id, user_id, crisis_id, tenant_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            cell_id,
            user_id,
            crisis_id,
            tenant_id,
        )
    else:
        await conn.execute("DELETE FROM cell_members WHERE cell_id = $1 AND user_id = $2", cell_id, user_id)


async def passkey_ids(conn: Connection, user_id: str) -> list[bytes]:
    """The credential ids of a user's passkeys (exclude list, allow list)."""
    return [
        bytes(r["credential_id"])
        for r in await conn.fetch("SELECT credential_id FROM passkeys WHERE user_id = $1", user_id)
    ]
