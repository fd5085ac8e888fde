"""Managing the factors of an account that already has one: add TOTP or a passkey, drop TOTP,
and re-authenticate with a passkey. Each change needs a fresh second factor (checked by the policy)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.credentials import store_passkey
from panicsafe.gateway.auth.rules import BAD_CODE, TOTP_PURPOSE
from panicsafe.gateway.auth.service import AuthService
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.identity import passkeys, totp
from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.store import tenancy

SETUP_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class TotpSetup:
    setup_id: str
    secret: str
    uri: str
    qr_svg: str


class FactorService:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth

    async def _challenge(self, conn: Connection, principal: Principal, purpose: str, challenge: bytes) -> str:
        setup_id = str(uuid.uuid4())
        await conn.execute(
            "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, challenge, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            setup_id,
            purpose,
            principal.user_id,
            principal.tenant_id,
            challenge,
            datetime.now(UTC) + SETUP_TTL,
        )
        return setup_id

    async def _take(self, conn: Connection, principal: Principal, setup_id: str, purpose: str) -> bytes:
        try:
            key = str(uuid.UUID(setup_id))
        except ValueError as exc:
            raise not_found("Opération inconnue ou expirée.") from exc
        value = await conn.fetchval(
            "UPDATE auth_challenges SET used_at = now() WHERE id = $1 AND purpose = $2 AND user_id = $3 "
            "AND used_at IS NULL AND expires_at > now() RETURNING challenge",
            key,
            purpose,
            principal.user_id,
        )
        if value is None:
            raise not_found("Opération inconnue ou expirée.")
        return bytes(value)

    async def begin_totp(self, principal: Principal) -> TotpSetup:
        secret = totp.new_secret()
        sealed = await self.auth.cipher.encrypt(
            principal.tenant_id, principal.user_id, secret.encode(), purpose=TOTP_PURPOSE
        )
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            setup_id = await self._challenge(conn, principal, "totp_setup", sealed)
        uri = totp.provisioning_uri(secret, account=principal.login)
        return TotpSetup(setup_id, secret, uri, qr_svg(uri))

    async def confirm_totp(self, principal: Principal, setup_id: str, code: str) -> None:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            sealed = await self._take(conn, principal, setup_id, "totp_setup")
            secret = await self.auth.cipher.decrypt(
                principal.tenant_id, principal.user_id, sealed, purpose=TOTP_PURPOSE
            )
            step = totp.verify_code(secret.decode(), code, now=time.time(), last_used_step=None)
            if step is None:
                raise ServiceError(ErrorCode.INVALID, BAD_CODE)
            await conn.execute(
                "UPDATE users SET totp_secret = $2, totp_enabled = true, totp_last_step = $3 WHERE id = $1",
                principal.user_id,
                sealed,
                step,
            )
            await security_events.record_for(
                conn,
                principal,
                kind=gw.FACTOR_CHANGED,
                summary=f"{principal.display_name} a configuré une nouvelle application d'authentification.",
            )

    async def disable_totp(self, principal: Principal) -> None:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            keys = await conn.fetchval("SELECT count(*) FROM passkeys WHERE user_id = $1", principal.user_id)
            if not keys:
                raise ServiceError(ErrorCode.CONFLICT, "Impossible de retirer votre dernier second facteur.")
            await conn.execute(
                "UPDATE users SET totp_enabled = false, totp_last_step = NULL WHERE id = $1", principal.user_id
            )
            await security_events.record_for(
                conn,
                principal,
                kind=gw.FACTOR_CHANGED,
                summary=f"{principal.display_name} a désactivé son application d'authentification.",
            )

    async def begin_passkey(self, principal: Principal) -> tuple[str, dict[str, Any]]:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            existing = await tenancy.passkey_ids(conn, principal.user_id)
            options, challenge = passkeys.registration_options(
                self.auth.passkey_config,
                user_id=uuid.UUID(principal.user_id).bytes,
                user_name=principal.login,
                display_name=principal.display_name,
                exclude_credentials=existing,
            )
            return await self._challenge(conn, principal, "passkey_setup", challenge), options

    async def finish_passkey(self, principal: Principal, setup_id: str, credential: dict[str, Any]) -> None:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            challenge = await self._take(conn, principal, setup_id, "passkey_setup")
            created = passkeys.verify_registration(
                self.auth.passkey_config, credential=credential, expected_challenge=challenge
            )
            await store_passkey(conn, principal.user_id, principal.tenant_id, created)
            await security_events.record_for(
                conn,
                principal,
                kind=gw.FACTOR_CHANGED,
                summary=f"{principal.display_name} a ajouté une clé d'accès.",
            )

    async def reauth_passkey_options(self, principal: Principal) -> tuple[str, dict[str, Any]]:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            allowed = await tenancy.passkey_ids(conn, principal.user_id)
            if not allowed:
                raise ServiceError(ErrorCode.CONFLICT, "Aucune clé d'accès n'est enregistrée sur ce compte.")
            options, challenge = passkeys.authentication_options(self.auth.passkey_config, allow_credentials=allowed)
            return await self._challenge(conn, principal, "reauth", challenge), options

    async def reauth_passkey(self, principal: Principal, setup_id: str, credential: dict[str, Any]) -> None:
        async with self.auth.db.tenant(principal.tenant_id) as conn:
            challenge = await self._take(conn, principal, setup_id, "reauth")
            key = await conn.fetchrow(
                "SELECT credential_id, public_key, sign_count FROM passkeys WHERE credential_id = $1 AND user_id = $2 "
                "FOR UPDATE",
                passkeys.credential_id_of(credential),
                principal.user_id,
            )
            if key is None:
                raise ServiceError(ErrorCode.UNAUTHENTICATED, "Clé d'accès inconnue.")
            count = passkeys.verify_authentication(
                self.auth.passkey_config,
                credential=credential,
                expected_challenge=challenge,
                public_key=bytes(key["public_key"]),
                sign_count=int(key["sign_count"]),
            )
            await conn.execute(
                "UPDATE passkeys SET sign_count = $2, last_used_at = now() WHERE credential_id = $1",
                key["credential_id"],
                count,
            )
            await conn.execute("UPDATE sessions SET mfa_at = now() WHERE id = $1", principal.session_id)
