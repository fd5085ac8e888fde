"""Helpers of the logbook tests (imported by name: `pythonpath` lists this folder)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.core.db.database import Database
from panicsafe.core.db.provision import ServiceRoles
from panicsafe.logbook.core import LogbookCore


@dataclass
class LogbookUnderTest:
    core: LogbookCore
    db: Database
    roles: ServiceRoles
    owner_dsn: str
    admin_dsn: str


def member(tenant: str, crisis: str, role: str = "member", cells: tuple[str, ...] = (), name: str = "Agent") -> Actor:
    return Actor(
        subject=str(uuid.uuid4()),
        tenant=tenant,
        name=name,
        tenant_roles=["member"],
        memberships=[CrisisMembership(crisis=crisis, roles=[role], cells=list(cells))],
    )
