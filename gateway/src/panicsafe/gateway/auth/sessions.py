"""Sessions: access token plus an opaque refresh token rotated on every use.

The refresh token travels in an httpOnly, Secure, SameSite=Strict cookie scoped to `/auth`. Reusing
a refresh token that was already exchanged revokes its whole session (the family), since one of
the two holders is a thief. The CSRF token for the cookie endpoints derives from the refresh token,
so only a page that received it in a response body can send it back.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from panicsafe.core.db.database import Connection
from panicsafe.gateway.auth.access import AccessClaims, AccessTokens

REFRESH_COOKIE = "ps_refresh"
CSRF_HEADER = "X-PanicSAFE-CSRF"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_for(refresh_token: str) -> str:
    digest = hashlib.sha256(b"panicsafe-csrf|" + refresh_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class IssuedSession:
    session_id: str
    user_id: str
    tenant_id: str
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_max_age: int

    @property
    def csrf_token(self) -> str:
        return csrf_for(self.refresh_token)

    def body(self) -> dict[str, object]:
        return {
            "accessToken": self.access_token,
            "tokenType": "Bearer",
            "expiresIn": self.expires_in,
            "csrfToken": self.csrf_token,
            "sessionId": self.session_id,
        }


async def open_session(
    conn: Connection,
    tokens: AccessTokens,
    *,
    user_id: str,
    tenant_id: str,
    max_age: timedelta,
    idle: timedelta,
    address: str | None,
    user_agent: str | None,
) -> IssuedSession:
    """A new session whose second factor was just verified (`mfa_at` = now)."""
    session_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO sessions (id, user_id, tenant_id, expires_at, mfa_at, address, user_agent) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        session_id,
        user_id,
        tenant_id,
        now + max_age,
        now,
        address,
        (user_agent or "")[:300],
    )
    return await _issue(conn, tokens, session_id=session_id, user_id=user_id, tenant_id=tenant_id, idle=idle)


async def _issue(
    conn: Connection, tokens: AccessTokens, *, session_id: str, user_id: str, tenant_id: str, idle: timedelta
) -> IssuedSession:
    refresh = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, tenant_id) VALUES ($1, $2, $3)",
        token_hash(refresh),
        session_id,
        tenant_id,
    )
    access = tokens.issue(AccessClaims(user_id=user_id, tenant_id=tenant_id, session_id=session_id))
    return IssuedSession(
        session_id=session_id,
        user_id=user_id,
        tenant_id=tenant_id,
        access_token=access,
        expires_in=tokens.ttl_s,
        refresh_token=refresh,
        refresh_max_age=int(idle.total_seconds()),
    )


async def rotate(conn: Connection, tokens: AccessTokens, refresh_token: str, *, idle: timedelta) -> IssuedSession | str:
    """Exchange a refresh token (in a transaction scoped to its tenant). Returns the new session or why it failed:
    `unknown`, `reused` (the session is revoked now), `revoked`, `expired`."""
    row = await conn.fetchrow(
        "SELECT r.used_at, s.id, s.user_id, s.tenant_id, s.revoked_at, s.expires_at, s.last_seen_at "
        "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1 FOR UPDATE OF r, s",
        token_hash(refresh_token),
    )
    if row is None:
        return "unknown"
    session_id = str(row["id"])
    if row["revoked_at"] is not None:
        return "revoked"
    if row["used_at"] is not None:
        await revoke(conn, session_id, "refresh_reuse")
        return "reused"
    now = datetime.now(UTC)
    if row["expires_at"] <= now or row["last_seen_at"] + idle <= now:
        await revoke(conn, session_id, "expired")
        return "expired"
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash(refresh_token))
    await conn.execute("UPDATE sessions SET last_seen_at = now() WHERE id = $1", session_id)
    return await _issue(
        conn,
        tokens,
        session_id=session_id,
        user_id=str(row["user_id"]),
        tenant_id=str(row["tenant_id"]),
        idle=idle,
    )


async def revoke(conn: Connection, session_id: str, reason: str) -> bool:
    result = await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        reason,
    )
    return str(result).endswith(" 1")


async def session_of_refresh(conn: Connection, refresh_token: str) -> tuple[str, str, str] | None:
    """(session, user, tenant) of a refresh token, used or not (logout)."""
    row = await conn.fetchrow(
        "SELECT s.id, s.user_id, s.tenant_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id "
        "WHERE r.token_hash = $1",
        token_hash(refresh_token),
    )
    return None if row is None else (str(row["id"]), str(row["user_id"]), str(row["tenant_id"]))
