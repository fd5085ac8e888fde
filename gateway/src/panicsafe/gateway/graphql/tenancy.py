"""The organisation itself through GraphQL: the tenant, its establishments and its directory."""

from __future__ import annotations

from typing import Any

import strawberry

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError, not_found
from panicsafe.gateway import security_events
from panicsafe.gateway.domain import models
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.common import GInfo, principal_of, text_arg, uuid_arg
from panicsafe.gateway.store import tenancy as store


def tenant_view(row: Any) -> t.Tenant:
    return t.Tenant(
        id=strawberry.ID(str(row["id"])),
        name=row["name"],
        kind=models.TenantKind(row["kind"]),
        region=row["region"],
        share_with_region=row["share_with_region"],
    )


def establishment_view(row: Any) -> t.Establishment:
    return t.Establishment(
        id=strawberry.ID(str(row["id"])), name=row["name"], type=models.EstablishmentType(row["type"])
    )


def directory_user_view(row: Any) -> t.DirectoryUser:
    return t.DirectoryUser(
        id=strawberry.ID(str(row["id"])),
        login=row["login"],
        display_name=row["display_name"],
        tenant_role=models.TenantRole(row["tenant_role"]),
        status=row["status"],
    )


def tenant_updated_summary(author: str, share_with_region: bool | None) -> str:
    """The security log's line for a change of the organisation's settings."""
    sharing = "" if share_with_region is None else f" (partage régional : {'oui' if share_with_region else 'non'})"
    return f"{author} a modifié l'organisation{sharing}."


@strawberry.type
class TenancyQuery:
    @strawberry.field
    async def tenant(self, info: GInfo) -> t.Tenant:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            row = await store.tenant(conn, principal.tenant_id)
        if row is None:
            raise not_found("Organisation introuvable.")
        return tenant_view(row)

    @strawberry.field
    async def establishments(self, info: GInfo) -> list[t.Establishment]:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            return [establishment_view(r) for r in await store.establishments(conn)]

    @strawberry.field(description="L'annuaire de l'organisation (administrateurs et responsables de crise).")
    async def directory(self, info: GInfo) -> list[t.DirectoryUser]:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            rows = await store.directory(conn)
        return [directory_user_view(r) for r in rows]


@strawberry.type
class TenancyMutation:
    @strawberry.mutation
    async def update_tenant(
        self, info: GInfo, name: str | None = None, share_with_region: bool | None = None
    ) -> t.Tenant:
        principal = await principal_of(info)
        clean = text_arg(name, "name", max_len=200) if name is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            await store.update_tenant(conn, principal.tenant_id, name=clean, share_with_region=share_with_region)
            row = await store.tenant(conn, principal.tenant_id)
            await security_events.record_for(
                conn,
                principal,
                kind=gw.TENANT_UPDATED,
                summary=tenant_updated_summary(principal.display_name, share_with_region),
            )
        assert row is not None
        return tenant_view(row)

    @strawberry.mutation
    async def create_establishment(self, info: GInfo, name: str, type: t.EstablishmentType) -> t.Establishment:
        principal = await principal_of(info)
        clean = text_arg(name, "name", max_len=200)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            try:
                establishment_id = await store.create_establishment(
                    conn, tenant_id=principal.tenant_id, name=clean, type_=str(type.value)
                )
            except store.NameTaken as exc:
                raise ServiceError(ErrorCode.CONFLICT, "Un établissement porte déjà ce nom.") from exc
        return t.Establishment(id=strawberry.ID(establishment_id), name=clean, type=type)

    @strawberry.mutation
    async def update_establishment(
        self, info: GInfo, id: strawberry.ID, name: str | None = None, type: t.EstablishmentType | None = None
    ) -> t.Establishment:
        principal = await principal_of(info)
        clean = text_arg(name, "name", max_len=200) if name is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            if not await store.update_establishment(
                conn, uuid_arg(id, "id"), name=clean, type_=str(type.value) if type else None
            ):
                raise not_found("Établissement introuvable.")
            row = next(r for r in await store.establishments(conn) if str(r["id"]) == str(id))
        return establishment_view(row)
