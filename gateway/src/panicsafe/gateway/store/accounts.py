"""SQL for one person's own account: their sessions, second factors and passkeys (inside a tenant transaction)."""

from __future__ import annotations

from asyncpg import Record

from panicsafe.core.db.database import Connection


async def sessions_of(conn: Connection, user_id: str) -> list[Record]:
    """The user's live sessions, most recently seen first."""
    return list(
        await conn.fetch(
            "SELECT id, created_at, last_seen_at, address, user_agent, mfa_at FROM sessions "
            "WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY last_seen_at DESC",
            user_id,
        )
    )


async def session_owner(conn: Connection, session_id: str) -> str | None:
    """The id of the user a session belongs to, None if there is no such session."""
    owner = await conn.fetchval("SELECT user_id::text FROM sessions WHERE id = $1", session_id)
    return None if owner is None else str(owner)


async def revoke_other_sessions(conn: Connection, user_id: str, keep_session_id: str) -> int:
    """Revoke every live session of the user but `keep_session_id`; how many were revoked."""
    result = await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked_by_user' "
        "WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
        user_id,
        keep_session_id,
    )
    return int(str(result).split()[-1])


async def factors_of(conn: Connection, user_id: str) -> Record | None:
    """`totp_enabled`, `mfa_enrolled_at` and `recovery_left` (unused recovery codes) of a user."""
    return await conn.fetchrow(
        "SELECT u.totp_enabled, u.mfa_enrolled_at, "
        "(SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id AND r.used_at IS NULL) AS recovery_left "
        "FROM users u WHERE u.id = $1",
        user_id,
    )


async def passkeys_of(conn: Connection, user_id: str) -> list[Record]:
    """The user's passkeys, oldest first."""
    return list(
        await conn.fetch(
            "SELECT credential_id, name, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at",
            user_id,
        )
    )


async def remove_passkey(conn: Connection, user_id: str, credential_id: bytes) -> bool:
    """Whether the user had that passkey (it is gone now)."""
    result = await conn.execute(
        "DELETE FROM passkeys WHERE credential_id = $1 AND user_id = $2",
        credential_id,
        user_id,
    )
    return str(result).endswith(" 1")


async def rename_passkey(conn: Connection, user_id: str, credential_id: bytes, name: str) -> bool:
    """Whether the user has that passkey (it bears `name` now)."""
    result = await conn.execute(
        "UPDATE passkeys SET name = $3 WHERE credential_id = $1 AND user_id = $2",
        credential_id,
        user_id,
        name,
    )
    return str(result).endswith(" 1")
