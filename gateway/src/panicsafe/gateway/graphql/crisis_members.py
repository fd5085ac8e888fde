"""Who takes part in a crisis, through GraphQL: its cells, its members and their cells.

Who may change a role is the policy's (`policy.require_grant`, `policy.require_role_change`: the
director role only by a director or a tenant administrator, never one's own role); that a crisis keeps
a director, the database's (`keep_a_director`).

Every change is an event of the crisis (`crises.record_crisis_event`): the main courante keeps it and
the live feed re-decides its subscribers' access on `membership_changed`.
"""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.db.database import Connection, savepoint
from panicsafe.core.errors import ServiceError, conflict, invalid, not_found
from panicsafe.gateway.domain import models, policy, wording
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.common import GInfo, principal_of, text_arg, uuid_arg
from panicsafe.gateway.graphql.crises import crisis_view, open_crisis, record_crisis_event
from panicsafe.gateway.store import tenancy as store


def role_of(value: str | None) -> models.CrisisRole | None:
    return None if value is None else models.CrisisRole(value)


async def keep_a_director(conn: Connection, crisis_id: str, leaving: str) -> None:
    """`conflict` if `leaving` is the crisis' last director (the directors stay locked until the change
    commits, so two directors demoted at once cannot each leave the other as the last one)."""
    if not set(await store.directors(conn, crisis_id)) - {leaving}:
        raise conflict(policy.LAST_DIRECTOR)


async def join_cells(
    conn: Connection, tenant_id: str, crisis_id: str, user_id: str, cell_ids: Sequence[strawberry.ID]
) -> None:
    """Put a member of the crisis into these cells of it (`invalid` for a cell of another crisis)."""
    known = {str(c["id"]) for c in await store.cells(conn, crisis_id)}
    for cell_id in cell_ids:
        if str(cell_id) not in known:
            raise invalid("cellIds : cellule inconnue pour cette crise.")
        await store.set_cell_membership(
            conn, tenant_id=tenant_id, crisis_id=crisis_id, cell_id=str(cell_id), user_id=user_id, member=True
        )


@strawberry.type
class CrisisMembersMutation:
    @strawberry.mutation
    async def create_cell(
        self, info: GInfo, crisis_id: strawberry.ID, name: str, kind: t.CellKind = models.CellKind.CUSTOM
    ) -> t.Cell:
        principal = await principal_of(info)
        clean = text_arg(name, "name", max_len=120)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await open_crisis(conn, str(crisis_id))
            try:
                async with savepoint(conn):  # a duplicate name must not abort the transaction
                    cell_id = await store.create_cell(
                        conn,
                        tenant_id=principal.tenant_id,
                        crisis_id=str(crisis_id),
                        kind=str(kind.value),
                        name=clean,
                    )
            except store.NameTaken as exc:
                raise ServiceError(ErrorCode.CONFLICT, "Une cellule porte déjà ce nom.") from exc
            await record_crisis_event(
                conn,
                principal,
                crisis,
                kind=gw.CELL_CREATED,
                summary=f"Cellule « {clean} » créée par {principal.display_name}.",
                cell=cell_id,
                data=gw.CellsCreated(cells=[gw.CellData(id=cell_id, name=clean, kind=str(kind.value))]),
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
        principal = await principal_of(info)
        crisis_key, target = str(crisis_id), uuid_arg(user_id, "userId")
        role_value = models.CrisisRole(role)
        policy.require_grant(principal, crisis_key, role_value)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await open_crisis(conn, crisis_key)
            if not await store.user_exists(conn, target):
                raise not_found("Personne introuvable dans l'organisation.")
            previous = await store.member_role(conn, crisis_key, target)
            policy.require_role_change(principal, crisis_key, target, role_of(previous), role_value)
            if role_of(previous) == models.CrisisRole.DIRECTOR and role_value != models.CrisisRole.DIRECTOR:
                await keep_a_director(conn, crisis_key, target)
            await store.upsert_member(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_key,
                user_id=target,
                role=role_value.value,
                function=function,
            )
            await join_cells(conn, principal.tenant_id, crisis_key, target, cell_ids or [])
            await record_crisis_event(
                conn,
                principal,
                crisis,
                kind=gw.MEMBERSHIP_CHANGED,
                summary=f"{principal.display_name} a nommé un membre : rôle {wording.role_label(role_value)}"
                + (f", fonction {function}" if function else "")
                + ".",
                data=gw.MembershipChanged(user_id=target, role=role_value.value, previous_role=previous),
            )
            return await crisis_view(conn, principal, crisis)

    @strawberry.mutation
    async def remove_crisis_member(self, info: GInfo, crisis_id: strawberry.ID, user_id: strawberry.ID) -> bool:
        principal = await principal_of(info)
        crisis_key, target = str(crisis_id), uuid_arg(user_id, "userId")
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await open_crisis(conn, crisis_key)
            previous = await store.member_role(conn, crisis_key, target)
            policy.require_role_change(principal, crisis_key, target, role_of(previous), None)
            if role_of(previous) == models.CrisisRole.DIRECTOR:
                await keep_a_director(conn, crisis_key, target)
            removed = await store.remove_member(conn, crisis_key, target)
            if removed:
                await record_crisis_event(
                    conn,
                    principal,
                    crisis,
                    kind=gw.MEMBERSHIP_CHANGED,
                    summary=f"{principal.display_name} a retiré un membre de la crise.",
                    data=gw.MembershipChanged(user_id=target, role=None, previous_role=previous),
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
        principal = await principal_of(info)
        crisis_key = str(crisis_id)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            crisis = await open_crisis(conn, crisis_key)
            cell = await store.cell(conn, uuid_arg(cell_id, "cellId"))
            if cell is None or str(cell["crisis_id"]) != crisis_key:
                raise not_found("Cellule introuvable dans cette crise.")
            target = uuid_arg(user_id, "userId")
            if await store.member_role(conn, crisis_key, target) is None:
                raise invalid("Ajoutez d'abord la personne à la crise.")
            await store.set_cell_membership(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_key,
                cell_id=str(cell["id"]),
                user_id=target,
                member=member,
            )
            await record_crisis_event(
                conn,
                principal,
                crisis,
                kind=gw.MEMBERSHIP_CHANGED,
                summary=f"{principal.display_name} a {'ajouté' if member else 'retiré'} un membre "
                f"{'à' if member else 'de'} la cellule « {cell['name']} ».",
                data=gw.MembershipChanged(user_id=target, cell_id=str(cell["id"]), member=member),
            )
        return True
