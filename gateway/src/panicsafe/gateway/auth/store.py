"""SQL of the identity flows: invitations, accounts, challenges, second factors.

Each function runs one statement in the caller's transaction, scoped to a tenant: the flows that
start before the tenant is known find it first (`store.enter_tenant_of`). The only statements that
reach rows of no tenant in scope call the definer functions of migration 0007: `login_account`,
and the challenges of passkey-only logins, which belong to no tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncpg import Record

from panicsafe.core.db.database import Connection
from panicsafe.gateway.identity.passkeys import NewPasskey

_OPEN_INVITATION = (
    "SELECT i.*, t.name AS tenant_name FROM invitations i JOIN tenants t ON t.id = i.tenant_id "
    "WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > now()"
)


# -- invitations and accounts ---------------------------------------------------------------------
async def open_invitation(conn: Connection, token_hash: bytes, *, lock: bool) -> Record | None:
    """The unused, unexpired invitation with its organisation's name (locked, to accept it)."""
    return await conn.fetchrow(_OPEN_INVITATION + (" FOR UPDATE OF i" if lock else ""), token_hash)


async def create_enrolling_user(
    conn: Connection, *, user_id: str, invitation: Any, password_hash: str, sealed_totp: bytes
) -> None:
    """The account an invitation describes, with its password and a TOTP secret, not active yet."""
    await conn.execute(
        "INSERT INTO users (id, tenant_id, login, display_name, tenant_role, status, password_hash, "
        "totp_secret) VALUES ($1, $2, $3, $4, $5, 'enrolling', $6, $7)",
        user_id,
        str(invitation["tenant_id"]),
        invitation["login"],
        invitation["display_name"],
        invitation["tenant_role"],
        password_hash,
        sealed_totp,
    )


async def mark_invitation_used(conn: Connection, invitation_id: Any, user_id: str) -> None:
    await conn.execute("UPDATE invitations SET used_at = now(), user_id = $2 WHERE id = $1", invitation_id, user_id)


async def add_regional_supervisor(conn: Connection, *, user_id: str, tenant_id: str, region: str) -> None:
    await conn.execute(
        "INSERT INTO regional_supervisors (user_id, tenant_id, region) VALUES ($1, $2, $3)", user_id, tenant_id, region
    )


async def crisis_state(conn: Connection, crisis_id: Any) -> Record | None:
    """`status` and `mode` of a crisis."""
    return await conn.fetchrow("SELECT status, mode FROM crises WHERE id = $1", crisis_id)


async def add_crisis_member(
    conn: Connection, *, crisis_id: Any, user_id: str, tenant_id: Any, role: str, function: str | None
) -> None:
    await conn.execute(
        "INSERT INTO crisis_members (crisis_id, user_id, tenant_id, role, function) VALUES ($1, $2, $3, $4, $5)",
        crisis_id,
        user_id,
        tenant_id,
        role,
        function,
    )


async def add_cell_member(conn: Connection, *, cell_id: Any, user_id: str, crisis_id: Any) -> None:
    """Membership of a cell of that crisis (none if the cell is not one of the crisis')."""
    await conn.execute(
        "INSERT INTO cell_members (cell_id, user_id, crisis_id, tenant_id) "
        "SELECT id, $2, crisis_id, tenant_id FROM cells WHERE id = $1 AND crisis_id = $3",
        cell_id,
        user_id,
        crisis_id,
    )


async def activate_user(conn: Connection, user_id: str) -> None:
    await conn.execute("UPDATE users SET status = 'active', mfa_enrolled_at = now() WHERE id = $1", user_id)


async def active_user_by_login(conn: Connection, login: str) -> Record | None:
    """An active account of any tenant with what the password step needs (`id`, `tenant_id`,
    `password_hash`, `display_name`, `totp_enabled`) and how many `passkeys` it has."""
    return await conn.fetchrow("SELECT * FROM login_account($1)", login)


# -- challenges -----------------------------------------------------------------------------------
async def create_challenge(
    conn: Connection,
    *,
    challenge_id: str,
    purpose: str,
    expires_at: datetime,
    user_id: Any = None,
    tenant_id: Any = None,
    challenge: bytes | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, challenge, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        challenge_id,
        purpose,
        user_id,
        tenant_id,
        challenge,
        expires_at,
    )


async def set_challenge_bytes(conn: Connection, challenge_id: Any, challenge: bytes) -> None:
    await conn.execute("UPDATE auth_challenges SET challenge = $2 WHERE id = $1", challenge_id, challenge)


async def use_challenge(conn: Connection, challenge_id: Any) -> None:
    await conn.execute("UPDATE auth_challenges SET used_at = now() WHERE id = $1", challenge_id)


async def open_enrolment(conn: Connection, challenge_id: str) -> Record | None:
    """A live enrolment with its enrolling account (locked)."""
    return await conn.fetchrow(
        "SELECT c.id, c.user_id, c.tenant_id, c.challenge, u.login, u.display_name, u.totp_secret "
        "FROM auth_challenges c JOIN users u ON u.id = c.user_id "
        "WHERE c.id = $1 AND c.purpose = 'enrolment' AND c.used_at IS NULL AND c.expires_at > now() "
        "AND u.status = 'enrolling' FOR UPDATE OF c",
        challenge_id,
    )


async def open_second_factor(conn: Connection, challenge_id: str) -> Record | None:
    """A live second-factor step with its active account (both locked: one attempt at a time)."""
    return await conn.fetchrow(
        "SELECT c.id, c.user_id, c.tenant_id, c.challenge, u.login, u.display_name, u.totp_secret, "
        "u.totp_enabled, u.totp_last_step FROM auth_challenges c JOIN users u ON u.id = c.user_id "
        "WHERE c.id = $1 AND c.purpose = 'second_factor' AND c.used_at IS NULL AND c.expires_at > now() "
        "AND u.status = 'active' FOR UPDATE OF c, u",
        challenge_id,
    )


async def open_passkey_second_factor(conn: Connection, challenge_id: str) -> Record | None:
    """A live second-factor challenge of the tenant in scope, which a passkey may answer (locked)."""
    return await conn.fetchrow(
        "SELECT id, purpose, user_id, challenge FROM auth_challenges WHERE id = $1 "
        "AND purpose = 'second_factor' AND used_at IS NULL AND expires_at > now() FOR UPDATE",
        challenge_id,
    )


async def create_passkey_login_challenge(
    conn: Connection, *, challenge_id: str, challenge: bytes, expires_at: datetime
) -> None:
    """The challenge of a passkey-only login: no account, no tenant yet."""
    await conn.execute("SELECT new_passkey_login_challenge($1, $2, $3)", challenge_id, challenge, expires_at)


async def take_passkey_login_challenge(conn: Connection, challenge_id: str) -> Record | None:
    """The live challenge of a passkey-only login, spent now (`id`, `purpose`, `user_id`,
    `challenge`): it stays unspent if the caller's transaction rolls back."""
    return await conn.fetchrow("SELECT * FROM take_passkey_login_challenge($1)", challenge_id)


# -- second factors -------------------------------------------------------------------------------
async def enable_totp(conn: Connection, user_id: str, step: int) -> None:
    await conn.execute("UPDATE users SET totp_enabled = true, totp_last_step = $2 WHERE id = $1", user_id, step)


async def set_totp_step(conn: Connection, user_id: Any, step: int) -> None:
    """The last TOTP step used: a code works once."""
    await conn.execute("UPDATE users SET totp_last_step = $2 WHERE id = $1", user_id, step)


async def totp_of(conn: Connection, user_id: str) -> Record | None:
    """`login`, `totp_secret`, `totp_enabled`, `totp_last_step` of a user (locked)."""
    return await conn.fetchrow(
        "SELECT login, totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1 FOR UPDATE", user_id
    )


async def mark_second_factor(conn: Connection, session_id: str) -> None:
    """The session's second factor was just checked again (re-authentication)."""
    await conn.execute("UPDATE sessions SET mfa_at = now() WHERE id = $1", session_id)


async def passkey_exists(conn: Connection, credential_id: bytes) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM passkeys WHERE credential_id = $1", credential_id))


async def add_passkey(conn: Connection, *, user_id: str, tenant_id: str, created: NewPasskey) -> None:
    await conn.execute(
        "INSERT INTO passkeys (credential_id, user_id, tenant_id, public_key, sign_count, transports) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        created.credential_id,
        user_id,
        tenant_id,
        created.public_key,
        created.sign_count,
        created.transports,
    )


async def active_passkey(conn: Connection, credential_id: bytes) -> Record | None:
    """A passkey of an active account, with the account's login and name (locked)."""
    return await conn.fetchrow(
        "SELECT p.credential_id, p.user_id, p.tenant_id, p.public_key, p.sign_count, u.login, "
        "u.display_name FROM passkeys p JOIN users u ON u.id = p.user_id "
        "WHERE p.credential_id = $1 AND u.status = 'active' FOR UPDATE OF p",
        credential_id,
    )


async def record_passkey_use(conn: Connection, credential_id: bytes, sign_count: int) -> None:
    await conn.execute(
        "UPDATE passkeys SET sign_count = $2, last_used_at = now() WHERE credential_id = $1", credential_id, sign_count
    )


async def unused_recovery_hashes(conn: Connection, user_id: str) -> list[str]:
    rows = await conn.fetch("SELECT code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL", user_id)
    return [str(row["code_hash"]) for row in rows]


async def spend_recovery_code(conn: Connection, user_id: str, code_hash: str) -> bool:
    """Mark that unused code used; False if it was used meanwhile."""
    used = await conn.fetchval(
        "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL "
        "RETURNING true",
        user_id,
        code_hash,
    )
    return bool(used)


async def replace_recovery_hashes(conn: Connection, *, user_id: str, tenant_id: str, hashes: list[str]) -> None:
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO recovery_codes (user_id, tenant_id, code_hash) VALUES ($1, $2, $3)",
        [(user_id, tenant_id, hashed) for hashed in hashes],
    )
