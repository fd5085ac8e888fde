"""The identity flows: invitation → password → second factor → session; login; refresh; logout.

Every account has a second factor before any other use. Unknown logins, wrong passwords and
locked accounts all get the same answer, at the same cost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.events import Mode
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection, Database
from panicsafe.core.errors import ServiceError, invalid, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.auth import sessions
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.auth.sessions import IssuedSession
from panicsafe.gateway.auth.throttle import Throttle, account_key, address_key
from panicsafe.gateway.domain.wording import role_label
from panicsafe.gateway.identity import passkeys, passwords, recovery, totp
from panicsafe.gateway.identity.passkeys import PasskeyConfig
from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.store import enter_tenant, identity_lookup, tenancy

BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect, ou compte temporairement verrouillé."
BAD_CODE = "Code incorrect ou déjà utilisé."
ENROLMENT_TTL = timedelta(minutes=30)
OPEN_INVITATION = (
    "SELECT i.*, t.name AS tenant_name FROM invitations i JOIN tenants t ON t.id = i.tenant_id "
    "WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > now()"
)
OPEN_INVITATION_FOR_UPDATE = OPEN_INVITATION + " FOR UPDATE OF i"
SECOND_FACTOR_TTL = timedelta(minutes=5)
TOTP_PURPOSE = "totp"


def bad_credentials() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, BAD_CREDENTIALS)


@dataclass(frozen=True)
class Client:
    address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class EnrolmentStart:
    enrolment_token: str
    login: str
    totp_secret: str
    totp_uri: str
    totp_qr_svg: str


@dataclass(frozen=True)
class LoginChallenge:
    challenge_token: str
    methods: list[str]


@dataclass(frozen=True)
class Enrolled:
    session: IssuedSession
    recovery_codes: list[str]


class AuthService:
    def __init__(
        self,
        *,
        db: Database,
        cipher: EnvelopeCipher,
        tokens: AccessTokens,
        throttle: Throttle,
        passkey_config: PasskeyConfig,
        session_max: timedelta,
        refresh_idle: timedelta,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.tokens = tokens
        self.throttle = throttle
        self.passkey_config = passkey_config
        self.session_max = session_max
        self.refresh_idle = refresh_idle

    # -- invitations and enrolment ----------------------------------------------------------------
    async def inspect_invitation(self, token: str) -> dict[str, Any]:
        async with identity_lookup(self.db) as conn:
            row = await self._open_invitation(conn, token, lock=False)
        return {
            "login": row["login"],
            "displayName": row["display_name"],
            "organisation": row["tenant_name"],
            "expiresAt": row["expires_at"].isoformat(),
        }

    async def _open_invitation(self, conn: Connection, token: str, *, lock: bool) -> Any:
        row = await conn.fetchrow(OPEN_INVITATION_FOR_UPDATE if lock else OPEN_INVITATION, sessions.token_hash(token))
        if row is None:
            raise not_found("Invitation inconnue, déjà utilisée ou expirée.")
        return row

    async def enrol_password(self, token: str, password: str, client: Client) -> EnrolmentStart:
        """Consume the invitation: the account exists (without any factor yet) and must enrol one."""
        async with identity_lookup(self.db) as conn:
            invitation = await self._open_invitation(conn, token, lock=True)
            problems = passwords.password_problems(
                password, user_inputs=[invitation["login"], invitation["display_name"]]
            )
            if problems:
                raise ServiceError(
                    ErrorCode.INVALID,
                    " ".join(p.message for p in problems),
                    [FieldError(field="password", message=p.code) for p in problems],
                )
            tenant_id = str(invitation["tenant_id"])
            if await conn.fetchval("SELECT 1 FROM users WHERE login = $1", invitation["login"]):
                raise ServiceError(
                    ErrorCode.CONFLICT, "Cet identifiant est déjà pris : demandez une nouvelle invitation."
                )
            user_id = str(uuid.uuid4())
            secret = totp.new_secret()
            sealed = await self.cipher.encrypt(tenant_id, user_id, secret.encode(), purpose=TOTP_PURPOSE)
            await enter_tenant(conn, tenant_id)
            await conn.execute(
                "INSERT INTO users (id, tenant_id, login, display_name, tenant_role, status, password_hash, "
                "totp_secret) VALUES ($1, $2, $3, $4, $5, 'enrolling', $6, $7)",
                user_id,
                tenant_id,
                invitation["login"],
                invitation["display_name"],
                invitation["tenant_role"],
                await asyncio.to_thread(passwords.hash_password, password),
                sealed,
            )
            await conn.execute(
                "UPDATE invitations SET used_at = now(), user_id = $2 WHERE id = $1",
                invitation["id"],
                user_id,
            )
            if invitation["supervisor_region"]:
                await conn.execute(
                    "INSERT INTO regional_supervisors (user_id, tenant_id, region) VALUES ($1, $2, $3)",
                    user_id,
                    tenant_id,
                    invitation["supervisor_region"],
                )
            if invitation["crisis_id"] is not None:
                await self._join_crisis_from_invitation(conn, invitation, user_id)
            enrolment = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, expires_at) "
                "VALUES ($1, 'enrolment', $2, $3, $4)",
                enrolment,
                user_id,
                tenant_id,
                datetime.now(UTC) + ENROLMENT_TTL,
            )
            await security_events.record(
                conn,
                kind="invitation_accepted",
                tenant_id=tenant_id,
                actor_id=user_id,
                summary=f"Invitation acceptée par {invitation['display_name']} ({invitation['login']}).",
            )
        uri = totp.provisioning_uri(secret, account=invitation["login"])
        return EnrolmentStart(enrolment, invitation["login"], secret, uri, qr_svg(uri))

    async def _join_crisis_from_invitation(self, conn: Connection, invitation: Any, user_id: str) -> None:
        crisis_id = invitation["crisis_id"]
        crisis = await conn.fetchrow("SELECT status, mode FROM crises WHERE id = $1", crisis_id)
        if crisis is None or crisis["status"] == "closed":
            return  # the crisis closed since: the account is created, without membership
        await conn.execute(
            "INSERT INTO crisis_members (crisis_id, user_id, tenant_id, role, function) VALUES ($1, $2, $3, $4, $5)",
            crisis_id,
            user_id,
            invitation["tenant_id"],
            invitation["crisis_role"] or "member",
            invitation["crisis_function"],
        )
        for cell_id in invitation["cell_ids"]:
            await conn.execute(
                "INSERT INTO cell_members (cell_id, user_id, crisis_id, tenant_id) "
                "SELECT id, $2, crisis_id, tenant_id FROM cells WHERE id = $1 AND crisis_id = $3",
                cell_id,
                user_id,
                crisis_id,
            )
        role = invitation["crisis_role"] or "member"
        await security_events.record(
            conn,
            kind="membership_changed",
            tenant_id=str(invitation["tenant_id"]),
            actor_id=user_id,
            crisis_id=str(crisis_id),
            mode=Mode(crisis["mode"]),
            summary=f"{invitation['display_name']} rejoint la crise sur invitation (rôle {role_label(role)}).",
            data={"user_id": user_id, "role": role, "previous_role": None},
            author=str(invitation["display_name"]),
        )

    async def _enrolment(self, conn: Connection, enrolment_token: str) -> Any:
        row = await conn.fetchrow(
            "SELECT c.id, c.user_id, c.tenant_id, c.challenge, u.login, u.display_name, u.totp_secret "
            "FROM auth_challenges c JOIN users u ON u.id = c.user_id "
            "WHERE c.id = $1 AND c.purpose = 'enrolment' AND c.used_at IS NULL AND c.expires_at > now() "
            "AND u.status = 'enrolling' FOR UPDATE OF c",
            _uuid(enrolment_token),
        )
        if row is None:
            raise not_found("Enrôlement inconnu ou expiré : reprenez depuis l'invitation.")
        return row

    async def enrol_totp(self, enrolment_token: str, code: str, client: Client) -> Enrolled:
        async with identity_lookup(self.db) as conn:
            row = await self._enrolment(conn, enrolment_token)
            user_id, tenant_id = str(row["user_id"]), str(row["tenant_id"])
            secret = (await self.cipher.decrypt(tenant_id, user_id, row["totp_secret"], purpose=TOTP_PURPOSE)).decode()
            step = totp.verify_code(secret, code, now=time.time(), last_used_step=None)
            if step is None:
                raise ServiceError(ErrorCode.INVALID, BAD_CODE, [FieldError(field="code", message="wrong_code")])
            await enter_tenant(conn, tenant_id)
            await conn.execute("UPDATE users SET totp_enabled = true, totp_last_step = $2 WHERE id = $1", user_id, step)
            return await self._activate(conn, row, client, factor="TOTP")

    async def enrol_passkey_options(self, enrolment_token: str) -> dict[str, Any]:
        async with identity_lookup(self.db) as conn:
            row = await self._enrolment(conn, enrolment_token)
            options, challenge = passkeys.registration_options(
                self.passkey_config,
                user_id=uuid.UUID(str(row["user_id"])).bytes,
                user_name=row["login"],
                display_name=row["display_name"],
            )
            await conn.execute("UPDATE auth_challenges SET challenge = $2 WHERE id = $1", row["id"], challenge)
        return options

    async def enrol_passkey(self, enrolment_token: str, credential: dict[str, Any], client: Client) -> Enrolled:
        async with identity_lookup(self.db) as conn:
            row = await self._enrolment(conn, enrolment_token)
            if row["challenge"] is None:
                raise invalid("Demandez d'abord les options de la clé d'accès.")
            created = passkeys.verify_registration(
                self.passkey_config, credential=credential, expected_challenge=bytes(row["challenge"])
            )
            await enter_tenant(conn, str(row["tenant_id"]))
            await self.store_passkey(conn, str(row["user_id"]), str(row["tenant_id"]), created)
            return await self._activate(conn, row, client, factor="clé d'accès")

    async def store_passkey(self, conn: Connection, user_id: str, tenant_id: str, created: passkeys.NewPasskey) -> None:
        if await conn.fetchval("SELECT 1 FROM passkeys WHERE credential_id = $1", created.credential_id):
            raise ServiceError(ErrorCode.CONFLICT, "Cette clé d'accès est déjà enregistrée.")
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

    async def _activate(self, conn: Connection, row: Any, client: Client, *, factor: str) -> Enrolled:
        user_id, tenant_id = str(row["user_id"]), str(row["tenant_id"])
        await conn.execute("UPDATE users SET status = 'active', mfa_enrolled_at = now() WHERE id = $1", user_id)
        await conn.execute("UPDATE auth_challenges SET used_at = now() WHERE id = $1", row["id"])
        codes = await replace_recovery_codes(conn, user_id, tenant_id)
        session = await self._open(conn, user_id, tenant_id, client)
        await security_events.record(
            conn,
            kind="factor_enrolled",
            tenant_id=tenant_id,
            actor_id=user_id,
            summary=f"{row['display_name']} a enrôlé son second facteur ({factor}).",
        )
        return Enrolled(session, codes)

    async def _open(self, conn: Connection, user_id: str, tenant_id: str, client: Client) -> IssuedSession:
        return await sessions.open_session(
            conn,
            self.tokens,
            user_id=user_id,
            tenant_id=tenant_id,
            max_age=self.session_max,
            idle=self.refresh_idle,
            address=client.address,
            user_agent=client.user_agent,
        )

    # -- login -------------------------------------------------------------------------------------
    async def login_password(self, login: str, password: str, client: Client) -> LoginChallenge:
        keys = (account_key(login), address_key(client.address))
        async with identity_lookup(self.db) as conn:
            user = await conn.fetchrow(
                "SELECT id, tenant_id, password_hash, display_name, totp_enabled, "
                "(SELECT count(*) FROM passkeys p WHERE p.user_id = users.id) AS passkeys "
                "FROM users WHERE login = $1 AND status = 'active'",
                login.strip().lower(),
            )
        locked = await self.throttle.locked(*keys)
        # Every path costs one Argon2 verification, so timing tells nothing either.
        if locked or user is None or not user["password_hash"]:
            await asyncio.to_thread(passwords.verify_against_dummy, password)
            ok = False
        else:
            ok = await asyncio.to_thread(passwords.verify_password, user["password_hash"], password)
        if not ok:
            newly_locked = await self.throttle.failure(*keys)
            if user is not None:
                tenant_id, user_id = str(user["tenant_id"]), str(user["id"])
                async with self.db.tenant(tenant_id) as conn:
                    await security_events.record(
                        conn,
                        kind="login_failed",
                        tenant_id=tenant_id,
                        actor_id=user_id,
                        summary=f"Échec de connexion pour {user['display_name']} "
                        + ("(compte verrouillé)." if locked else "(mot de passe)."),
                    )
                if account_key(login) in newly_locked:
                    await self._record_lockout(tenant_id, user_id, user["display_name"])
            raise bad_credentials()
        assert user is not None
        challenge = str(uuid.uuid4())
        async with identity_lookup(self.db) as conn:
            await conn.execute(
                "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, expires_at) "
                "VALUES ($1, 'second_factor', $2, $3, $4)",
                challenge,
                user["id"],
                user["tenant_id"],
                datetime.now(UTC) + SECOND_FACTOR_TTL,
            )
        methods = (["totp"] if user["totp_enabled"] else []) + (["passkey"] if user["passkeys"] else []) + ["recovery"]
        return LoginChallenge(challenge, methods)

    async def _second_factor(self, conn: Connection, challenge_token: str) -> Any:
        row = await conn.fetchrow(
            "SELECT c.id, c.user_id, c.tenant_id, c.challenge, u.login, u.display_name, u.totp_secret, "
            "u.totp_enabled, u.totp_last_step FROM auth_challenges c JOIN users u ON u.id = c.user_id "
            "WHERE c.id = $1 AND c.purpose = 'second_factor' AND c.used_at IS NULL AND c.expires_at > now() "
            "AND u.status = 'active' FOR UPDATE OF c, u",
            _uuid(challenge_token),
        )
        if row is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Étape expirée : reprenez la connexion.")
        return row

    async def _record_lockout(self, tenant_id: str, user_id: str, display_name: str) -> None:
        async with self.db.tenant(tenant_id) as conn:
            await security_events.record(
                conn,
                kind="account_locked",
                tenant_id=tenant_id,
                actor_id=user_id,
                summary=f"Compte de {display_name} verrouillé 15 minutes après des échecs de connexion répétés.",
            )

    async def _factor_failed(self, row: Any, client: Client, what: str) -> ServiceError:
        locked = await self.throttle.failure(account_key(row["login"]), address_key(client.address))
        if account_key(row["login"]) in locked:
            await self._record_lockout(str(row["tenant_id"]), str(row["user_id"]), row["display_name"])
        async with self.db.tenant(str(row["tenant_id"])) as conn:
            await security_events.record(
                conn,
                kind="login_failed",
                tenant_id=str(row["tenant_id"]),
                actor_id=str(row["user_id"]),
                summary=f"Échec de connexion pour {row['display_name']} ({what}).",
            )
        return ServiceError(ErrorCode.UNAUTHENTICATED, BAD_CODE)

    async def _login_succeeded(self, conn: Connection, row: Any, client: Client, how: str) -> IssuedSession:
        await conn.execute("UPDATE auth_challenges SET used_at = now() WHERE id = $1", row["id"])
        await enter_tenant(conn, str(row["tenant_id"]))
        session = await self._open(conn, str(row["user_id"]), str(row["tenant_id"]), client)
        await security_events.record(
            conn,
            kind="login_succeeded",
            tenant_id=str(row["tenant_id"]),
            actor_id=str(row["user_id"]),
            summary=f"Connexion de {row['display_name']} ({how}).",
        )
        return session

    async def login_totp(self, challenge_token: str, code: str, client: Client) -> IssuedSession:
        failure: Any = None
        async with identity_lookup(self.db) as conn:
            row = await self._second_factor(conn, challenge_token)
            if await self.throttle.locked(account_key(row["login"])):
                failure = row
            else:
                step = None
                if row["totp_enabled"]:
                    secret = await self.cipher.decrypt(
                        str(row["tenant_id"]), str(row["user_id"]), row["totp_secret"], purpose=TOTP_PURPOSE
                    )
                    step = totp.verify_code(
                        secret.decode(), code, now=time.time(), last_used_step=row["totp_last_step"]
                    )
                if step is None:
                    failure = row
                else:
                    await conn.execute("UPDATE users SET totp_last_step = $2 WHERE id = $1", row["user_id"], step)
                    session = await self._login_succeeded(conn, row, client, "mot de passe et code TOTP")
        if failure is not None:
            raise await self._factor_failed(failure, client, "code TOTP")
        await self.throttle.success(account_key(row["login"]))
        return session

    async def login_recovery(self, challenge_token: str, code: str, client: Client) -> IssuedSession:
        failure: Any = None
        async with identity_lookup(self.db) as conn:
            row = await self._second_factor(conn, challenge_token)
            # A locked account spends no code and no hashing work.
            used = not await self.throttle.locked(account_key(row["login"])) and await take_recovery_code(
                conn, str(row["user_id"]), code
            )
            if not used:
                failure = row
            else:
                session = await self._login_succeeded(conn, row, client, "code de secours")
        if failure is not None:
            raise await self._factor_failed(failure, client, "code de secours")
        await self.throttle.success(account_key(row["login"]))
        return session

    async def passkey_login_options(self, challenge_token: str | None) -> tuple[str, dict[str, Any]]:
        """With a password challenge: the user's passkeys as second factor. Without: passkey-only login."""
        async with identity_lookup(self.db) as conn:
            if challenge_token:
                row = await self._second_factor(conn, challenge_token)
                allowed = await tenancy.passkey_ids(conn, str(row["user_id"]))
                options, challenge = passkeys.authentication_options(self.passkey_config, allow_credentials=allowed)
                await conn.execute("UPDATE auth_challenges SET challenge = $2 WHERE id = $1", row["id"], challenge)
                return str(row["id"]), options
            options, challenge = passkeys.authentication_options(self.passkey_config)
            token = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO auth_challenges (id, purpose, challenge, expires_at) VALUES ($1, 'passkey_login', $2, $3)",
                token,
                challenge,
                datetime.now(UTC) + SECOND_FACTOR_TTL,
            )
            return token, options

    async def passkey_login(self, challenge_token: str, credential: dict[str, Any], client: Client) -> IssuedSession:
        async with identity_lookup(self.db) as conn:
            challenge = await conn.fetchrow(
                "SELECT id, purpose, user_id, challenge FROM auth_challenges WHERE id = $1 "
                "AND purpose IN ('second_factor', 'passkey_login') AND used_at IS NULL AND expires_at > now() "
                "FOR UPDATE",
                _uuid(challenge_token),
            )
            if challenge is None or challenge["challenge"] is None:
                raise ServiceError(ErrorCode.UNAUTHENTICATED, "Étape expirée : reprenez la connexion.")
            key = await conn.fetchrow(
                "SELECT p.credential_id, p.user_id, p.tenant_id, p.public_key, p.sign_count, u.login, "
                "u.display_name FROM passkeys p JOIN users u ON u.id = p.user_id "
                "WHERE p.credential_id = $1 AND u.status = 'active' FOR UPDATE OF p",
                passkeys.credential_id_of(credential),
            )
            handle = passkeys.user_handle_of(credential)
            if (
                key is None
                or (challenge["user_id"] is not None and challenge["user_id"] != key["user_id"])
                or (handle is not None and handle != uuid.UUID(str(key["user_id"])).bytes)
            ):
                raise ServiceError(ErrorCode.UNAUTHENTICATED, "Clé d'accès inconnue.")
            if await self.throttle.locked(account_key(key["login"])):
                raise bad_credentials()
            new_count = passkeys.verify_authentication(
                self.passkey_config,
                credential=credential,
                expected_challenge=bytes(challenge["challenge"]),
                public_key=bytes(key["public_key"]),
                sign_count=int(key["sign_count"]),
            )
            await conn.execute(
                "UPDATE passkeys SET sign_count = $2, last_used_at = now() WHERE credential_id = $1",
                key["credential_id"],
                new_count,
            )
            row = {
                "id": challenge["id"],
                "user_id": key["user_id"],
                "tenant_id": key["tenant_id"],
                "display_name": key["display_name"],
            }
            session = await self._login_succeeded(conn, row, client, "clé d'accès")
        await self.throttle.success(account_key(key["login"]))
        return session

    # -- refresh, logout, re-authentication ----------------------------------------------------------
    async def refresh(self, refresh_token: str) -> IssuedSession:
        async with identity_lookup(self.db) as conn:
            outcome = await sessions.rotate(conn, self.tokens, refresh_token, idle=self.refresh_idle)
            if outcome == "reused":
                owner = await sessions.session_of_refresh(conn, refresh_token)
                if owner is not None:
                    await enter_tenant(conn, owner[2])
                    await security_events.record(
                        conn,
                        kind="session_revoked",
                        tenant_id=owner[2],
                        actor_id=owner[1],
                        summary="Session révoquée : un jeton de rafraîchissement déjà utilisé a été présenté.",
                        data={"session_id": owner[0], "reason": "refresh_reuse"},
                    )
        if isinstance(outcome, str):
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Session expirée ou révoquée : reconnectez-vous.")
        return outcome

    async def logout(self, refresh_token: str) -> None:
        async with identity_lookup(self.db) as conn:
            owner = await sessions.session_of_refresh(conn, refresh_token)
            if owner is None:
                return
            if await sessions.revoke(conn, owner[0], "logout"):
                await enter_tenant(conn, owner[2])
                await security_events.record(
                    conn, kind="logout", tenant_id=owner[2], actor_id=owner[1], summary="Déconnexion."
                )

    async def reauthenticate_totp(self, *, user_id: str, tenant_id: str, session_id: str, code: str) -> None:
        """A fresh second factor for sensitive actions (valid five minutes)."""
        async with self.db.tenant(tenant_id) as conn:
            row = await conn.fetchrow(
                "SELECT login, totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1 FOR UPDATE",
                user_id,
            )
            step = None
            if row is not None and row["totp_enabled"] and not await self.throttle.locked(account_key(row["login"])):
                secret = await self.cipher.decrypt(tenant_id, user_id, row["totp_secret"], purpose=TOTP_PURPOSE)
                step = totp.verify_code(secret.decode(), code, now=time.time(), last_used_step=row["totp_last_step"])
            if step is not None:
                await conn.execute("UPDATE users SET totp_last_step = $2 WHERE id = $1", user_id, step)
                await conn.execute("UPDATE sessions SET mfa_at = now() WHERE id = $1", session_id)
        if step is None:
            if row is not None:
                await self.throttle.failure(account_key(row["login"]))
            raise ServiceError(ErrorCode.UNAUTHENTICATED, BAD_CODE)


async def replace_recovery_codes(conn: Connection, user_id: str, tenant_id: str) -> list[str]:
    """Ten fresh codes for the user, stored as salted Argon2id hashes; the previous ones are gone."""
    codes = recovery.new_recovery_codes()
    hashes = await asyncio.gather(*(asyncio.to_thread(recovery.hash_recovery_code, code) for code in codes))
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO recovery_codes (user_id, tenant_id, code_hash) VALUES ($1, $2, $3)",
        [(user_id, tenant_id, hashed) for hashed in hashes],
    )
    return codes


async def take_recovery_code(conn: Connection, user_id: str, code: str) -> bool:
    """Mark the user's unused code `code` used; False if it is not one (each candidate: one Argon2id check)."""
    stored = await conn.fetch("SELECT code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL", user_id)
    matched = await asyncio.to_thread(recovery.matching_code, code, [r["code_hash"] for r in stored])
    if matched is None:
        return False
    used = await conn.fetchval(
        "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL "
        "RETURNING true",
        user_id,
        matched,
    )
    return bool(used)


def _uuid(token: str) -> str:
    try:
        return str(uuid.UUID(token))
    except (ValueError, AttributeError, TypeError):
        return "00000000-0000-0000-0000-000000000000"  # matches nothing: same answer as an unknown token
