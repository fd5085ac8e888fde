"""Claims of the internal actor token the gateway signs for every downstream call."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Crisis roles by what they allow, as services decide from the actor token (the gateway's
# `domain.models` names the same groups as enums).
LEADING_ROLES = frozenset({"director", "coordinator"})
LIMITED_ROLES = frozenset({"patients_representative", "external_liaison"})  # their own cells only
READ_ONLY_ROLES = frozenset({"observer"})


class CrisisMembership(BaseModel):
    """One crisis the actor belongs to, with the roles and cells held there."""

    crisis: str
    roles: list[str] = Field(default_factory=list)
    cells: list[str] = Field(default_factory=list)


class Actor(BaseModel):
    """Who is acting: subject, tenant, and the crises they may see."""

    subject: str
    tenant: str
    name: str | None = Field(default=None, max_length=200, description="display name, for attribution")
    tenant_roles: list[str] = Field(default_factory=list)
    memberships: list[CrisisMembership] = Field(default_factory=list)

    def membership(self, crisis: str) -> CrisisMembership | None:
        return next((m for m in self.memberships if m.crisis == crisis), None)
