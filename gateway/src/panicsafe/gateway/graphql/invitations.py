"""Invitations through GraphQL: a one-time link (or QR code) handed over in person, never an e-mail.

Who may invite whom is decided in `checked_invitation` (pure: the input and the inviter's rights);
what the database must confirm (an open crisis, its cells, a regional authority, a login free in the
organisation) is checked in the mutation's transaction. A login ends with the organisation's code
(`identity.logins`), so another organisation's logins never come into it.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import strawberry

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError, forbidden, invalid, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.sessions import token_hash
from panicsafe.gateway.domain import models, policy, wording
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.common import GInfo, principal_of, text_arg, uuid_arg
from panicsafe.gateway.graphql.crises import record_crisis_event
from panicsafe.gateway.identity import logins
from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.store import tenancy as store

REGION_RE = re.compile(r"^[A-Z0-9-]{2,12}$")


def invitation_view(row: Any) -> t.Invitation:
    return t.Invitation(
        id=strawberry.ID(str(row["id"])),
        login=row["login"],
        display_name=row["display_name"],
        tenant_role=models.TenantRole(row["tenant_role"]),
        crisis_id=strawberry.ID(str(row["crisis_id"])) if row["crisis_id"] else None,
        crisis_role=models.CrisisRole(row["crisis_role"]) if row["crisis_role"] else None,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used=row["used_at"] is not None,
    )


@dataclass(frozen=True)
class Invitee:
    """An invitation as asked, in canonical form, once the inviter may issue it."""

    login: str  # as typed (`jdupont`) until `in_organisation` completes it (`jdupont@ght-demo`)
    display_name: str
    tenant_role: models.TenantRole
    crisis_id: str | None
    crisis_role: models.CrisisRole | None  # member unless said otherwise; None without a crisis
    region: str | None  # a regional supervisor's region


def checked_invitation(principal: Principal, input: t.InvitationInput) -> Invitee:
    """The input's format, and the inviter's rights: a tenant administrator invites into the tenant (an
    administrator or a supervisor: with a fresh second factor), a crisis leader into their crisis."""
    login = input.login.strip().lower()
    if not logins.LOCAL_RE.match(login):
        raise ServiceError(ErrorCode.INVALID, "Identifiant : 3 à 64 caractères, minuscules, chiffres, . _ -")
    display_name = text_arg(input.display_name, "displayName", max_len=120)
    crisis_id = uuid_arg(input.crisis_id, "crisisId") if input.crisis_id else None
    role = models.CrisisRole(input.crisis_role) if input.crisis_role else None
    tenant_role = models.TenantRole(input.tenant_role)
    if crisis_id is None:
        policy.require_tenant_admin(principal)
    else:
        policy.require_grant(principal, crisis_id, role or models.CrisisRole.MEMBER)
    if tenant_role == models.TenantRole.ADMIN or input.supervisor_region:
        policy.require_tenant_admin(principal)
        policy.require_fresh_mfa(principal)
    region = None
    if input.supervisor_region:
        region = input.supervisor_region.strip().upper()
        if not REGION_RE.match(region) or crisis_id is not None:
            raise invalid("supervisorRegion : code de région invalide (ou invitation liée à une crise).")
    crisis_role = (role or models.CrisisRole.MEMBER) if crisis_id is not None else None
    return Invitee(login, display_name, tenant_role, crisis_id, crisis_role, region)


async def in_organisation(conn: Connection, tenant_id: str, invitee: Invitee) -> Invitee:
    """The invitee with the whole login, ended by the inviter's organisation code (`identity.logins`)."""
    tenant_row = await store.tenant(conn, tenant_id)
    if tenant_row is None:
        raise forbidden("Organisation inconnue.")
    return dataclasses.replace(invitee, login=logins.qualified(invitee.login, tenant_row["code"]))


async def open_crisis_and_cells(
    conn: Connection, crisis_id: str | None, cell_ids: list[strawberry.ID]
) -> tuple[Any, list[str]]:
    """The crisis' row and the cells' canonical ids (none without a crisis): an open crisis, its own cells."""
    if crisis_id is None:
        return None, []
    row = await store.crisis(conn, crisis_id)
    if row is None or row["status"] == "closed":
        raise ServiceError(ErrorCode.CONFLICT, "La crise est close.")
    ids = [uuid_arg(c, "cellIds") for c in cell_ids]
    known = {str(c["id"]) for c in await store.cells(conn, crisis_id)}
    if not set(ids) <= known:
        raise invalid("cellIds : cellule inconnue pour cette crise.")
    return row, ids


async def require_regional_authority(conn: Connection, tenant_id: str, region: str) -> None:
    tenant_row = await store.tenant(conn, tenant_id)
    if tenant_row is None or tenant_row["kind"] != "authority" or tenant_row["region"] != region:
        raise forbidden("Seule une autorité régionale désigne des superviseurs de sa région.")


async def record_invitation(conn: Connection, principal: Principal, invitee: Invitee, crisis_row: Any) -> None:
    """An invitation into a crisis is an event of that crisis (and its mode); any other, of the tenant."""
    if crisis_row is not None and invitee.crisis_role is not None:
        # Pending invitations are for leaders only: the crisis' log names the invitee when they join.
        role_name = wording.role_label(invitee.crisis_role)
        await record_crisis_event(
            conn,
            principal,
            crisis_row,
            kind=gw.INVITATION_CREATED,
            summary=f"{principal.display_name} a émis une invitation dans la crise (rôle {role_name}).",
        )
    else:
        await security_events.record_for(
            conn,
            principal,
            kind=gw.INVITATION_CREATED,
            summary=f"{principal.display_name} a invité {invitee.display_name} ({invitee.login}).",
        )


@strawberry.type
class InvitationsQuery:
    @strawberry.field
    async def invitations(self, info: GInfo) -> list[t.Invitation]:
        principal = await principal_of(info)
        led = [a.crisis_id for a in principal.crises.values() if a.role in models.LEADING_ROLES]
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await store.invitations(conn, crisis_ids=None if principal.is_tenant_admin else led)
        return [invitation_view(r) for r in rows]


@strawberry.type
class InvitationsMutation:
    @strawberry.mutation(description="Invite une personne : lien à usage unique (ou QR code), sans courriel.")
    async def create_invitation(self, info: GInfo, input: t.InvitationInput) -> t.IssuedInvitation:
        principal = await principal_of(info)
        services = info.context.services
        invitee = checked_invitation(principal, input)
        token = secrets.token_urlsafe(32)
        async with services.db.tenant(principal.tenant_id) as conn:
            crisis_row, cell_ids = await open_crisis_and_cells(conn, invitee.crisis_id, input.cell_ids)
            if invitee.region is not None:
                await require_regional_authority(conn, principal.tenant_id, invitee.region)
            invitee = await in_organisation(conn, principal.tenant_id, invitee)
            # Only this organisation's own logins can clash: the answer says nothing of any other.
            if await store.login_taken(conn, invitee.login):
                raise ServiceError(ErrorCode.CONFLICT, "Cet identifiant est déjà pris.")
            invitation_id = await store.create_invitation(
                conn,
                tenant_id=principal.tenant_id,
                token_hash=token_hash(token),
                login=invitee.login,
                display_name=invitee.display_name,
                tenant_role=invitee.tenant_role.value,
                crisis_id=invitee.crisis_id,
                crisis_role=invitee.crisis_role.value if invitee.crisis_role else None,
                crisis_function=input.crisis_function,
                cell_ids=cell_ids,
                created_by=principal.user_id,
                supervisor_region=invitee.region,
                expires_at=datetime.now(UTC) + timedelta(seconds=services.settings.invitation_ttl_s),
            )
            await record_invitation(conn, principal, invitee, crisis_row)
            row = await store.invitation(conn, invitation_id)
        link = f"{services.settings.public_url.rstrip('/')}/#/invitation/{token}"
        return t.IssuedInvitation(invitation=invitation_view(row), link=link, qr_svg=qr_svg(link))

    @strawberry.mutation
    async def revoke_invitation(self, info: GInfo, id: strawberry.ID) -> bool:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            row = await store.invitation(conn, uuid_arg(id, "id"))
            if row is None:
                raise not_found("Invitation introuvable.")
            if row["crisis_id"] is None or principal.is_tenant_admin:
                policy.require_tenant_admin(principal)
            else:
                policy.require_leader(principal, str(row["crisis_id"]))
            return await store.revoke_invitation(conn, str(row["id"])) is not None
