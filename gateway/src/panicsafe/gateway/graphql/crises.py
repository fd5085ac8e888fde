"""Crises through GraphQL: declare, read, change and close them, and follow their events live.

Cells and members are in `crisis_members`; both record each change as an event of the crisis
(`record_crisis_event`), which the main courante and the live feed carry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from panicsafe.contracts import chat, logbook
from panicsafe.contracts import gateway as gw
from panicsafe.contracts.declarations import EventType, Payload
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent, LogbookKind, Mode
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError, forbidden, invalid
from panicsafe.gateway import security_events
from panicsafe.gateway.domain import models, policy, wording
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql import logbook as lb
from panicsafe.gateway.graphql import types as t
from panicsafe.gateway.graphql.common import GInfo, principal_of, text_arg, uuid_arg
from panicsafe.gateway.graphql.streams import crisis_stream
from panicsafe.gateway.graphql.tenancy import establishment_view
from panicsafe.gateway.store import tenancy as store

EARLIEST_T0 = datetime(2000, 1, 1, tzinfo=UTC)


def crisis_mode(row: Any) -> Mode:
    return Mode.EXERCISE if row["mode"] == "exercise" else Mode.REAL


async def record_crisis_event(
    conn: Connection,
    principal: Principal,
    crisis_row: Any,
    *,
    kind: EventType[Payload],
    summary: str,
    data: Payload | None = None,
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
        mode=crisis_mode(crisis_row),
        summary=summary,
        data=data,
        logbook_kind=logbook_kind,
        author=principal.display_name,
        cell=cell,
    )


async def open_crisis(conn: Connection, crisis_id: str) -> Any:
    """The crisis' row; `forbidden` if the transaction does not see it, `conflict` if it is closed."""
    row = await store.crisis(conn, crisis_id)
    if row is None:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    if row["status"] == "closed":
        raise ServiceError(ErrorCode.CONFLICT, "La crise est close.")
    return row


def member_view(row: Any) -> t.Member:
    return t.Member(
        user_id=strawberry.ID(str(row["user_id"])),
        display_name=row["display_name"],
        role=models.CrisisRole(row["role"]),
        function=row["function"],
        cell_ids=[strawberry.ID(c) for c in row["cells"]],
    )


async def crisis_view(conn: Connection | None, principal: Principal, row: Any, details: Any = None) -> t.Crisis:
    """The crisis as this principal may see it (need-to-know on cells and members).

    `details`: the row of `store.crisis_details` (or `crisis_overview`), loaded here if not given."""
    crisis_id = str(row["id"])
    access = policy.require_member(principal, crisis_id)
    if details is None:
        assert conn is not None, "crisis details to load without a connection"
        details = await store.crisis_details(conn, crisis_id)
    cells = [c for c in details["cells"] if policy.can_see_cell(principal, crisis_id, str(c["id"]))]
    members = [member_view(m) for m in details["members"]] if policy.can_see_members(principal, crisis_id) else []
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
        establishments=[establishment_view(e) for e in details["establishments"]],
        cells=[t.Cell(id=strawberry.ID(str(c["id"])), kind=models.CellKind(c["kind"]), name=c["name"]) for c in cells],
        members=members,
    )


def check_t0(t0: datetime, now: datetime) -> None:
    """T0 (when the crisis became known) is an aware time, not in the future, not absurdly old."""
    if t0.tzinfo is None:
        raise invalid("t0 : indiquez le fuseau horaire.")
    if t0 > now + timedelta(minutes=5):
        raise invalid("t0 : la prise de connaissance ne peut pas être dans le futur.")
    if t0 < EARLIEST_T0:
        raise invalid("t0 : date de prise de connaissance invraisemblable.")


async def known_establishments(conn: Connection, ids: Sequence[str]) -> list[str]:
    """The ids, canonical; `invalid` if one is not an establishment of the tenant."""
    establishment_ids = [uuid_arg(e, "establishmentIds") for e in ids]
    known = {str(r["id"]) for r in await store.establishments(conn)}
    if not set(establishment_ids) <= known:
        raise invalid("establishmentIds : établissement inconnu.")
    return establishment_ids


async def open_default_cells(
    conn: Connection, tenant_id: str, crisis_id: str, kinds: list[models.CellKind] | None
) -> list[dict[str, str]]:
    """The default cells of a new crisis (only those of `kinds` if given), as the declaration records them."""
    cells = []
    for kind, name in models.DEFAULT_CELLS:
        if kinds is None or kind in kinds:
            cell_id = await store.create_cell(
                conn, tenant_id=tenant_id, crisis_id=crisis_id, kind=kind.value, name=name
            )
            cells.append({"id": cell_id, "name": name, "kind": kind.value})
    return cells


def crisis_changes(before: Any, after: Any, *, status: bool, severity: bool) -> list[str]:
    """What changed, in the main courante's words (`statut active → reprise`)."""
    changes = []
    if status and before["status"] != after["status"]:
        changes.append(f"statut {wording.status_label(before['status'])} → {wording.status_label(after['status'])}")
    if severity and before["severity"] != after["severity"]:
        changes.append(
            f"gravité {wording.severity_label(before['severity'])} → {wording.severity_label(after['severity'])}"
        )
    return changes


async def change_crisis(
    info: GInfo,
    principal: Principal,
    crisis_id: str,
    *,
    status: models.CrisisStatus | None,
    severity: models.Severity | None,
) -> t.Crisis:
    async with info.context.services.db.tenant(principal.tenant_id) as conn:
        before = await open_crisis(conn, crisis_id)
        row = await store.update_crisis(
            conn,
            crisis_id,
            status=status.value if status else None,
            severity=severity.value if severity else None,
        )
        assert row is not None
        changes = crisis_changes(before, row, status=status is not None, severity=severity is not None)
        if changes:
            await record_crisis_event(
                conn,
                principal,
                row,
                kind=gw.CRISIS_CLOSED if row["status"] == "closed" else gw.CRISIS_UPDATED,
                logbook_kind=LogbookKind.DECISION,
                summary=f"{principal.display_name} : " + ", ".join(changes) + ".",
                data=gw.CrisisChanged(status=row["status"], severity=row["severity"]),
            )
        return await crisis_view(conn, principal, row)


@strawberry.type
class CrisesQuery:
    @strawberry.field(description="Les crises dont vous êtes membre.")
    async def crises(self, info: GInfo) -> list[t.Crisis]:
        principal = await principal_of(info)
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            return [await crisis_view(conn, principal, r) for r in await store.crises(conn, list(principal.crises))]

    @strawberry.field
    async def crisis(self, info: GInfo, id: strawberry.ID) -> t.Crisis:
        principal = await principal_of(info)
        row = await store.crisis_overview(info.context.services.db, principal.tenant_id, uuid_arg(id, "id"))
        if row is None:
            raise forbidden("Vous n'êtes pas membre de cette crise.")
        return await crisis_view(None, principal, row, details=row)  # nothing left to read: no connection


@strawberry.type
class CrisesMutation:
    @strawberry.mutation(description="Déclare une crise à T0 (prise de connaissance) ; vous en êtes directeur.")
    async def declare_crisis(self, info: GInfo, input: t.DeclareCrisisInput) -> t.Crisis:
        principal = await principal_of(info)
        title = text_arg(input.title, "title", max_len=200)
        check_t0(input.t0, datetime.now(UTC))
        kinds = [models.CellKind(k) for k in input.cells] if input.cells is not None else None
        async with info.context.services.db.tenant(principal.tenant_id) as conn:
            establishment_ids = await known_establishments(conn, input.establishment_ids)
            crisis_id = await store.declare_crisis(
                conn,
                tenant_id=principal.tenant_id,
                title=title,
                mode=str(input.mode.value),
                severity=str(input.severity.value),
                t0=input.t0,
                declared_by=principal.user_id,
                establishment_ids=establishment_ids,
            )
            cells = await open_default_cells(conn, principal.tenant_id, crisis_id, kinds)
            await store.upsert_member(
                conn,
                tenant_id=principal.tenant_id,
                crisis_id=crisis_id,
                user_id=principal.user_id,
                role=models.CrisisRole.DIRECTOR.value,
                function=None,
            )
            row = await store.crisis(conn, crisis_id)
            assert row is not None
            await record_crisis_event(
                conn,
                principal,
                row,
                kind=gw.CRISIS_DECLARED,
                logbook_kind=LogbookKind.DECISION,
                summary=wording.crisis_declared(
                    director=principal.display_name,
                    title=title,
                    severity=input.severity.value,
                    t0=input.t0,
                    exercise=crisis_mode(row) == Mode.EXERCISE,
                ),
                data=gw.CrisisDeclared(
                    title=title,
                    severity=input.severity.value,
                    t0=input.t0.isoformat(),
                    cells=[gw.CellData.model_validate(c) for c in cells],
                ),
            )
            director = policy.CrisisAccess(crisis_id, models.CrisisRole.DIRECTOR)
            extended = dataclasses.replace(principal, crises={**principal.crises, crisis_id: director})
            return await crisis_view(conn, extended, row)

    @strawberry.mutation
    async def update_crisis(
        self,
        info: GInfo,
        id: strawberry.ID,
        status: t.CrisisStatus | None = None,
        severity: t.Severity | None = None,
    ) -> t.Crisis:
        principal = await principal_of(info)
        if status is not None and models.CrisisStatus(status) == models.CrisisStatus.CLOSED:
            policy.require_director(principal, str(id))
        return await change_crisis(info, principal, str(id), status=status, severity=severity)

    @strawberry.mutation(description="Clôt la crise (directeur).")
    async def close_crisis(self, info: GInfo, id: strawberry.ID) -> t.Crisis:
        principal = await principal_of(info)
        return await change_crisis(info, principal, str(id), status=models.CrisisStatus.CLOSED, severity=None)


def crisis_event_view(event: CloudEvent, data: dict[str, Any] | None = None) -> t.CrisisEvent:
    """The event as the feed shows it; `data` in place of the event's own when only part may be shown."""
    return t.CrisisEvent(
        id=strawberry.ID(event.id),
        type=event.short_type,
        service=event.service,
        time=event.time,
        actor_id=event.actorid,
        mode=models.CrisisMode(event.mode.value),
        logbook_kind=event.logbook.kind.value if event.logbook else None,
        summary=event.logbook.summary if event.logbook else None,
        data=cast(JSON, event.data if data is None else data),
    )


def feed_view(principal: Principal, crisis: str, event: CloudEvent) -> t.CrisisEvent | None:
    """The event as this principal may see it on the live feed, None if not at all: need-to-know as in
    the main courante (`policy.can_see_entry`). A logbook notice carries entries of several cells: it
    shows only the entries the principal may see (as `logbookEntries` does), and nothing if none. The
    chat has its own feed (`chatUpdates`), decided per channel."""
    if event.service == chat.SERVICE:
        return None
    if event.service == logbook.SERVICE:
        entries = lb.visible_notice_entries(principal, crisis, event)
        if not entries:
            return None
        return crisis_event_view(event, {"mode": event.data.get("mode"), "entries": entries})
    if not policy.can_see_entry(principal, crisis, event.logbook.cell if event.logbook else None):
        return None
    return crisis_event_view(event)


@strawberry.type
class CrisesSubscription:
    @strawberry.subscription(description="Les événements d'une crise dont vous êtes membre, en direct.")
    async def crisis_events(self, info: GInfo, crisis_id: strawberry.ID) -> AsyncGenerator[t.CrisisEvent, None]:
        async for principal, crisis, event in crisis_stream(info, "crisisEvents", crisis_id):
            view = feed_view(principal, crisis, event)
            if view is not None:
                yield view
