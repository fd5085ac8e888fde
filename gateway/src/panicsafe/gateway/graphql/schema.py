"""The gateway's GraphQL schema: queries, mutations and subscriptions, each decided by the policy.

`PolicyGuard` is attached to every root field when the schema is built; it asks
`domain.policy.decide("<Type>.<field>", principal, args)` before the resolver runs. The only
subscription checks the same policy at its start, then filters every event again.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from graphql.language import OperationType
from starlette.websockets import WebSocket
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.scalars import JSON
from strawberry.types import Info

from panicsafe.contracts import chat as chat_ops
from panicsafe.contracts.chat import EditRequest, MarkRequest, PinRequest, RedactRequest
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent, LogbookKind, Mode
from panicsafe.contracts.logbook import ExportFormat
from panicsafe.core.db.database import savepoint
from panicsafe.core.errors import ServiceError, forbidden, invalid, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.auth.service import replace_recovery_codes
from panicsafe.gateway.auth.sessions import revoke, token_hash
from panicsafe.gateway.domain import models, policy, wording
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql import chat as ch
from panicsafe.gateway.graphql import logbook as lb
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.streams import crisis_stream
from panicsafe.gateway.graphql_context import GatewayContext
from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.store import tenancy

EARLIEST_T0 = datetime(2000, 1, 1, tzinfo=UTC)
REGION_RE = re.compile(r"^[A-Z0-9-]{2,12}$")
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
GInfo = Info[GatewayContext, None]


class PolicyGuard(FieldExtension):
    """Decides a root field before its resolver runs (fail closed: no rule, no answer)."""

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: GInfo, **kwargs: Any) -> Any:
        principal = await info.context.principal()
        policy.decide(f"{info._raw_info.parent_type.name}.{info.field_name}", principal, kwargs)
        return await next_(source, info, **kwargs)


async def _principal(info: GInfo) -> Principal:
    return await info.context.require_principal()


def _text(value: str, field: str, *, max_len: int) -> str:
    value = value.strip()
    if not value or len(value) > max_len:
        raise ServiceError(ErrorCode.INVALID, f"{field} : entre 1 et {max_len} caractères.")
    return value


def _uuid_arg(value: str, field: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise invalid(f"{field} : identifiant invalide.") from exc


def _mode(row: Any) -> Mode:
    return Mode.EXERCISE if row["mode"] == "exercise" else Mode.REAL


async def _crisis_event(
    conn: Any,
    principal: Principal,
    crisis_row: Any,
    *,
    kind: str,
    summary: str,
    data: dict[str, Any] | None = None,
    logbook_kind: LogbookKind = LogbookKind.SYSTEM,
    cell: str | None = None,
) -> None:
    """An event of one crisis: its id and its mode (real or exercise) always come from the crisis row.

    An event about one cell names it, so that only those who see that cell see the event."""
    await security_events.record(
        conn,
        kind=kind,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        crisis_id=str(crisis_row["id"]),
        mode=_mode(crisis_row),
        summary=summary,
        data=data,
        logbook_kind=logbook_kind,
        author=principal.display_name,
        cell=cell,
    )


# -- conversions ---------------------------------------------------------------------------------


def _tenant(row: Any) -> t.Tenant:
    return t.Tenant(
        id=strawberry.ID(str(row["id"])),
        name=row["name"],
        kind=models.TenantKind(row["kind"]),
        region=row["region"],
        share_with_region=row["share_with_region"],
    )


def _establishment(row: Any) -> t.Establishment:
    return t.Establishment(
        id=strawberry.ID(str(row["id"])), name=row["name"], type=models.EstablishmentType(row["type"])
    )


def _invitation(row: Any) -> t.Invitation:
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


async def _crisis(conn: Any, principal: Principal, row: Any, details: Any = None) -> t.Crisis:
    """`details`: the row of `tenancy.crisis_details` (or `crisis_overview`), loaded here if not given."""
    crisis_id = str(row["id"])
    access = policy.require_member(principal, crisis_id)
    if details is None:
        details = await tenancy.crisis_details(conn, principal.tenant_id, crisis_id)
    cells = [c for c in details["cells"] if policy.can_see_cell(principal, crisis_id, str(c["id"]))]
    members = []
    if policy.can_see_members(principal, crisis_id):
        members = [
            t.Member(
                user_id=strawberry.ID(str(m["user_id"])),
                display_name=m["display_name"],
                role=models.CrisisRole(m["role"]),
                function=m["function"],
                cell_ids=[strawberry.ID(c) for c in m["cells"]],
            )
            for m in details["members"]
        ]
    return t.Crisis(
        id=strawberry.ID(crisis_id),
        title=row["title"],
        mode=models.CrisisMode(row["mode"]),
        status=models.CrisisStatus(row["status"]),
        severity=models.Severity(row["severity"]),
        t0=row["t0"],
        declared_at=row["declared_at"],
        closed_at=row["closed_at"],
        my_role=access.role,
        establishments=[_establishment(e) for e in details["establishments"]],
        cells=[t.Cell(id=strawberry.ID(str(c["id"])), kind=models.CellKind(c["kind"]), name=c["name"]) for c in cells],
        members=members,
    )


# -- queries ---------------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="Le compte connecté, ses appartenances et ses facteurs.")
    async def me(self, info: GInfo) -> t.Me:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            factors = await tenancy.factors_of(conn, principal.user_id)
            keys = await tenancy.passkeys_of(conn, principal.user_id)
        assert factors is not None
        return t.Me(
            id=strawberry.ID(principal.user_id),
            login=principal.login,
            display_name=principal.display_name,
            tenant_role=principal.tenant_role,
            tenant_id=strawberry.ID(principal.tenant_id),
            supervisor_region=principal.supervisor_region,
            memberships=[
                t.Membership(
                    crisis_id=strawberry.ID(a.crisis_id),
                    role=a.role,
                    cell_ids=[strawberry.ID(c) for c in sorted(a.cells)],
                )
                for a in principal.crises.values()
            ],
            factors=t.Factors(
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
            ),
            fresh_second_factor=principal.has_fresh_mfa(),
        )

    @strawberry.field
    async def tenant(self, info: GInfo) -> t.Tenant:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            row = await tenancy.tenant(conn, principal.tenant_id)
        if row is None:
            raise not_found("Organisation introuvable.")
        return _tenant(row)

    @strawberry.field
    async def establishments(self, info: GInfo) -> list[t.Establishment]:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            return [_establishment(r) for r in await tenancy.establishments(conn)]

    @strawberry.field(description="L'annuaire de l'organisation (administrateurs et responsables de crise).")
    async def directory(self, info: GInfo) -> list[t.DirectoryUser]:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await tenancy.directory(conn)
        return [
            t.DirectoryUser(
                id=strawberry.ID(str(r["id"])),
                login=r["login"],
                display_name=r["display_name"],
                tenant_role=models.TenantRole(r["tenant_role"]),
                status=r["status"],
            )
            for r in rows
        ]

    @strawberry.field
    async def invitations(self, info: GInfo) -> list[t.Invitation]:
        principal = await _principal(info)
        led = [a.crisis_id for a in principal.crises.values() if a.role in models.LEADING_ROLES]
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await tenancy.invitations(conn, crisis_ids=None if principal.is_tenant_admin else led)
        return [_invitation(r) for r in rows]

    @strawberry.field(description="Les crises dont vous êtes membre.")
    async def crises(self, info: GInfo) -> list[t.Crisis]:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            return [await _crisis(conn, principal, r) for r in await tenancy.crises(conn, list(principal.crises))]

    @strawberry.field
    async def crisis(self, info: GInfo, id: strawberry.ID) -> t.Crisis:
        principal = await _principal(info)
        row = await tenancy.crisis_overview(info.context.services.db, principal.tenant_id, _uuid_arg(id, "id"))
        if row is None:
            raise forbidden("Vous n'êtes pas membre de cette crise.")
        return await _crisis(None, principal, row, details=row)  # nothing left to read: no connection

    @strawberry.field(description="Vos sessions actives.")
    async def sessions(self, info: GInfo) -> list[t.Session]:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await tenancy.sessions_of(conn, principal.user_id)
        return [
            t.Session(
                id=strawberry.ID(str(r["id"])),
                created_at=r["created_at"],
                last_seen_at=r["last_seen_at"],
                address=r["address"],
                user_agent=r["user_agent"],
                current=str(r["id"]) == principal.session_id,
            )
            for r in rows
        ]

    @strawberry.field(description="La main courante d'une crise : filtres, pagination par curseur.")
    async def logbook(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        filter: lb.LogbookFilter | None = None,
        after: int | None = None,
        first: int = 50,
        order: lb.LogbookOrder = lb.LogbookOrder.OLDEST_FIRST,
    ) -> lb.LogbookPage:
        principal = await _principal(info)
        return await lb.read_logbook(info, principal, _uuid_arg(crisis_id, "crisisId"), filter, after, first, order)

    @strawberry.field(description="Les canaux de la crise que vous pouvez lire, avec les non-lus.")
    async def chat_channels(self, info: GInfo, crisis_id: strawberry.ID) -> list[ch.ChatChannel]:
        return await ch.list_channels(info, await _principal(info), _uuid_arg(crisis_id, "crisisId"))

    @strawberry.field(description="L'historique d'un canal : avant `before` (du plus récent) ou après `after`.")
    async def chat_history(
        self,
        info: GInfo,
        channel_id: strawberry.ID,
        before: int | None = None,
        after: int | None = None,
        first: int = 50,
    ) -> ch.ChatMessagePage:
        return await ch.history(info, await _principal(info), str(channel_id), before, after, first)

    @strawberry.field(description="Les messages épinglés d'un canal.")
    async def chat_pinned(self, info: GInfo, channel_id: strawberry.ID) -> list[ch.ChatMessage]:
        return await ch.pinned(info, await _principal(info), str(channel_id))

    @strawberry.field(description="Recherche par mots entiers (sans casse ni accents) dans la crise ou un canal.")
    async def chat_search(
        self, info: GInfo, crisis_id: strawberry.ID, text: str, channel_id: strawberry.ID | None = None, first: int = 20
    ) -> ch.ChatMessagePage:
        principal = await _principal(info)
        channel = str(channel_id) if channel_id else None
        return await ch.search(info, principal, _uuid_arg(crisis_id, "crisisId"), text, channel, first)

    @strawberry.field(description="Les versions d'un message modifié (d'un message retiré : responsables seulement).")
    async def chat_message_versions(self, info: GInfo, message_id: strawberry.ID) -> list[ch.ChatMessageVersion]:
        return await ch.versions(info, await _principal(info), str(message_id))

    @strawberry.field(description="Le dernier point de contrôle signé de la main courante.")
    async def logbook_checkpoint(self, info: GInfo, crisis_id: strawberry.ID) -> lb.LogbookCheckpoint | None:
        principal = await _principal(info)
        return await lb.latest_checkpoint(info, principal, _uuid_arg(crisis_id, "crisisId"))


# -- mutations -------------------------------------------------------------------------------------


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def update_tenant(
        self, info: GInfo, name: str | None = None, share_with_region: bool | None = None
    ) -> t.Tenant:
        principal = await _principal(info)
        clean = _text(name, "name", max_len=200) if name is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            await tenancy.update_tenant(conn, principal.tenant_id, name=clean, share_with_region=share_with_region)
            row = await tenancy.tenant(conn, principal.tenant_id)
            await security_events.record_for(
                conn,
                principal,
                kind="tenant_updated",
                summary=f"{principal.display_name} a modifié l'organisation"
                + (
                    ""
                    if share_with_region is None
                    else f" (partage régional : {'oui' if share_with_region else 'non'})"
                )
                + ".",
            )
        assert row is not None
        return _tenant(row)

    @strawberry.mutation
    async def create_establishment(self, info: GInfo, name: str, type: t.EstablishmentType) -> t.Establishment:
        principal = await _principal(info)
        clean = _text(name, "name", max_len=200)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            try:
                establishment_id = await tenancy.create_establishment(
                    conn, tenant_id=principal.tenant_id, name=clean, type_=str(type.value)
                )
            except Exception as exc:
                if "unique" in str(exc).lower():
                    raise ServiceError(ErrorCode.CONFLICT, "Un établissement porte déjà ce nom.") from exc
                raise
        return t.Establishment(id=strawberry.ID(establishment_id), name=clean, type=type)

    @strawberry.mutation
    async def update_establishment(
        self, info: GInfo, id: strawberry.ID, name: str | None = None, type: t.EstablishmentType | None = None
    ) -> t.Establishment:
        principal = await _principal(info)
        clean = _text(name, "name", max_len=200) if name is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            if not await tenancy.update_establishment(
                conn, _uuid_arg(id, "id"), name=clean, type_=str(type.value) if type else None
            ):
                raise not_found("Établissement introuvable.")
            row = next(r for r in await tenancy.establishments(conn) if str(r["id"]) == str(id))
        return _establishment(row)

    @strawberry.mutation(description="Invite une personne : lien à usage unique (ou QR code), sans courriel.")
    async def create_invitation(self, info: GInfo, input: t.InvitationInput) -> t.IssuedInvitation:
        principal = await _principal(info)
        services = info.context.services
        login = input.login.strip().lower()
        if not LOGIN_RE.match(login):
            raise ServiceError(ErrorCode.INVALID, "Identifiant : 3 à 64 caractères, minuscules, chiffres, . _ -")
        display_name = _text(input.display_name, "displayName", max_len=120)
        crisis_id = _uuid_arg(input.crisis_id, "crisisId") if input.crisis_id else None
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
        token = secrets.token_urlsafe(32)
        async with services.db.tenant(principal.tenant_id) as conn:
            crisis_row = None
            if crisis_id is not None:
                crisis_row = row = await tenancy.crisis(conn, crisis_id)
                if row is None or row["status"] == "closed":
                    raise ServiceError(ErrorCode.CONFLICT, "La crise est close.")
                cell_ids = [_uuid_arg(c, "cellIds") for c in input.cell_ids]
                known = {str(c["id"]) for c in await tenancy.cells(conn, crisis_id)}
                if not set(cell_ids) <= known:
                    raise invalid("cellIds : cellule inconnue pour cette crise.")
            else:
                cell_ids = []
            if region is not None:
                tenant_row = await tenancy.tenant(conn, principal.tenant_id)
                if tenant_row is None or tenant_row["kind"] != "authority" or tenant_row["region"] != region:
                    raise forbidden("Seule une autorité régionale désigne des superviseurs de sa région.")
            if await tenancy.login_taken(conn, login):
                raise ServiceError(ErrorCode.CONFLICT, "Cet identifiant est déjà pris.")
            invitation_id = await tenancy.create_invitation(
                conn,
                tenant_id=principal.tenant_id,
                token_hash=token_hash(token),
                login=login,
                display_name=display_name,
                tenant_role=tenant_role.value,
                crisis_id=crisis_id,
                crisis_role=(role or models.CrisisRole.MEMBER).value if crisis_id else None,
                crisis_function=input.crisis_function,
                cell_ids=cell_ids,
                created_by=principal.user_id,
                supervisor_region=region,
                expires_at=datetime.now(UTC) + timedelta(seconds=services.settings.invitation_ttl_s),
            )
            summary = f"{principal.display_name} a invité {display_name} ({login})."
            if crisis_row is not None:  # an invitation into a crisis is an event of that crisis (and its mode)
                # Pending invitations are for leaders only: the crisis' log names the invitee when they join.
                role_name = wording.role_label(role or models.CrisisRole.MEMBER)
                await _crisis_event(
                    conn,
                    principal,
                    crisis_row,
                    kind="invitation_created",
                    summary=f"{principal.display_name} a émis une invitation dans la crise (rôle {role_name}).",
                )
            else:
                await security_events.record_for(
                    conn,
                    principal,
                    kind="invitation_created",
                    summary=summary,
                )
            row = await tenancy.invitation(conn, invitation_id)
        link = f"{services.settings.public_url.rstrip('/')}/#/invitation/{token}"
        return t.IssuedInvitation(invitation=_invitation(row), link=link, qr_svg=qr_svg(link))

    @strawberry.mutation
    async def revoke_invitation(self, info: GInfo, id: strawberry.ID) -> bool:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            row = await tenancy.invitation(conn, _uuid_arg(id, "id"))
            if row is None:
                raise not_found("Invitation introuvable.")
            if row["crisis_id"] is None or principal.is_tenant_admin:
                policy.require_tenant_admin(principal)
            else:
                policy.require_leader(principal, str(row["crisis_id"]))
            return await tenancy.revoke_invitation(conn, str(row["id"])) is not None

    @strawberry.mutation(description="Déclare une crise à T0 (prise de connaissance) ; vous en êtes directeur.")
    async def declare_crisis(self, info: GInfo, input: t.DeclareCrisisInput) -> t.Crisis:
        principal = await _principal(info)
        title = _text(input.title, "title", max_len=200)
        now = datetime.now(UTC)
        if input.t0.tzinfo is None:
            raise invalid("t0 : indiquez le fuseau horaire.")
        if input.t0 > now + timedelta(minutes=5):
            raise invalid("t0 : la prise de connaissance ne peut pas être dans le futur.")
        if input.t0 < EARLIEST_T0:
            raise invalid("t0 : date de prise de connaissance invraisemblable.")
        kinds = [models.CellKind(k) for k in input.cells] if input.cells is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            establishment_ids = [_uuid_arg(e, "establishmentIds") for e in input.establishment_ids]
            known = {str(r["id"]) for r in await tenancy.establishments(conn)}
            if not set(establishment_ids) <= known:
                raise invalid("establishmentIds : établissement inconnu.")
            crisis_id = await tenancy.declare_crisis(
                conn,
                tenant_id=principal.tenant_id,
                title=title,
                mode=str(input.mode.value),
                severity=str(input.severity.value),
                t0=input.t0,
                declared_by=principal.user_id,
                establishment_ids=establishment_ids,
            )
            cells = []
            for kind, name in models.DEFAULT_CELLS:
                if kinds is None or kind in kinds:
                    cell_id = await tenancy.create_cell(
                        conn, tenant_id=principal.tenant_id, crisis_id=crisis_id, kind=kind.value, name=name
                    )
                    cells.append({"id": cell_id, "name": name, "kind": kind.value})
            await tenancy.upsert_member(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_id,
                user_id=principal.user_id,
                role=models.CrisisRole.DIRECTOR.value,
                function=None,
            )
            row = await tenancy.crisis(conn, crisis_id)
            assert row is not None
            mode = _mode(row)
            await _crisis_event(
                conn,
                principal,
                row,
                kind="crisis_declared",
                logbook_kind=LogbookKind.DECISION,
                summary=wording.crisis_declared(
                    director=principal.display_name,
                    title=title,
                    severity=input.severity.value,
                    t0=input.t0,
                    exercise=mode == Mode.EXERCISE,
                ),
                data={"title": title, "severity": input.severity.value, "t0": input.t0.isoformat(), "cells": cells},
            )
            director = policy.CrisisAccess(crisis_id, models.CrisisRole.DIRECTOR)
            extended = dataclasses.replace(principal, crises={**principal.crises, crisis_id: director})
            return await _crisis(conn, extended, row)

    @strawberry.mutation
    async def update_crisis(
        self,
        info: GInfo,
        id: strawberry.ID,
        status: t.CrisisStatus | None = None,
        severity: t.Severity | None = None,
    ) -> t.Crisis:
        principal = await _principal(info)
        if status is not None and models.CrisisStatus(status) == models.CrisisStatus.CLOSED:
            policy.require_director(principal, str(id))
        return await _change_crisis(info, principal, str(id), status=status, severity=severity)

    @strawberry.mutation(description="Clôt la crise (directeur).")
    async def close_crisis(self, info: GInfo, id: strawberry.ID) -> t.Crisis:
        principal = await _principal(info)
        return await _change_crisis(info, principal, str(id), status=models.CrisisStatus.CLOSED, severity=None)

    @strawberry.mutation
    async def create_cell(
        self, info: GInfo, crisis_id: strawberry.ID, name: str, kind: t.CellKind = models.CellKind.CUSTOM
    ) -> t.Cell:
        principal = await _principal(info)
        clean = _text(name, "name", max_len=120)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await _open_crisis(conn, str(crisis_id))
            try:
                async with savepoint(conn):  # a duplicate name must not abort the transaction
                    cell_id = await tenancy.create_cell(
                        conn,
                        tenant_id=principal.tenant_id,
                        crisis_id=str(crisis_id),
                        kind=str(kind.value),
                        name=clean,
                    )
            except Exception as exc:
                if "unique" in str(exc).lower():
                    raise ServiceError(ErrorCode.CONFLICT, "Une cellule porte déjà ce nom.") from exc
                raise
            await _crisis_event(
                conn,
                principal,
                crisis,
                kind="cell_created",
                summary=f"Cellule « {clean} » créée par {principal.display_name}.",
                cell=cell_id,
                data={"cells": [{"id": cell_id, "name": clean, "kind": str(kind.value)}]},
            )
        return t.Cell(id=strawberry.ID(cell_id), kind=kind, name=clean)

    @strawberry.mutation(description="Ajoute ou modifie un membre de la crise.")
    async def add_crisis_member(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        user_id: strawberry.ID,
        role: t.CrisisRole,
        function: str | None = None,
        cell_ids: list[strawberry.ID] | None = None,
    ) -> t.Crisis:
        principal = await _principal(info)
        crisis_key, target = str(crisis_id), _uuid_arg(user_id, "userId")
        role_value = models.CrisisRole(role)
        policy.require_grant(principal, crisis_key, role_value)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await _open_crisis(conn, crisis_key)
            if not await tenancy.user_exists(conn, target):
                raise not_found("Personne introuvable dans l'organisation.")
            previous = await tenancy.member_role(conn, crisis_key, target)
            if previous in {r.value for r in models.LEADING_ROLES} or role_value in models.LEADING_ROLES:
                policy.require_fresh_mfa(principal)
            await tenancy.upsert_member(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_key,
                user_id=target,
                role=role_value.value,
                function=function,
            )
            known = {str(c["id"]) for c in await tenancy.cells(conn, crisis_key)}
            for cell_id in cell_ids or []:
                if str(cell_id) not in known:
                    raise invalid("cellIds : cellule inconnue pour cette crise.")
                await tenancy.set_cell_membership(
                    conn,
                    tenant_id=principal.tenant_id,
                    crisis_id=crisis_key,
                    cell_id=str(cell_id),
                    user_id=target,
                    member=True,
                )
            await _crisis_event(
                conn,
                principal,
                crisis,
                kind="membership_changed",
                summary=f"{principal.display_name} a nommé un membre : rôle {wording.role_label(role_value)}"
                + (f", fonction {function}" if function else "")
                + ".",
                data={"user_id": target, "role": role_value.value, "previous_role": previous},
            )
            return await _crisis(conn, principal, crisis)

    @strawberry.mutation
    async def remove_crisis_member(self, info: GInfo, crisis_id: strawberry.ID, user_id: strawberry.ID) -> bool:
        principal = await _principal(info)
        crisis_key, target = str(crisis_id), _uuid_arg(user_id, "userId")
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await _open_crisis(conn, crisis_key)
            previous = await tenancy.member_role(conn, crisis_key, target)
            if previous in {r.value for r in models.LEADING_ROLES}:
                policy.require_fresh_mfa(principal)
            removed = await tenancy.remove_member(conn, crisis_key, target)
            if removed:
                await _crisis_event(
                    conn,
                    principal,
                    crisis,
                    kind="membership_changed",
                    summary=f"{principal.display_name} a retiré un membre de la crise.",
                    data={"user_id": target, "role": None, "previous_role": previous},
                )
        return removed

    @strawberry.mutation
    async def set_cell_membership(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        cell_id: strawberry.ID,
        user_id: strawberry.ID,
        member: bool,
    ) -> bool:
        principal = await _principal(info)
        crisis_key = str(crisis_id)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await _open_crisis(conn, crisis_key)
            cell = await tenancy.cell(conn, _uuid_arg(cell_id, "cellId"))
            if cell is None or str(cell["crisis_id"]) != crisis_key:
                raise not_found("Cellule introuvable dans cette crise.")
            target = _uuid_arg(user_id, "userId")
            if await tenancy.member_role(conn, crisis_key, target) is None:
                raise invalid("Ajoutez d'abord la personne à la crise.")
            await tenancy.set_cell_membership(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_key,
                cell_id=str(cell["id"]),
                user_id=target,
                member=member,
            )
            await _crisis_event(
                conn,
                principal,
                crisis,
                kind="membership_changed",
                summary=f"{principal.display_name} a {'ajouté' if member else 'retiré'} un membre "
                f"{'à' if member else 'de'} la cellule « {cell['name']} ».",
                data={"user_id": target, "cell_id": str(cell["id"]), "member": member},
            )
        return True

    @strawberry.mutation
    async def revoke_session(self, info: GInfo, id: strawberry.ID) -> bool:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            owner = await conn.fetchval("SELECT user_id::text FROM sessions WHERE id = $1", _uuid_arg(id, "id"))
            if owner != principal.user_id:
                raise not_found("Session introuvable.")
            done = await revoke(conn, str(id), "revoked_by_user")
            if done:
                await security_events.record_for(
                    conn,
                    principal,
                    kind="session_revoked",
                    summary=f"{principal.display_name} a révoqué une session.",
                    data={"session_id": str(id)},
                )
        return done

    @strawberry.mutation(description="Révoque toutes vos autres sessions.")
    async def revoke_other_sessions(self, info: GInfo) -> int:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            result = await conn.execute(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked_by_user' "
                "WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                principal.user_id,
                principal.session_id,
            )
            count = int(str(result).split()[-1])
            await security_events.record_for(
                conn,
                principal,
                kind="session_revoked",
                summary=f"{principal.display_name} a révoqué {count} autre(s) session(s).",
            )
        return count

    @strawberry.mutation(description="Remplace vos codes de secours (second facteur récent exigé).")
    async def regenerate_recovery_codes(self, info: GInfo) -> list[str]:
        principal = await _principal(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            codes = await replace_recovery_codes(conn, principal.user_id, principal.tenant_id)
            await security_events.record_for(
                conn,
                principal,
                kind="factor_changed",
                summary=f"{principal.display_name} a régénéré ses codes de secours.",
            )
        return codes

    @strawberry.mutation
    async def remove_passkey(self, info: GInfo, id: str) -> bool:
        principal = await _principal(info)
        try:
            credential_id = bytes.fromhex(id)
        except ValueError as exc:
            raise invalid("id : identifiant de clé invalide.") from exc
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            factors = await tenancy.factors_of(conn, principal.user_id)
            keys = await tenancy.passkeys_of(conn, principal.user_id)
            if factors is not None and not factors["totp_enabled"] and len(keys) <= 1:
                raise ServiceError(ErrorCode.CONFLICT, "Impossible de retirer votre dernier second facteur.")
            result = await conn.execute(
                "DELETE FROM passkeys WHERE credential_id = $1 AND user_id = $2",
                credential_id,
                principal.user_id,
            )
            removed = str(result).endswith(" 1")
            if removed:
                await security_events.record_for(
                    conn,
                    principal,
                    kind="factor_changed",
                    summary=f"{principal.display_name} a retiré une clé d'accès.",
                )
        return removed

    @strawberry.mutation
    async def rename_passkey(self, info: GInfo, id: str, name: str) -> bool:
        principal = await _principal(info)
        clean = _text(name, "name", max_len=60)
        try:
            credential_id = bytes.fromhex(id)
        except ValueError as exc:
            raise invalid("id : identifiant de clé invalide.") from exc
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            result = await conn.execute(
                "UPDATE passkeys SET name = $3 WHERE credential_id = $1 AND user_id = $2",
                credential_id,
                principal.user_id,
                clean,
            )
        return str(result).endswith(" 1")

    @strawberry.mutation(description="Prépare une nouvelle application d'authentification (QR code à scanner).")
    async def begin_totp_setup(self, info: GInfo) -> t.TotpSetup:
        setup = await info.context.services.factors.begin_totp(await _principal(info))
        return t.TotpSetup(
            setup_id=strawberry.ID(setup.setup_id), secret=setup.secret, uri=setup.uri, qr_svg=setup.qr_svg
        )

    @strawberry.mutation
    async def confirm_totp_setup(self, info: GInfo, setup_id: strawberry.ID, code: str) -> bool:
        await info.context.services.factors.confirm_totp(await _principal(info), str(setup_id), code)
        return True

    @strawberry.mutation
    async def disable_totp(self, info: GInfo) -> bool:
        await info.context.services.factors.disable_totp(await _principal(info))
        return True

    @strawberry.mutation(description="Options WebAuthn pour ajouter une clé d'accès à votre compte.")
    async def begin_passkey_registration(self, info: GInfo) -> t.PasskeyRegistration:
        setup_id, options = await info.context.services.factors.begin_passkey(await _principal(info))
        return t.PasskeyRegistration(setup_id=strawberry.ID(setup_id), options=cast(JSON, options))

    @strawberry.mutation
    async def finish_passkey_registration(self, info: GInfo, setup_id: strawberry.ID, credential: JSON) -> bool:
        if not isinstance(credential, dict):
            raise invalid("credential : objet attendu.")
        await info.context.services.factors.finish_passkey(await _principal(info), str(setup_id), credential)
        return True

    @strawberry.mutation(description="Écrire une entrée dans la main courante (fait, décision, action, communication).")
    async def add_logbook_entry(
        self, info: GInfo, crisis_id: strawberry.ID, entry: lb.LogbookEntryInput
    ) -> lb.LogbookEntry:
        principal = await _principal(info)
        return await lb.add_entry(info, principal, _uuid_arg(crisis_id, "crisisId"), entry)

    @strawberry.mutation(description="Envoie un message ; le même clientId renvoyé ne crée rien de plus.")
    async def send_message(self, info: GInfo, input: ch.SendMessageInput) -> ch.SendMessageResult:
        return await ch.send(info, await _principal(info), input)

    @strawberry.mutation(description="Modifie votre message (l'ancienne version est conservée).")
    async def edit_message(self, info: GInfo, message_id: strawberry.ID, text: str) -> ch.ChatMessage:
        return await ch.change(
            info, await _principal(info), chat_ops.EDIT, lambda: EditRequest(message=str(message_id), text=text)
        )

    @strawberry.mutation(description="Retire un message : il reste une trace (qui, quand), plus le texte.")
    async def redact_message(self, info: GInfo, message_id: strawberry.ID, reason: str = "") -> ch.ChatMessage:
        return await ch.change(
            info,
            await _principal(info),
            chat_ops.REDACT,
            lambda: RedactRequest(message=str(message_id), reason=reason),
        )

    @strawberry.mutation(description="Épingle (ou détache) un message.")
    async def pin_message(self, info: GInfo, message_id: strawberry.ID, pinned: bool = True) -> ch.ChatMessage:
        return await ch.change(
            info, await _principal(info), chat_ops.PIN, lambda: PinRequest(message=str(message_id), pinned=pinned)
        )

    @strawberry.mutation(description="Inscrit un message à la main courante : décision, fait, action ou communication.")
    async def mark_message(self, info: GInfo, message_id: strawberry.ID, kind: LogbookKind) -> ch.ChatMessage:
        return await ch.change(
            info, await _principal(info), chat_ops.MARK, lambda: MarkRequest(message=str(message_id), kind=kind)
        )

    @strawberry.mutation(description="Marque un canal comme lu jusqu'au message `seq`.")
    async def mark_channel_read(self, info: GInfo, channel_id: strawberry.ID, seq: int) -> ch.ChatChannel:
        return await ch.mark_read(info, await _principal(info), str(channel_id), seq)

    @strawberry.mutation(description="Ouvre un canal privé dans une cellule, pour certains de ses membres.")
    async def create_private_channel(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        cell_id: strawberry.ID,
        name: str,
        member_ids: list[strawberry.ID],
    ) -> ch.ChatChannel:
        crisis = _uuid_arg(crisis_id, "crisisId")
        cell = _uuid_arg(cell_id, "cellId")
        members = [_uuid_arg(m, "memberIds") for m in member_ids]
        return await ch.create_private(info, await _principal(info), crisis, cell, name, members)

    @strawberry.mutation(description="Ouvre (ou retrouve) une conversation directe avec un membre de la crise.")
    async def open_direct_channel(
        self, info: GInfo, crisis_id: strawberry.ID, user_id: strawberry.ID
    ) -> ch.ChatChannel:
        principal = await _principal(info)
        return await ch.open_direct(info, principal, _uuid_arg(crisis_id, "crisisId"), _uuid_arg(user_id, "userId"))

    @strawberry.mutation(description="Ajoute ou retire des membres d'un canal privé.")
    async def set_channel_members(
        self,
        info: GInfo,
        channel_id: strawberry.ID,
        add: list[strawberry.ID] | None = None,
        remove: list[strawberry.ID] | None = None,
    ) -> ch.ChatChannel:
        return await ch.set_members(info, await _principal(info), str(channel_id), add or [], remove or [])

    @strawberry.mutation(description="Exporter la main courante signée (PDF, CSV, paquet de preuve JSON).")
    async def export_logbook(self, info: GInfo, crisis_id: strawberry.ID, format: ExportFormat) -> lb.LogbookExport:
        principal = await _principal(info)
        return await lb.export(info, principal, _uuid_arg(crisis_id, "crisisId"), format)


async def _open_crisis(conn: Any, crisis_id: str) -> Any:
    row = await tenancy.crisis(conn, crisis_id)
    if row is None:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    if row["status"] == "closed":
        raise ServiceError(ErrorCode.CONFLICT, "La crise est close.")
    return row


async def _change_crisis(info: GInfo, principal: Principal, crisis_id: str, *, status: Any, severity: Any) -> t.Crisis:
    async with info.context.services.db.tenant(principal.tenant_id) as conn:
        before = await _open_crisis(conn, crisis_id)
        row = await tenancy.update_crisis(
            conn,
            crisis_id,
            status=status.value if status else None,
            severity=severity.value if severity else None,
        )
        assert row is not None
        changes = []
        if status is not None and before["status"] != row["status"]:
            changes.append(f"statut {wording.status_label(before['status'])} → {wording.status_label(row['status'])}")
        if severity is not None and before["severity"] != row["severity"]:
            changes.append(
                f"gravité {wording.severity_label(before['severity'])} → {wording.severity_label(row['severity'])}"
            )
        if changes:
            await _crisis_event(
                conn,
                principal,
                row,
                kind="crisis_closed" if row["status"] == "closed" else "crisis_updated",
                logbook_kind=LogbookKind.DECISION,
                summary=f"{principal.display_name} : " + ", ".join(changes) + ".",
                data={"status": row["status"], "severity": row["severity"]},
            )
        return await _crisis(conn, principal, row)


# -- subscriptions ---------------------------------------------------------------------------------


def _event(event: CloudEvent) -> t.CrisisEvent:
    return t.CrisisEvent(
        id=strawberry.ID(event.id),
        type=event.short_type,
        service=event.service,
        time=event.time,
        actor_id=event.actorid,
        mode=models.CrisisMode(event.mode.value),
        logbook_kind=event.logbook.kind.value if event.logbook else None,
        summary=event.logbook.summary if event.logbook else None,
        data=cast(JSON, event.data),
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Les événements d'une crise dont vous êtes membre, en direct.")
    async def crisis_events(self, info: GInfo, crisis_id: strawberry.ID) -> AsyncGenerator[t.CrisisEvent, None]:
        async for principal, crisis, event in crisis_stream(info, "crisisEvents", crisis_id):
            if _visible(principal, crisis, event):
                yield _event(event)

    @strawberry.subscription(description="Les nouvelles entrées de la main courante, en direct.")
    async def logbook_entries(self, info: GInfo, crisis_id: strawberry.ID) -> AsyncGenerator[lb.LogbookNotice, None]:
        mode: Mode | None = None
        async for principal, crisis, event in crisis_stream(info, "logbookEntries", crisis_id):
            if mode is None:
                _, mode, _ = await lb.crisis_log(info, principal, crisis)
            if lb.is_notice(event, mode):
                for notice in lb.notices(principal, crisis, event):
                    yield notice

    @strawberry.subscription(
        description="La messagerie de la crise en direct ; `resume` rattrape d'abord ce qui a été manqué."
    )
    async def chat_updates(
        self, info: GInfo, crisis_id: strawberry.ID, resume: list[ch.ChannelCursor] | None = None
    ) -> AsyncGenerator[ch.ChatUpdate, None]:
        delivered: dict[str, int] = {}
        backlog = ch.resume_backlog(info, resume or [], delivered)
        async for principal, crisis, item in crisis_stream(info, "chatUpdates", crisis_id, backlog):
            if isinstance(item, ch.ChatUpdate):
                yield item
                continue
            update = await ch.live_update(info, principal, crisis, item, delivered)
            if update is not None:
                yield update


def _visible(principal: Principal, crisis: str, event: CloudEvent) -> bool:
    """Need-to-know on the live feed, as in the main courante (`policy.can_see_entry`); the chat has
    its own feed (`chatUpdates`), decided per channel."""
    if event.service == "chat":
        return False
    if event.service == "logbook":
        return bool(lb.visible_notice_entries(principal, crisis, event))
    return policy.can_see_entry(principal, crisis, event.logbook.cell if event.logbook else None)


def root_field_keys(schema: strawberry.Schema) -> list[str]:
    """`Type.field` of every root field: what the policy must cover."""
    graphql_schema = schema._schema  # the graphql-core schema strawberry built
    roots = (graphql_schema.query_type, graphql_schema.mutation_type, graphql_schema.subscription_type)
    return [f"{root.name}.{name}" for root in roots if root is not None for name in root.fields]


def guard_root_fields(*roots: type) -> None:
    """Attach `PolicyGuard` to every query and mutation field (subscriptions decide in their body)."""
    for root in roots:
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if not any(isinstance(e, PolicyGuard) for e in field.extensions):
                field.extensions.append(PolicyGuard())


class GatewaySchema(strawberry.Schema):
    """Refusals and bad input are answers, not incidents: only unexpected errors reach the error log."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        unexpected = [
            e
            for e in errors
            if e.original_error is not None and not isinstance(e.original_error, (ServiceError, GraphQLError))
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription sent as a plain HTTP request gets `invalid`, not an internal error."""

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        context = self.execution_context.context
        request = getattr(context, "request", None)
        over_http = request is not None and not isinstance(request, WebSocket)
        if (
            document is not None
            and over_http
            and any(getattr(d, "operation", None) == OperationType.SUBSCRIPTION for d in document.definitions)
        ):
            raise ServiceError(ErrorCode.INVALID, "Les abonnements passent par WebSocket (graphql-transport-ws).")
        yield


def build_schema(extensions: list[Any]) -> strawberry.Schema:
    guard_root_fields(Query, Mutation)
    return GatewaySchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=[*extensions, SubscriptionsOverWebSocket]
    )
