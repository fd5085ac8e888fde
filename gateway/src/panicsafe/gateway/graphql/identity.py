"""One's own account through GraphQL: who one is, one's sessions, recovery codes, passkeys and TOTP.

Each field acts on the signed-in person's own account only; the policy asks a fresh second factor
where a change weakens or replaces a factor (`FIELD_POLICIES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError, invalid, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.service import replace_recovery_codes
from panicsafe.gateway.auth.sessions import revoke
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.common import GInfo, principal_of, text_arg, uuid_arg
from panicsafe.gateway.store import accounts as store


def memberships_view(principal: Principal) -> list[t.Membership]:
    return [
        t.Membership(
            crisis_id=strawberry.ID(a.crisis_id),
            role=a.role,
            cell_ids=[strawberry.ID(c) for c in sorted(a.cells)],
        )
        for a in principal.crises.values()
    ]


def factors_view(factors: Any, keys: Sequence[Any]) -> t.Factors:
    return t.Factors(
        totp_enabled=factors["totp_enabled"],
        recovery_codes_left=int(factors["recovery_left"]),
        enrolled_at=factors["mfa_enrolled_at"],
        passkeys=[
            t.Passkey(
                id=bytes(k["credential_id"]).hex(),
                name=k["name"],
                created_at=k["created_at"],
                last_used_at=k["last_used_at"],
            )
            for k in keys
        ],
    )


def session_view(principal: Principal, row: Any) -> t.Session:
    return t.Session(
        id=strawberry.ID(str(row["id"])),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        address=row["address"],
        user_agent=row["user_agent"],
        current=str(row["id"]) == principal.session_id,
    )


def credential_id_arg(value: str) -> bytes:
    """A passkey's credential id, given in hexadecimal."""
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise invalid("id : identifiant de clé invalide.") from exc


@strawberry.type
class AccountQuery:
    @strawberry.field(description="Le compte connecté, ses appartenances et ses facteurs.")
    async def me(self, info: GInfo) -> t.Me:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            factors = await store.factors_of(conn, principal.user_id)
            keys = await store.passkeys_of(conn, principal.user_id)
        assert factors is not None
        return t.Me(
            id=strawberry.ID(principal.user_id),
            login=principal.login,
            display_name=principal.display_name,
            tenant_role=principal.tenant_role,
            tenant_id=strawberry.ID(principal.tenant_id),
            supervisor_region=principal.supervisor_region,
            memberships=memberships_view(principal),
            factors=factors_view(factors, keys),
            fresh_second_factor=principal.has_fresh_mfa(),
        )


@strawberry.type
class SessionsQuery:
    @strawberry.field(description="Vos sessions actives.")
    async def sessions(self, info: GInfo) -> list[t.Session]:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await store.sessions_of(conn, principal.user_id)
        return [session_view(principal, r) for r in rows]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation
    async def revoke_session(self, info: GInfo, id: strawberry.ID) -> bool:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            if await store.session_owner(conn, uuid_arg(id, "id")) != principal.user_id:
                raise not_found("Session introuvable.")
            done = await revoke(conn, str(id), "revoked_by_user")
            if done:
                await security_events.record_for(
                    conn,
                    principal,
                    kind=gw.SESSION_REVOKED,
                    summary=f"{principal.display_name} a révoqué une session.",
                    data=gw.SessionRevoked(session_id=str(id)),
                )
        return done

    @strawberry.mutation(description="Révoque toutes vos autres sessions.")
    async def revoke_other_sessions(self, info: GInfo) -> int:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            count = await store.revoke_other_sessions(conn, principal.user_id, principal.session_id)
            await security_events.record_for(
                conn,
                principal,
                kind=gw.SESSION_REVOKED,
                summary=f"{principal.display_name} a révoqué {count} autre(s) session(s).",
            )
        return count

    @strawberry.mutation(description="Remplace vos codes de secours (second facteur récent exigé).")
    async def regenerate_recovery_codes(self, info: GInfo) -> list[str]:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            codes = await replace_recovery_codes(conn, principal.user_id, principal.tenant_id)
            await security_events.record_for(
                conn,
                principal,
                kind=gw.FACTOR_CHANGED,
                summary=f"{principal.display_name} a régénéré ses codes de secours.",
            )
        return codes

    @strawberry.mutation
    async def remove_passkey(self, info: GInfo, id: str) -> bool:
        principal = await principal_of(info)
        credential_id = credential_id_arg(id)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            factors = await store.factors_of(conn, principal.user_id)
            keys = await store.passkeys_of(conn, principal.user_id)
            if factors is not None and not factors["totp_enabled"] and len(keys) <= 1:
                raise ServiceError(ErrorCode.CONFLICT, "Impossible de retirer votre dernier second facteur.")
            removed = await store.remove_passkey(conn, principal.user_id, credential_id)
            if removed:
                await security_events.record_for(
                    conn,
                    principal,
                    kind=gw.FACTOR_CHANGED,
                    summary=f"{principal.display_name} a retiré une clé d'accès.",
                )
        return removed

    @strawberry.mutation
    async def rename_passkey(self, info: GInfo, id: str, name: str) -> bool:
        principal = await principal_of(info)
        clean = text_arg(name, "name", max_len=60)
        credential_id = credential_id_arg(id)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            return await store.rename_passkey(conn, principal.user_id, credential_id, clean)

    @strawberry.mutation(description="Prépare une nouvelle application d'authentification (QR code à scanner).")
    async def begin_totp_setup(self, info: GInfo) -> t.TotpSetup:
        setup = await info.context.services.factors.begin_totp(await principal_of(info))
        return t.TotpSetup(
            setup_id=strawberry.ID(setup.setup_id), secret=setup.secret, uri=setup.uri, qr_svg=setup.qr_svg
        )

    @strawberry.mutation
    async def confirm_totp_setup(self, info: GInfo, setup_id: strawberry.ID, code: str) -> bool:
        await info.context.services.factors.confirm_totp(await principal_of(info), str(setup_id), code)
        return True

    @strawberry.mutation
    async def disable_totp(self, info: GInfo) -> bool:
        await info.context.services.factors.disable_totp(await principal_of(info))
        return True

    @strawberry.mutation(description="Options WebAuthn pour ajouter une clé d'accès à votre compte.")
    async def begin_passkey_registration(self, info: GInfo) -> t.PasskeyRegistration:
        setup_id, options = await info.context.services.factors.begin_passkey(await principal_of(info))
        return t.PasskeyRegistration(setup_id=strawberry.ID(setup_id), options=cast(JSON, options))

    @strawberry.mutation
    async def finish_passkey_registration(self, info: GInfo, setup_id: strawberry.ID, credential: JSON) -> bool:
        if not isinstance(credential, dict):
            raise invalid("credential : objet attendu.")
        await info.context.services.factors.finish_passkey(await principal_of(info), str(setup_id), credential)
        return True
