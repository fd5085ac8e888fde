"""Security and administration events, written to the outbox with a `system` logbook part.

Subjects: `evt.<tenant>.<crisis or _>.gateway.<type>`; the summary is the French sentence the main
courante shows. No secret, password or code ever goes into an event.
"""

from __future__ import annotations

from panicsafe.contracts.declarations import EventType, Payload
from panicsafe.contracts.events import CloudEvent, LogbookKind, LogbookPart, Mode
from panicsafe.core.bus.outbox import append_event
from panicsafe.core.db.database import Connection
from panicsafe.gateway.domain.policy import Principal


async def record(
    conn: Connection,
    *,
    kind: EventType[Payload],
    tenant_id: str,
    summary: str,
    actor_id: str | None = None,
    crisis_id: str | None = None,
    mode: Mode = Mode.REAL,
    data: Payload | None = None,
    logbook_kind: LogbookKind = LogbookKind.SYSTEM,
    author: str | None = None,
    cell: str | None = None,
) -> CloudEvent:
    """Queue one of the gateway's declared events (`data` left out: the payload's defaults, `NoDetails`)."""
    event = kind.event(
        kind.payload() if data is None else data,
        tenant=tenant_id,
        crisis=crisis_id,
        actor=actor_id,
        mode=mode,
        logbook=LogbookPart(kind=logbook_kind, summary=summary[:500], author=author, cell=cell),
    )
    await append_event(conn, event)
    return event


async def record_for(
    conn: Connection, principal: Principal, *, kind: EventType[Payload], summary: str, data: Payload | None = None
) -> CloudEvent:
    """An event of the principal's own account (tenant-level, no crisis): factors, sessions, tenant settings."""
    return await record(
        conn,
        kind=kind,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        summary=summary,
        data=data,
        author=principal.display_name,
    )
