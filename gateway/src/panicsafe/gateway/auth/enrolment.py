"""Accepting an invitation: password, then a first second factor (TOTP or passkey), then a session.

Accepting consumes the invitation and creates the account, not active yet: it becomes active, with
ten recovery codes and a first session, only once its second factor is enrolled.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.events import Mode
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import invalid
from panicsafe.gateway import security_events
from panicsafe.gateway.auth import rules, store
from panicsafe.gateway.auth.credentials import check_totp, replace_recovery_codes, store_passkey
from panicsafe.gateway.auth.deps import AuthDeps, Client
from panicsafe.gateway.auth.sessions import IssuedSession, token_hash
from panicsafe.gateway.domain.wording import role_label
from panicsafe.gateway.identity import passkeys, passwords, totp
from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.store import enter_tenant_of


@dataclass(frozen=True)
class EnrolmentStart:
    enrolment_token: str
    login: str
    totp_secret: str
    totp_uri: str
    totp_qr_svg: str


@dataclass(frozen=True)
class Enrolled:
    session: IssuedSession
    recovery_codes: list[str]


async def _open_invitation(conn: Connection, token: str, *, lock: bool) -> Any:
    """The open invitation of `token`, the transaction now scoped to its tenant."""
    hashed = token_hash(token)
    await enter_tenant_of(conn, "invitation_tenant", hashed)
    row = await store.open_invitation(conn, hashed, lock=lock)
    if row is None:
        raise rules.unknown_invitation()
    return row


async def inspect_invitation(deps: AuthDeps, token: str) -> dict[str, Any]:
    """What the invitation behind `token` offers, without consuming it."""
    async with deps.db.transaction() as conn:
        return rules.invitation_view(await _open_invitation(conn, token, lock=False))


async def enrol_password(deps: AuthDeps, token: str, password: str, client: Client) -> EnrolmentStart:
    """Consume the invitation: the account exists (without any factor yet) and must enrol one."""
    async with deps.db.transaction() as conn:
        invitation = await _open_invitation(conn, token, lock=True)
        refusal = rules.password_refusal(
            passwords.password_problems(password, user_inputs=[invitation["login"], invitation["display_name"]])
        )
        if refusal is not None:
            raise refusal
        user_id = str(uuid.uuid4())
        secret = totp.new_secret()
        await _create_account(deps, conn, invitation, user_id, password, secret)
        enrolment = str(uuid.uuid4())
        await store.create_challenge(
            conn,
            challenge_id=enrolment,
            purpose="enrolment",
            user_id=user_id,
            tenant_id=str(invitation["tenant_id"]),
            expires_at=datetime.now(UTC) + rules.ENROLMENT_TTL,
        )
        await security_events.record(
            conn,
            kind=gw.INVITATION_ACCEPTED,
            tenant_id=str(invitation["tenant_id"]),
            actor_id=user_id,
            summary=f"Invitation acceptée par {invitation['display_name']} ({invitation['login']}).",
        )
    uri = totp.provisioning_uri(secret, account=invitation["login"])
    return EnrolmentStart(enrolment, invitation["login"], secret, uri, qr_svg(uri))


async def _create_account(
    deps: AuthDeps, conn: Connection, invitation: Any, user_id: str, password: str, secret: str
) -> None:
    """The invited account with its password and sealed TOTP secret, and what the invitation grants."""
    tenant_id = str(invitation["tenant_id"])
    sealed = await deps.cipher.encrypt(tenant_id, user_id, secret.encode(), purpose=rules.TOTP_PURPOSE)
    try:
        await store.create_enrolling_user(
            conn,
            user_id=user_id,
            invitation=invitation,
            password_hash=await asyncio.to_thread(passwords.hash_password, password),
            sealed_totp=sealed,
        )
    except asyncpg.UniqueViolationError as exc:
        # Logins are global: the unique index sees every tenant's accounts, which this transaction
        # does not. The transaction is lost, and nothing of the acceptance stays.
        if exc.constraint_name == "users_login_key":
            raise rules.login_taken() from None
        raise
    await store.mark_invitation_used(conn, invitation["id"], user_id)
    if invitation["supervisor_region"]:
        await store.add_regional_supervisor(
            conn, user_id=user_id, tenant_id=tenant_id, region=invitation["supervisor_region"]
        )
    if invitation["crisis_id"] is not None:
        await _join_crisis_from_invitation(conn, invitation, user_id)


async def _join_crisis_from_invitation(conn: Connection, invitation: Any, user_id: str) -> None:
    crisis_id = invitation["crisis_id"]
    crisis = await store.crisis_state(conn, crisis_id)
    if crisis is None or crisis["status"] == "closed":
        return  # the crisis closed since: the account is created, without membership
    role = rules.crisis_role_of(invitation)
    await store.add_crisis_member(
        conn,
        crisis_id=crisis_id,
        user_id=user_id,
        tenant_id=invitation["tenant_id"],
        role=role,
        function=invitation["crisis_function"],
    )
    for cell_id in invitation["cell_ids"]:
        await store.add_cell_member(conn, cell_id=cell_id, user_id=user_id, crisis_id=crisis_id)
    await security_events.record(
        conn,
        kind=gw.MEMBERSHIP_CHANGED,
        tenant_id=str(invitation["tenant_id"]),
        actor_id=user_id,
        crisis_id=str(crisis_id),
        mode=Mode(crisis["mode"]),
        summary=f"{invitation['display_name']} rejoint la crise sur invitation (rôle {role_label(role)}).",
        data=gw.MembershipChanged(user_id=user_id, role=role),
        author=str(invitation["display_name"]),
    )


async def _enrolment(conn: Connection, enrolment_token: str) -> Any:
    """The live enrolment of `enrolment_token`, the transaction now scoped to its tenant."""
    challenge_id = rules.canonical_token(enrolment_token)
    await enter_tenant_of(conn, "challenge_tenant", challenge_id)
    row = await store.open_enrolment(conn, challenge_id)
    if row is None:
        raise rules.unknown_enrolment()
    return row


async def enrol_totp(deps: AuthDeps, enrolment_token: str, code: str, client: Client) -> Enrolled:
    """The first code of the TOTP secret shown at `enrol_password` activates the account."""
    async with deps.db.transaction() as conn:
        row = await _enrolment(conn, enrolment_token)
        user_id, tenant_id = str(row["user_id"]), str(row["tenant_id"])
        step = await check_totp(
            deps.cipher, tenant_id=tenant_id, user_id=user_id, sealed=row["totp_secret"], code=code, last_used_step=None
        )
        if step is None:
            raise rules.wrong_enrolment_code()
        await store.enable_totp(conn, user_id, step)
        return await _activate(deps, conn, row, client, factor="TOTP")


async def enrol_passkey_options(deps: AuthDeps, enrolment_token: str) -> dict[str, Any]:
    """The WebAuthn registration options for the enrolling account; the challenge is kept."""
    async with deps.db.transaction() as conn:
        row = await _enrolment(conn, enrolment_token)
        options, challenge = passkeys.registration_options(
            deps.passkey_config,
            user_id=uuid.UUID(str(row["user_id"])).bytes,
            user_name=row["login"],
            display_name=row["display_name"],
        )
        await store.set_challenge_bytes(conn, row["id"], challenge)
    return options


async def enrol_passkey(deps: AuthDeps, enrolment_token: str, credential: dict[str, Any], client: Client) -> Enrolled:
    """A passkey registered against the kept challenge activates the account."""
    async with deps.db.transaction() as conn:
        row = await _enrolment(conn, enrolment_token)
        if row["challenge"] is None:
            raise invalid("Demandez d'abord les options de la clé d'accès.")
        created = passkeys.verify_registration(
            deps.passkey_config, credential=credential, expected_challenge=bytes(row["challenge"])
        )
        await store_passkey(conn, str(row["user_id"]), str(row["tenant_id"]), created)
        return await _activate(deps, conn, row, client, factor="clé d'accès")


async def _activate(deps: AuthDeps, conn: Connection, row: Any, client: Client, *, factor: str) -> Enrolled:
    """The account is active: its enrolment is spent, it gets recovery codes and a first session."""
    user_id, tenant_id = str(row["user_id"]), str(row["tenant_id"])
    await store.activate_user(conn, user_id)
    await store.use_challenge(conn, row["id"])
    codes = await replace_recovery_codes(conn, user_id, tenant_id)
    session = await deps.open_session(conn, user_id, tenant_id, client)
    await security_events.record(
        conn,
        kind=gw.FACTOR_ENROLLED,
        tenant_id=tenant_id,
        actor_id=user_id,
        summary=f"{row['display_name']} a enrôlé son second facteur ({factor}).",
    )
    return Enrolled(session, codes)
