"""Login: a password opens a second-factor step (no session); TOTP, a recovery code or a passkey
completes it. A passkey alone also logs in (discoverable credential).

Unknown logins, wrong passwords and locked accounts all get the same answer, at the same cost (one
Argon2 verification). Every failure counts against the login as typed and the address (`throttle`),
and is a security event of the account when the account exists.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from panicsafe.contracts import gateway as gw
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError
from panicsafe.gateway import security_events
from panicsafe.gateway.auth import rules, store
from panicsafe.gateway.auth.credentials import check_totp, take_recovery_code
from panicsafe.gateway.auth.deps import AuthDeps, Client
from panicsafe.gateway.auth.sessions import IssuedSession
from panicsafe.gateway.auth.throttle import account_key, address_key
from panicsafe.gateway.identity import passkeys, passwords
from panicsafe.gateway.store import enter_tenant_of, tenancy


@dataclass(frozen=True)
class LoginChallenge:
    challenge_token: str
    methods: list[str]


async def login_password(deps: AuthDeps, login: str, password: str, client: Client) -> LoginChallenge:
    """The password step: a second-factor challenge for the right password of an unlocked account."""
    keys = (account_key(login), address_key(client.address))
    async with deps.db.autocommit() as conn:  # one statement, through the owner's `login_account`
        user = await store.active_user_by_login(conn, login.strip().lower())
    locked = await deps.throttle.locked(*keys)
    if not await _password_matches(None if locked else user, password):
        await _password_failed(deps, user, keys, locked=locked)
        raise rules.bad_credentials()
    assert user is not None
    challenge = str(uuid.uuid4())
    async with deps.db.tenant(str(user["tenant_id"])) as conn:
        await store.create_challenge(
            conn,
            challenge_id=challenge,
            purpose="second_factor",
            user_id=user["id"],
            tenant_id=user["tenant_id"],
            expires_at=datetime.now(UTC) + rules.SECOND_FACTOR_TTL,
        )
    methods = rules.second_factor_methods(totp_enabled=user["totp_enabled"], passkeys=user["passkeys"])
    return LoginChallenge(challenge, methods)


async def _password_matches(user: Any, password: str) -> bool:
    """Every path costs one Argon2 verification, so timing tells nothing either."""
    if user is None or not user["password_hash"]:
        return await asyncio.to_thread(passwords.verify_against_dummy, password)
    return await asyncio.to_thread(passwords.verify_password, user["password_hash"], password)


async def _password_failed(deps: AuthDeps, user: Any, keys: tuple[str, str], *, locked: bool) -> None:
    """Count the failure; for an existing account, a security event (and one more if this locked it)."""
    newly_locked = await deps.throttle.failure(*keys)
    if user is None:
        return
    tenant_id, user_id = str(user["tenant_id"]), str(user["id"])
    async with deps.db.tenant(tenant_id) as conn:
        await security_events.record(
            conn,
            kind=gw.LOGIN_FAILED,
            tenant_id=tenant_id,
            actor_id=user_id,
            summary=rules.failed_login_summary(user["display_name"], "compte verrouillé" if locked else "mot de passe"),
        )
    if keys[0] in newly_locked:
        await _record_lockout(deps, tenant_id, user_id, user["display_name"])


async def _record_lockout(deps: AuthDeps, tenant_id: str, user_id: str, display_name: str) -> None:
    async with deps.db.tenant(tenant_id) as conn:
        await security_events.record(
            conn,
            kind=gw.ACCOUNT_LOCKED,
            tenant_id=tenant_id,
            actor_id=user_id,
            summary=rules.lockout_summary(display_name),
        )


async def _second_factor(conn: Connection, challenge_token: str) -> Any:
    """The live second-factor step of `challenge_token`, the transaction now scoped to its tenant."""
    challenge_id = rules.canonical_token(challenge_token)
    await enter_tenant_of(conn, "challenge_tenant", challenge_id)
    row = await store.open_second_factor(conn, challenge_id)
    if row is None:
        raise rules.expired_step()
    return row


async def _factor_failed(deps: AuthDeps, row: Any, client: Client, what: str) -> ServiceError:
    """Count a refused second factor and record it; the error to raise."""
    locked = await deps.throttle.failure(account_key(row["login"]), address_key(client.address))
    if account_key(row["login"]) in locked:
        await _record_lockout(deps, str(row["tenant_id"]), str(row["user_id"]), row["display_name"])
    async with deps.db.tenant(str(row["tenant_id"])) as conn:
        await security_events.record(
            conn,
            kind=gw.LOGIN_FAILED,
            tenant_id=str(row["tenant_id"]),
            actor_id=str(row["user_id"]),
            summary=rules.failed_login_summary(row["display_name"], what),
        )
    return rules.bad_code()


async def _login_succeeded(deps: AuthDeps, conn: Connection, row: Any, client: Client, how: str) -> IssuedSession:
    """The challenge is spent and a session opens, in the tenant of the account (the transaction's).

    A passkey-only login's challenge, of no tenant, was spent when it was taken."""
    await store.use_challenge(conn, row["id"])
    session = await deps.open_session(conn, str(row["user_id"]), str(row["tenant_id"]), client)
    await security_events.record(
        conn,
        kind=gw.LOGIN_SUCCEEDED,
        tenant_id=str(row["tenant_id"]),
        actor_id=str(row["user_id"]),
        summary=f"Connexion de {row['display_name']} ({how}).",
    )
    return session


async def login_totp(deps: AuthDeps, challenge_token: str, code: str, client: Client) -> IssuedSession:
    """The second-factor step completed with a TOTP code not used before."""
    session: IssuedSession | None = None
    async with deps.db.transaction() as conn:
        row = await _second_factor(conn, challenge_token)
        step = None
        if row["totp_enabled"] and not await deps.throttle.locked(account_key(row["login"])):
            step = await check_totp(
                deps.cipher,
                tenant_id=str(row["tenant_id"]),
                user_id=str(row["user_id"]),
                sealed=row["totp_secret"],
                code=code,
                last_used_step=row["totp_last_step"],
            )
        if step is not None:
            await store.set_totp_step(conn, row["user_id"], step)
            session = await _login_succeeded(deps, conn, row, client, "mot de passe et code TOTP")
    if session is None:
        raise await _factor_failed(deps, row, client, "code TOTP")
    await deps.throttle.success(account_key(row["login"]))
    return session


async def login_recovery(deps: AuthDeps, challenge_token: str, code: str, client: Client) -> IssuedSession:
    """The second-factor step completed with an unused recovery code, which is spent."""
    session: IssuedSession | None = None
    async with deps.db.transaction() as conn:
        row = await _second_factor(conn, challenge_token)
        # A locked account spends no code and no hashing work.
        if not await deps.throttle.locked(account_key(row["login"])) and await take_recovery_code(
            conn, str(row["user_id"]), code
        ):
            session = await _login_succeeded(deps, conn, row, client, "code de secours")
    if session is None:
        raise await _factor_failed(deps, row, client, "code de secours")
    await deps.throttle.success(account_key(row["login"]))
    return session


async def passkey_login_options(deps: AuthDeps, challenge_token: str | None) -> tuple[str, dict[str, Any]]:
    """With a password challenge: the user's passkeys as second factor. Without: passkey-only login."""
    async with deps.db.transaction() as conn:
        if challenge_token:
            row = await _second_factor(conn, challenge_token)
            allowed = await tenancy.passkey_ids(conn, str(row["user_id"]))
            options, challenge = passkeys.authentication_options(deps.passkey_config, allow_credentials=allowed)
            await store.set_challenge_bytes(conn, row["id"], challenge)
            return str(row["id"]), options
        options, challenge = passkeys.authentication_options(deps.passkey_config)
        token = str(uuid.uuid4())
        await store.create_passkey_login_challenge(
            conn, challenge_id=token, challenge=challenge, expires_at=datetime.now(UTC) + rules.SECOND_FACTOR_TTL
        )
        return token, options


async def _passkey_challenge(conn: Connection, challenge_id: str) -> Any:
    """The live challenge a passkey may answer: a second factor (the transaction is then scoped to
    its tenant, and the row locked), or a passkey-only login's, which has no tenant (spent now)."""
    if await enter_tenant_of(conn, "challenge_tenant", challenge_id) is not None:
        return await store.open_passkey_second_factor(conn, challenge_id)
    return await store.take_passkey_login_challenge(conn, challenge_id)


async def passkey_login(
    deps: AuthDeps, challenge_token: str, credential: dict[str, Any], client: Client
) -> IssuedSession:
    """A passkey assertion answering a kept challenge: as second factor, or alone."""
    async with deps.db.transaction() as conn:
        challenge = await _passkey_challenge(conn, rules.canonical_token(challenge_token))
        if challenge is None or challenge["challenge"] is None:
            raise rules.expired_step()
        credential_id = passkeys.credential_id_of(credential)
        if challenge["purpose"] == "passkey_login":  # alone: the passkey names the tenant
            await enter_tenant_of(conn, "passkey_tenant", credential_id)
        key = await store.active_passkey(conn, credential_id)
        if key is None or not rules.passkey_fits(
            challenge_user=challenge["user_id"],
            key_user=key["user_id"],
            user_handle=passkeys.user_handle_of(credential),
        ):
            raise rules.unknown_passkey()
        if await deps.throttle.locked(account_key(key["login"])):
            raise rules.bad_credentials()
        new_count = passkeys.verify_authentication(
            deps.passkey_config,
            credential=credential,
            expected_challenge=bytes(challenge["challenge"]),
            public_key=bytes(key["public_key"]),
            sign_count=int(key["sign_count"]),
        )
        await store.record_passkey_use(conn, key["credential_id"], new_count)
        row = {
            "id": challenge["id"],
            "user_id": key["user_id"],
            "tenant_id": key["tenant_id"],
            "display_name": key["display_name"],
        }
        session = await _login_succeeded(deps, conn, row, client, "clé d'accès")
    await deps.throttle.success(account_key(key["login"]))
    return session
