"""RPC models of the gateway (`rpc.gateway.<operation>`) and its events (identity, tenancy, crises)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from panicsafe.contracts.declarations import EventType, Operation, Payload


class BootstrapDemoRequest(BaseModel):
    """Development only: create the demo tenant and its administrator's invitation, once.

    `tenant_id` names the demo tenant a previous run created: it is kept, and while its administrator
    has not enrolled, a fresh invitation replaces the previous one (whose token nobody kept)."""

    tenant_id: str | None = None


class BootstrapDemoReply(BaseModel):
    tenant_id: str
    tenant_name: str
    admin_login: str
    enrolment_link: str | None = None  # None once the administrator has enrolled
    created: bool = True


# -- events of the gateway (`evt.<t>.<c or _>.gateway.<name>`): identity, tenancy, crises ---------------


class NoDetails(BaseModel):
    """An event whose logbook line says it all: nothing else travels."""

    model_config = ConfigDict(extra="forbid")


class CellData(BaseModel):
    id: str
    name: str
    kind: str


class CrisisDeclared(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    severity: str
    t0: str = Field(description="time zero, ISO 8601 with its offset")
    cells: list[CellData] = Field(default_factory=list)


class CellsCreated(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cells: list[CellData]


class CrisisChanged(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    severity: str


class MembershipChanged(BaseModel):
    """A crisis role given, changed or taken (`role` None), or a cell joined or left (`cell_id`, `member`)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str
    role: str | None = None
    previous_role: str | None = None
    cell_id: str | None = None
    member: bool | None = None


class SessionRevoked(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = None
    reason: str | None = None


def _event(name: str, payload: type[Payload], description: str) -> EventType[Payload]:
    return EventType(SERVICE, name, payload, description)


SERVICE = "gateway"
TENANT_CREATED = _event("tenant_created", NoDetails, "A tenant (a GHT or an organisation) was created")
TENANT_UPDATED = _event("tenant_updated", NoDetails, "A tenant's settings changed")
INVITATION_CREATED = _event("invitation_created", NoDetails, "Someone was invited (link or QR code)")
INVITATION_ACCEPTED = _event("invitation_accepted", NoDetails, "An invitation was accepted")
CRISIS_DECLARED = _event("crisis_declared", CrisisDeclared, "A crisis was declared, with its time zero")
CRISIS_UPDATED = _event("crisis_updated", CrisisChanged, "A crisis' status or severity changed")
CRISIS_CLOSED = _event("crisis_closed", CrisisChanged, "A crisis was closed")
CELL_CREATED = _event("cell_created", CellsCreated, "A cell was created in a crisis")
MEMBERSHIP_CHANGED = _event("membership_changed", MembershipChanged, "A crisis role or cell membership changed")
FACTOR_ENROLLED = _event("factor_enrolled", NoDetails, "A person enrolled their first factors")
FACTOR_CHANGED = _event("factor_changed", NoDetails, "A second factor or the recovery codes changed")
LOGIN_SUCCEEDED = _event("login_succeeded", NoDetails, "A person signed in")
LOGIN_FAILED = _event("login_failed", NoDetails, "A sign-in attempt failed")
ACCOUNT_LOCKED = _event("account_locked", NoDetails, "An account was locked after repeated failures")
SESSION_REVOKED = _event("session_revoked", SessionRevoked, "A session was revoked")
LOGOUT = _event("logout", NoDetails, "A person signed out")
EVENTS: tuple[EventType[Any], ...] = (
    TENANT_CREATED,
    TENANT_UPDATED,
    INVITATION_CREATED,
    INVITATION_ACCEPTED,
    CRISIS_DECLARED,
    CRISIS_UPDATED,
    CRISIS_CLOSED,
    CELL_CREATED,
    MEMBERSHIP_CHANGED,
    FACTOR_ENROLLED,
    FACTOR_CHANGED,
    LOGIN_SUCCEEDED,
    LOGIN_FAILED,
    ACCOUNT_LOCKED,
    SESSION_REVOKED,
    LOGOUT,
)

BOOTSTRAP_DEMO = Operation(
    SERVICE,
    "bootstrap_demo",
    BootstrapDemoRequest,
    BootstrapDemoReply,
    "Development only: the demo tenant and its administrator's invitation",
    public=True,
)
OPERATIONS: tuple[Operation[Any, Any], ...] = (BOOTSTRAP_DEMO,)
