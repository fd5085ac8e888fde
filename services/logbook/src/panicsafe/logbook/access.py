"""Need-to-know for the main courante, decided again here from the gateway's actor token.

The gateway decides first (policy module); the service does not trust that alone: every request
carries the actor's tenant, crises, roles and cells, signed, and is checked against the log asked for.
- a crisis' log: its members; patients' representatives and external liaisons see only the entries
  of their own cells (not even crisis-wide ones: membership and organisation changes are not theirs
  to know); observers read but never write;
- exports: the crisis' director and coordinators;
- the tenant journal (account and administration events): the tenant's administrators.
"""

from __future__ import annotations

from dataclasses import dataclass

from panicsafe.contracts.actor import LEADING_ROLES as LEADING
from panicsafe.contracts.actor import LIMITED_ROLES as LIMITED
from panicsafe.contracts.actor import READ_ONLY_ROLES as READ_ONLY
from panicsafe.contracts.actor import Actor
from panicsafe.core.errors import forbidden


@dataclass(frozen=True)
class Reader:
    """What one actor may see of one log: everything (None) or only the entries of these cells."""

    tenant: str
    visible_cells: frozenset[str] | None
    roles: frozenset[str]

    @property
    def leads(self) -> bool:
        return bool(self.roles & LEADING) or "tenant_admin" in self.roles

    @property
    def writes(self) -> bool:
        return bool(self.roles - READ_ONLY)

    def sees_cell(self, cell: str | None) -> bool:
        if self.visible_cells is None:
            return True
        return cell is not None and cell in self.visible_cells


def reader(actor: Actor, crisis: str) -> Reader:
    """Refuse unless `actor` belongs to the crisis (or administers the tenant, for its journal)."""
    if crisis == actor.tenant:  # the tenant's journal (`journal_of`: ids are canonical on both sides)
        if "admin" not in actor.tenant_roles:
            raise forbidden("Journal de l'organisation réservé à ses administrateurs.")
        return Reader(actor.tenant, None, frozenset({"tenant_admin"}))
    membership = actor.membership(crisis)
    if membership is None:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    roles = frozenset(membership.roles)
    limited = bool(roles) and roles <= LIMITED
    return Reader(actor.tenant, frozenset(membership.cells) if limited else None, roles)


def writer(actor: Actor, crisis: str, cell: str | None) -> Reader:
    access = reader(actor, crisis)
    if crisis == actor.tenant:  # the tenant's journal (`journal_of`: ids are canonical on both sides)
        raise forbidden("Le journal de l'organisation s'écrit seul.")
    if not access.writes:
        raise forbidden("Les observateurs lisent la main courante sans y écrire.")
    if not access.sees_cell(cell):
        raise forbidden("Écrivez dans la main courante d'une de vos cellules.")
    return access


def exporter(actor: Actor, crisis: str) -> Reader:
    access = reader(actor, crisis)
    if not access.leads:
        raise forbidden("Export réservé au directeur et au coordinateur de crise.")
    return access
