"""A session after login: its refresh (rotation with reuse detection), its end (logout), and a fresh
second factor for sensitive actions (re-authentication with TOTP; passkeys: `factors`)."""

from __future__ import annotations

from panicsafe.contracts import gateway as gw
from panicsafe.gateway import security_events
from panicsafe.gateway.auth import rules, sessions, store
from panicsafe.gateway.auth.credentials import check_totp
from panicsafe.gateway.auth.deps import AuthDeps
from panicsafe.gateway.auth.sessions import IssuedSession
from panicsafe.gateway.auth.throttle import account_key
from panicsafe.gateway.store import enter_tenant_of


async def refresh(deps: AuthDeps, refresh_token: str) -> IssuedSession:
    """A new access token and refresh token; a refresh token presented twice revokes its session."""
    async with deps.db.transaction() as conn:
        await enter_tenant_of(conn, "refresh_token_tenant", sessions.token_hash(refresh_token))
        outcome = await sessions.rotate(conn, deps.tokens, refresh_token, idle=deps.refresh_idle)
        if outcome == "reused":
            owner = await sessions.session_of_refresh(conn, refresh_token)
            if owner is not None:
                await security_events.record(
                    conn,
                    kind=gw.SESSION_REVOKED,
                    tenant_id=owner[2],
                    actor_id=owner[1],
                    summary="Session révoquée : un jeton de rafraîchissement déjà utilisé a été présenté.",
                    data=gw.SessionRevoked(session_id=owner[0], reason="refresh_reuse"),
                )
    if isinstance(outcome, str):
        raise rules.session_over()
    return outcome


async def logout(deps: AuthDeps, refresh_token: str) -> None:
    """End the session of the refresh token at once (nothing to do if it is unknown or ended)."""
    async with deps.db.transaction() as conn:
        await enter_tenant_of(conn, "refresh_token_tenant", sessions.token_hash(refresh_token))
        owner = await sessions.session_of_refresh(conn, refresh_token)
        if owner is None:
            return
        if await sessions.revoke(conn, owner[0], "logout"):
            await security_events.record(
                conn, kind=gw.LOGOUT, tenant_id=owner[2], actor_id=owner[1], summary="Déconnexion."
            )


async def reauthenticate_totp(deps: AuthDeps, *, user_id: str, tenant_id: str, session_id: str, code: str) -> None:
    """A fresh second factor for sensitive actions (valid five minutes)."""
    async with deps.db.tenant(tenant_id) as conn:
        row = await store.totp_of(conn, user_id)
        step = None
        if row is not None and row["totp_enabled"] and not await deps.throttle.locked(account_key(row["login"])):
            step = await check_totp(
                deps.cipher,
                tenant_id=tenant_id,
                user_id=user_id,
                sealed=row["totp_secret"],
                code=code,
                last_used_step=row["totp_last_step"],
            )
        if step is not None:
            await store.set_totp_step(conn, user_id, step)
            await store.mark_second_factor(conn, session_id)
    if step is None:
        if row is not None:
            await deps.throttle.failure(account_key(row["login"]))
        raise rules.bad_code()
