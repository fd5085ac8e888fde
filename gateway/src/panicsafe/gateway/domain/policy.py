"""The access policy: every GraphQL root field and every identity action is decided here.

Need-to-know: tenant → crisis → cell → role. A principal is one authenticated session; what it
opens is that person's view only. Each root field of the schema maps to one `Rule`; a field
without a rule is refused (fail closed) and a test walks the schema to prove none is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError, forbidden
from panicsafe.gateway.domain.models import LEADING_ROLES, LIMITED_ROLES, CrisisRole, TenantRole

FRESH_MFA = timedelta(minutes=5)


@dataclass(frozen=True)
class CrisisAccess:
    crisis_id: str
    role: CrisisRole
    cells: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Principal:
    """An authenticated, unrevoked session of an active user, with its current memberships."""

    user_id: str
    tenant_id: str
    session_id: str
    login: str
    display_name: str
    tenant_role: TenantRole
    mfa_at: datetime | None
    crises: Mapping[str, CrisisAccess] = field(default_factory=dict)
    supervisor_region: str | None = None

    @property
    def is_tenant_admin(self) -> bool:
        return self.tenant_role == TenantRole.ADMIN

    def access(self, crisis_id: str) -> CrisisAccess | None:
        return self.crises.get(str(crisis_id))

    def has_fresh_mfa(self, now: datetime | None = None) -> bool:
        moment = now or datetime.now(UTC)
        return self.mfa_at is not None and moment - self.mfa_at <= FRESH_MFA


def unauthenticated() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, "Authentification requise.")


def need_fresh_mfa() -> ServiceError:
    return ServiceError(ErrorCode.FORBIDDEN, "Confirmez votre second facteur (moins de 5 minutes) pour cette action.")


# -- decisions on resources -----------------------------------------------------------------------


def require_member(principal: Principal, crisis_id: str) -> CrisisAccess:
    """Any member of the crisis; an unknown crisis and a crisis of another tenant look the same."""
    access = principal.access(crisis_id)
    if access is None:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    return access


def require_leader(principal: Principal, crisis_id: str) -> CrisisAccess:
    access = require_member(principal, crisis_id)
    if access.role not in LEADING_ROLES:
        raise forbidden("Réservé au directeur et au coordinateur de crise.")
    return access


def require_writer(principal: Principal, crisis_id: str) -> CrisisAccess:
    """Members who may write (the main courante, chat): everyone but observers."""
    access = require_member(principal, crisis_id)
    if access.role == CrisisRole.OBSERVER:
        raise forbidden("Les observateurs lisent sans écrire.")
    return access


def require_director(principal: Principal, crisis_id: str) -> CrisisAccess:
    access = require_member(principal, crisis_id)
    if access.role != CrisisRole.DIRECTOR:
        raise forbidden("Réservé au directeur de crise.")
    return access


def require_tenant_admin(principal: Principal) -> None:
    if not principal.is_tenant_admin:
        raise forbidden("Réservé aux administrateurs de l'organisation.")


def require_fresh_mfa(principal: Principal) -> None:
    if not principal.has_fresh_mfa():
        raise need_fresh_mfa()


def can_see_cell(principal: Principal, crisis_id: str, cell_id: str) -> bool:
    """Limited roles (patients' representative, external liaison) see only their own cells."""
    access = principal.access(crisis_id)
    if access is None:
        return False
    return access.role not in LIMITED_ROLES or str(cell_id) in access.cells


def can_see_entry(principal: Principal, crisis_id: str, cell_id: str | None) -> bool:
    """An event or main courante entry: crisis-wide ones are not for limited roles, a cell's for its viewers."""
    access = principal.access(crisis_id)
    if access is None:
        return False
    if cell_id is None:
        return access.role not in LIMITED_ROLES
    return can_see_cell(principal, crisis_id, cell_id)


def can_see_members(principal: Principal, crisis_id: str) -> bool:
    access = principal.access(crisis_id)
    return access is not None and access.role not in LIMITED_ROLES


NOT_DIRECTOR_GRANTER = (
    "Seul un directeur de la crise, ou un administrateur de l'organisation, nomme ou retire un directeur."
)
OWN_ROLE = "Vous ne changez pas votre propre rôle dans la crise."
LAST_DIRECTOR = "La crise doit garder au moins un directeur."


def require_director_granter(principal: Principal, crisis_id: str) -> None:
    """Granting or taking away the director role: a director of the crisis, or a tenant administrator
    (who must lead the crisis to change its members at all)."""
    access = require_member(principal, crisis_id)
    if access.role != CrisisRole.DIRECTOR and not principal.is_tenant_admin:
        raise forbidden(NOT_DIRECTOR_GRANTER)


def require_grant(principal: Principal, crisis_id: str, role: CrisisRole) -> None:
    """Giving someone a role (a new member, an invitation): leaders only; a leading role needs a fresh
    factor; the director role, a director or a tenant administrator (`require_director_granter`)."""
    require_leader(principal, crisis_id)
    if role == CrisisRole.DIRECTOR:
        require_director_granter(principal, crisis_id)
    if role in LEADING_ROLES:
        require_fresh_mfa(principal)


def require_role_change(
    principal: Principal, crisis_id: str, user_id: str, previous: CrisisRole | None, role: CrisisRole | None
) -> None:
    """Changing a member's role from `previous` to `role` (None: not a member, or removed). Leaders only,
    never their own role; a director's membership, or the director role, only by a director or a tenant
    administrator; a leading role given or taken needs a fresh factor. That a crisis keeps a director is
    the database's to confirm (`store.tenancy.directors`)."""
    require_leader(principal, crisis_id)
    if CrisisRole.DIRECTOR in (previous, role):
        require_director_granter(principal, crisis_id)
    if str(user_id) == principal.user_id and previous != role:
        raise forbidden(OWN_ROLE)
    if previous in LEADING_ROLES or role in LEADING_ROLES:
        require_fresh_mfa(principal)


def require_supervisor(principal: Principal, region: str | None = None) -> str:
    if principal.supervisor_region is None or (region is not None and region != principal.supervisor_region):
        raise forbidden("Réservé aux superviseurs régionaux de cette région.")
    return principal.supervisor_region


def require_directory_reader(principal: Principal) -> None:
    """The tenant's directory (names, logins): admins and the leaders of a crisis."""
    if principal.is_tenant_admin:
        return
    if any(a.role in LEADING_ROLES for a in principal.crises.values()):
        return
    raise forbidden("Annuaire réservé aux administrateurs et aux responsables de crise.")


# -- one rule per root field ------------------------------------------------------------------------

Rule = Callable[[Principal | None, Mapping[str, object]], None]


def _authenticated(principal: Principal | None, args: Mapping[str, object]) -> None:
    if principal is None:
        raise unauthenticated()


def _crisis_arg(args: Mapping[str, object]) -> str:
    for key in ("crisis_id", "crisisId", "id"):
        if key in args:
            return str(args[key])
    nested = args.get("input")
    if nested is not None:
        for key in ("crisis_id", "id"):
            value = getattr(nested, key, None)
            if value is not None:
                return str(value)
    raise forbidden("crise non précisée")


def _member_of_crisis(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_member(principal, _crisis_arg(args))


def _participant(principal: Principal | None, args: Mapping[str, object]) -> None:
    """Fields addressed by channel or message: members of some crisis; the chat service then decides
    on the channel itself (its crisis, its cell, its members) from the actor token."""
    _authenticated(principal, args)
    assert principal is not None
    if not principal.crises:
        raise forbidden("Vous n'êtes membre d'aucune crise.")


def _leader_of_crisis(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_leader(principal, _crisis_arg(args))


def _writer_of_crisis(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_writer(principal, _crisis_arg(args))


def _leader_of_crisis_fresh(principal: Principal | None, args: Mapping[str, object]) -> None:
    _leader_of_crisis(principal, args)
    assert principal is not None
    require_fresh_mfa(principal)


def _director_of_crisis(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_director(principal, _crisis_arg(args))


def _tenant_admin(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_tenant_admin(principal)


def _tenant_admin_fresh(principal: Principal | None, args: Mapping[str, object]) -> None:
    _tenant_admin(principal, args)
    assert principal is not None
    require_fresh_mfa(principal)


def _own_account_fresh(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_fresh_mfa(principal)


def _directory(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_directory_reader(principal)


def _inviter(principal: Principal | None, args: Mapping[str, object]) -> None:
    """Tenant admins invite anyone; crisis leaders invite into their crisis. Finer checks in the resolver."""
    _authenticated(principal, args)
    assert principal is not None
    if not principal.is_tenant_admin and not any(a.role in LEADING_ROLES for a in principal.crises.values()):
        raise forbidden("Réservé aux administrateurs et aux responsables de crise.")


def _supervisor(principal: Principal | None, args: Mapping[str, object]) -> None:
    _authenticated(principal, args)
    assert principal is not None
    require_supervisor(principal)


AUTHENTICATED: Rule = _authenticated
CRISIS_MEMBER: Rule = _member_of_crisis
CRISIS_LEADER: Rule = _leader_of_crisis
CRISIS_PARTICIPANT: Rule = _participant
CRISIS_WRITER: Rule = _writer_of_crisis
CRISIS_LEADER_FRESH_MFA: Rule = _leader_of_crisis_fresh
CRISIS_DIRECTOR: Rule = _director_of_crisis
TENANT_ADMIN: Rule = _tenant_admin
TENANT_ADMIN_FRESH_MFA: Rule = _tenant_admin_fresh
OWN_ACCOUNT_FRESH_MFA: Rule = _own_account_fresh
DIRECTORY_READER: Rule = _directory
INVITER: Rule = _inviter
REGIONAL_SUPERVISOR: Rule = _supervisor

FIELD_POLICIES: dict[str, Rule] = {
    # queries
    "Query.me": AUTHENTICATED,
    "Query.tenant": AUTHENTICATED,
    "Query.establishments": AUTHENTICATED,
    "Query.directory": DIRECTORY_READER,
    "Query.invitations": INVITER,
    "Query.crises": AUTHENTICATED,
    "Query.crisis": CRISIS_MEMBER,
    "Query.sessions": AUTHENTICATED,
    "Query.logbook": CRISIS_MEMBER,
    "Query.logbookCheckpoint": CRISIS_MEMBER,
    "Query.chatChannels": CRISIS_MEMBER,
    "Query.chatHistory": CRISIS_PARTICIPANT,
    "Query.chatPinned": CRISIS_PARTICIPANT,
    "Query.chatSearch": CRISIS_MEMBER,
    "Query.chatMessageVersions": CRISIS_PARTICIPANT,
    # mutations
    "Mutation.updateTenant": TENANT_ADMIN_FRESH_MFA,
    "Mutation.createEstablishment": TENANT_ADMIN,
    "Mutation.updateEstablishment": TENANT_ADMIN,
    "Mutation.createInvitation": INVITER,
    "Mutation.revokeInvitation": INVITER,
    "Mutation.declareCrisis": TENANT_ADMIN,
    "Mutation.updateCrisis": CRISIS_LEADER,
    "Mutation.closeCrisis": CRISIS_DIRECTOR,
    "Mutation.createCell": CRISIS_LEADER,
    "Mutation.addCrisisMember": CRISIS_LEADER,
    "Mutation.removeCrisisMember": CRISIS_LEADER,
    "Mutation.setCellMembership": CRISIS_LEADER,
    "Mutation.revokeSession": AUTHENTICATED,
    "Mutation.revokeOtherSessions": AUTHENTICATED,
    "Mutation.regenerateRecoveryCodes": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.removePasskey": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.renamePasskey": AUTHENTICATED,
    "Mutation.beginTotpSetup": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.confirmTotpSetup": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.disableTotp": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.beginPasskeyRegistration": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.finishPasskeyRegistration": OWN_ACCOUNT_FRESH_MFA,
    "Mutation.addLogbookEntry": CRISIS_WRITER,
    "Mutation.exportLogbook": CRISIS_LEADER_FRESH_MFA,
    "Mutation.sendMessage": CRISIS_PARTICIPANT,
    "Mutation.editMessage": CRISIS_PARTICIPANT,
    "Mutation.redactMessage": CRISIS_PARTICIPANT,
    "Mutation.pinMessage": CRISIS_PARTICIPANT,
    "Mutation.markMessage": CRISIS_PARTICIPANT,
    "Mutation.markChannelRead": CRISIS_PARTICIPANT,
    "Mutation.createPrivateChannel": CRISIS_WRITER,
    "Mutation.openDirectChannel": CRISIS_WRITER,
    "Mutation.setChannelMembers": CRISIS_PARTICIPANT,
    # subscriptions
    "Subscription.crisisEvents": CRISIS_MEMBER,
    "Subscription.logbookEntries": CRISIS_MEMBER,
    "Subscription.chatUpdates": CRISIS_MEMBER,
    # the regional subgraph
    "Query.regionalIndicators": REGIONAL_SUPERVISOR,
}


def decide(field_key: str, principal: Principal | None, args: Mapping[str, object]) -> None:
    """Raise unless `principal` may resolve `field_key` (`Type.field`) with `args`."""
    rule = FIELD_POLICIES.get(field_key)
    if rule is None:
        raise forbidden(f"no policy for {field_key}")  # fail closed: a new field must be given a rule
    rule(principal, args)
