"""Security and administration events, written to the outbox with a `system` logbook part.

Subjects: `evt.<tenant>.<crisis or _>.gateway.<type>`; the summary is the French sentence the main
courante shows. No secret, password or code ever goes into an event.
"""

from __future__ import annotations

from typing import Any

from panicsafe.contracts.events import NO_CRISIS, CloudEvent, LogbookKind, LogbookPart, Mode, event_type
from panicsafe.core.bus.outbox import append_event
from panicsafe.core.db.database import Connection
from panicsafe.gateway.domain.policy import Principal


async def record(
    conn: Connection,
    *,
    kind: str,
    tenant_id: str,
    summary: str,
    actor_id: str | None = None,
    crisis_id: str | None = None,
    mode: Mode = Mode.REAL,
    data: dict[str, Any] | None = None,
    logbook_kind: LogbookKind = LogbookKind.SYSTEM,
    author: str | None = None,
    cell: str | None = None,
) -> CloudEvent:
    event = CloudEvent(
        source="panicsafe/gateway",
        type=event_type("gateway", kind),
        tenantid=tenant_id,
        crisisid=crisis_id or NO_CRISIS,
        actorid=actor_id,
        mode=mode,
        data=data or {},
        logbook=LogbookPart(kind=logbook_kind, summary=summary[:500], author=author, cell=cell),
    )
    await append_event(conn, event)
    return event


async def record_for(
    conn: Connection, principal: Principal, *, kind: str, summary: str, data: dict[str, Any] | None = None
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
