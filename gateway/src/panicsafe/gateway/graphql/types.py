"""GraphQL types of the gateway (French descriptions are for the people who read the schema)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from panicsafe.gateway.domain import models

# The domain enums are the GraphQL enums (strawberry registers the classes themselves).
for _enum in (
    models.TenantRole,
    models.CrisisRole,
    models.CellKind,
    models.CrisisStatus,
    models.Severity,
    models.CrisisMode,
    models.EstablishmentType,
    models.TenantKind,
):
    strawberry.enum(_enum)
TenantRole = models.TenantRole
CrisisRole = models.CrisisRole
CellKind = models.CellKind
CrisisStatus = models.CrisisStatus
Severity = models.Severity
CrisisMode = models.CrisisMode
EstablishmentType = models.EstablishmentType
TenantKind = models.TenantKind


@strawberry.type(description="Organisation (GHT, groupe, association) : le locataire de la plateforme.")
class Tenant:
    id: strawberry.ID
    name: str
    kind: TenantKind
    region: str
    share_with_region: bool


@strawberry.type
class Establishment:
    id: strawberry.ID
    name: str
    type: EstablishmentType


@strawberry.type
class DirectoryUser:
    id: strawberry.ID
    login: str
    display_name: str
    tenant_role: TenantRole
    status: str


@strawberry.type
class Passkey:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@strawberry.type
class Factors:
    totp_enabled: bool
    passkeys: list[Passkey]
    recovery_codes_left: int
    enrolled_at: datetime | None


@strawberry.type
class Membership:
    crisis_id: strawberry.ID
    role: CrisisRole
    cell_ids: list[strawberry.ID]


@strawberry.type
class Me:
    id: strawberry.ID
    login: str
    display_name: str
    tenant_role: TenantRole
    tenant_id: strawberry.ID
    supervisor_region: str | None
    memberships: list[Membership]
    factors: Factors
    fresh_second_factor: bool


@strawberry.type
class Invitation:
    id: strawberry.ID
    login: str
    display_name: str
    tenant_role: TenantRole
    crisis_id: strawberry.ID | None
    crisis_role: CrisisRole | None
    created_at: datetime
    expires_at: datetime
    used: bool


@strawberry.type(description="Une invitation juste créée : le lien n'est montré qu'une fois.")
class IssuedInvitation:
    invitation: Invitation
    link: str
    qr_svg: str


@strawberry.type
class Member:
    user_id: strawberry.ID
    display_name: str
    role: CrisisRole
    function: str | None
    cell_ids: list[strawberry.ID]


@strawberry.type
class Cell:
    id: strawberry.ID
    kind: CellKind
    name: str


@strawberry.type
class Crisis:
    id: strawberry.ID
    title: str
    mode: CrisisMode
    status: CrisisStatus
    severity: Severity
    t0: datetime
    declared_at: datetime
    closed_at: datetime | None
    my_role: CrisisRole
    establishments: list[Establishment]
    cells: list[Cell]
    members: list[Member]


@strawberry.type
class Session:
    id: strawberry.ID
    created_at: datetime
    last_seen_at: datetime
    address: str | None
    user_agent: str | None
    current: bool


@strawberry.type(description="Un événement de la crise, tel que la main courante le résume.")
class CrisisEvent:
    id: strawberry.ID
    type: str
    service: str
    time: datetime
    actor_id: str | None
    mode: CrisisMode
    logbook_kind: str | None
    summary: str | None
    data: JSON


@strawberry.input
class DeclareCrisisInput:
    title: str
    severity: Severity
    t0: datetime
    mode: CrisisMode = models.CrisisMode.REAL
    establishment_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    cells: list[CellKind] | None = None


@strawberry.input
class InvitationInput:
    login: str
    display_name: str
    tenant_role: TenantRole = models.TenantRole.MEMBER
    crisis_id: strawberry.ID | None = None
    crisis_role: CrisisRole | None = None
    crisis_function: str | None = None
    cell_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    supervisor_region: str | None = None


@strawberry.type
class TotpSetup:
    setup_id: strawberry.ID
    secret: str
    uri: str
    qr_svg: str


@strawberry.type
class PasskeyRegistration:
    setup_id: strawberry.ID
    options: JSON
